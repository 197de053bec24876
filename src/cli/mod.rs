//! One module per subcommand: argument definitions and the terminal side (messages, progress).

pub mod bench;
pub mod model_args;
pub mod segment;
pub mod translate;
