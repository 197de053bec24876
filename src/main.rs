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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Translate(args) => cli::translate::run(args),
        Command::Segment(args) => cli::segment::run(args),
        Command::Bench(args) => cli::bench::run(args),
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
