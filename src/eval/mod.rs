//! Translation quality as sacreBLEU measures it: BLEU, chrF, chrF++ and TER with sacreBLEU's
//! numbers and signatures, and its paired bootstrap test, for `traduire eval`.

pub mod bleu;
pub mod bootstrap;
pub mod chrf;
pub mod evaluate;
pub mod metric;
pub mod rng;
pub mod ter;
pub mod tokenize;
