//! traduire: French to English translation of news articles with Marian on candle.
//!
//! The pipeline is a chain of plain data: documents -> sentences -> batches -> translations ->
//! writers. See README.md ("Architecture") for the map of modules.

pub mod batching;
pub mod bench;
pub mod bilingual;
pub mod corpus;
pub mod device;
pub mod document;
pub mod eval;
pub mod flags;
pub mod input;
pub mod long_sentence;
pub mod marian;
pub mod markup;
pub mod scoring;
pub mod segment;
pub mod serve;
pub mod source;
pub mod tokenizer;
pub mod translator;
pub mod write;
