//! The `traduire` command line: parses arguments and hands over to the library.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Translate French news articles into English with Marian (opus-mt-fr-en) on candle, and
/// print them French and English side by side.
#[derive(Debug, Parser)]
#[command(name = "traduire", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Translate articles (files, directories or stdin) into bilingual output.
    Translate(cli::translate::TranslateArgs),
    /// Split French text into paragraphs and sentences, one sentence per line.
    Segment(cli::segment::SegmentArgs),
    /// Measure translation speed on a fixed workload.
    Bench(cli::bench::BenchArgs),
    /// Score existing translations: the model's log-probability of each English side.
    Score(cli::score::ScoreArgs),
    /// Translate a corpus of millions of sentences: streaming, resumable, shardable.
    Corpus(cli::corpus::CorpusArgs),
    /// Translate a test set and score it with BLEU, chrF and TER exactly as sacreBLEU, or
    /// compare settings (models, dtypes, beams) with paired bootstrap p-values.
    Eval(cli::eval::EvalArgs),
    /// Serve translations over HTTP: LibreTranslate's API and DeepL's v2 API, batching
    /// sentences across requests.
    Serve(cli::serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Translate(args) => cli::translate::run(args),
        Command::Segment(args) => cli::segment::run(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Score(args) => cli::score::run(args),
        Command::Corpus(args) => cli::corpus::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Serve(args) => cli::serve::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `traduire ... | head` closes the pipe early: not a failure worth a message.
        Err(err) if traduire::write::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            if let Some(hint) = cli::hints::hint(&err) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    //! The command line's option parsing and validation on arbitrary arguments (part of the
    //! fuzz campaign, see tests/fuzz.rs: `PROPTEST_CASES=1000000 cargo test --release --bin
    //! traduire`).

    use super::*;
    use proptest::prelude::*;
    use traduire::marian::config::opus_mt_fr_en;

    /// Flags of `translate`, `bench` and `serve`, with values both sensible and hostile.
    fn argument() -> impl Strategy<Value = Vec<String>> {
        let flag = prop::sample::select(vec![
            "--beams",
            "--max-new-tokens",
            "--max-length-ratio",
            "--length-penalty",
            "--max-batch-tokens",
            "--max-batch-sentences",
            "--max-sentence-tokens",
            "--threads",
            "--device",
            "--dtype",
            "--kernels",
            "--format",
            "--model",
            "--repeat",
            "--force-length",
            "--architecture",
            "--sweep-batches",
            "--sweep-threads",
            "--sweep-sentences",
            "--sweep-dtypes",
            "--port",
            "--max-batch-wait",
            "--cache-size",
            "--queue-limit",
            "--char-limit",
            "--batch-limit",
            "--alternatives-limit",
            "--body-limit",
            "--request-timeout",
            "--header-read-timeout",
            "--body-read-timeout",
            "--shutdown-timeout",
            "--key-requests-per-minute",
            "--http-threads",
        ]);
        let value = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| f.to_string()),
            (0u32..600).prop_map(|n| n.to_string()),
            prop::sample::select(vec![
                "inf",
                "-inf",
                "nan",
                "NaN",
                "off",
                "0",
                "-0",
                "1e40",
                "cpu",
                "cuda",
                "cuda:1",
                "cuda:x",
                "metal:2",
                "int8",
                "f16",
                "bf16",
                "avx512",
                "candle",
                "jsonl",
                "md",
                "",
                "--",
                "-1",
                "1.5",
                "opus-mt-fr-en",
                "a/b@c",
            ])
            .prop_map(String::from),
            ".{0,6}",
        ];
        (flag, value).prop_map(|(f, v)| vec![f.to_string(), v])
    }

    proptest! {
        /// Any mix of flags and values: clap refuses it, or the options it yields validate
        /// (or are refused) without panicking, and what validates is within the documented
        /// bounds.
        #[test]
        fn options_on_arbitrary_arguments(
            command in prop::sample::select(vec!["translate", "bench", "serve"]),
            args in prop::collection::vec(argument(), 0..6),
        ) {
            let mut argv = vec!["traduire".to_string(), command.to_string()];
            argv.extend(args.into_iter().flatten());
            let Ok(cli) = Cli::try_parse_from(&argv) else { return Ok(()) };
            let (config, generation) = opus_mt_fr_en();
            match cli.command {
                Command::Translate(t) => {
                    if let Ok(options) = t.model.runtime.options() {
                        prop_assert!(options.threads.is_none_or(|n| (1..=1024).contains(&n)));
                    }
                    let single = t.decode.check().is_ok() && t.model.check().is_ok();
                    prop_assert!(single || t.decode.beams.len() > 1 || t.model.model.len() > 1);
                    let decode = t.decode.apply(traduire::marian::DecodeOptions::from_generation(&generation));
                    if decode.validate(&config).is_ok() {
                        prop_assert!((1..=128).contains(&decode.num_beams));
                        prop_assert!(decode.max_length_ratio.is_none_or(|r| r.is_finite() && r > 0.0));
                        prop_assert!(decode.limit_for(usize::MAX) <= decode.max_new_tokens);
                    }
                    let batch = t.decode.batch(t.model.runtime.device);
                    prop_assert!(batch.validate().is_ok());
                }
                Command::Bench(b) => {
                    let _ = b.runtime.options();
                    let ratio_ok = |f: cli::bench::ForceLength| match f {
                        cli::bench::ForceLength::Ratio(r) => r > 0.0 && r <= 100.0,
                        cli::bench::ForceLength::Off => true,
                    };
                    prop_assert!(b.force_length.is_none_or(ratio_ok));
                    prop_assert!(b.sweep_batches.iter().all(|&n| n >= 1));
                    prop_assert!(b.repeat >= 1);
                }
                Command::Serve(s) => {
                    let _ = s.model.runtime.options();
                    let decode = s.decode.apply(traduire::marian::DecodeOptions::from_generation(&generation));
                    let _ = decode.validate(&config);
                    prop_assert!(s.max_batch_wait <= 10_000 && s.queue_limit >= 1 && s.body_limit >= 1024);
                    prop_assert!(s.request_timeout >= 1 && s.header_read_timeout >= 1 && s.body_read_timeout >= 1);
                    prop_assert!(s.alternatives_limit.is_none_or(|n| n < 128) && s.http_threads >= 1);
                    prop_assert!(s.decode.batch(s.model.runtime.device).validate().is_ok());
                }
                Command::Segment(_) | Command::Score(_) | Command::Corpus(_) | Command::Eval(_) => {}
            }
        }
    }
}
