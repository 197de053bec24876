//! One module per subcommand (argument definitions and the terminal side: messages, progress),
//! plus the options they share and the hints added to library errors.

pub mod args;
pub mod bench;
pub mod corpus;
pub mod eval;
pub mod hints;
pub mod progress;
pub mod score;
pub mod segment;
pub mod serve;
pub mod translate;
