//! `traduire serve`: the translation server (LibreTranslate's API and DeepL's v2 subset).
//! This module reads the options, sets up logging, binds the port and hands over to
//! `traduire::serve`; it is the only part of the server that knows about flags.

use std::io::IsTerminal;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::http::HeaderValue;
use clap::Args;
use traduire::segment::SegmentOptions;
use traduire::serve::keys::{ApiKeys, KeyLimits};
use traduire::serve::{BatchPolicy, Limits, Loader, ServeConfig};
use traduire::translator::{Translator, TranslatorOptions};

use super::args::{DecodeArgs, ModelArgs};

/// Arguments of `traduire serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (0.0.0.0 or :: for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: any free port, logged at start).
    #[arg(long, default_value_t = 5000)]
    pub port: u16,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub decode: DecodeArgs,
    /// Texts are hard-wrapped: single line breaks do not end sentences.
    #[arg(long)]
    pub wrapped: bool,
    /// Longest wait, in milliseconds, for other requests to share a batch (0: never wait;
    /// sentences that queued during a batch still share the next one).
    #[arg(long, value_name = "MS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub max_batch_wait: u64,
    /// Never batch sentences of different requests together (for benchmarks: how servers
    /// that batch within one request behave).
    #[arg(long)]
    pub one_request_per_batch: bool,
    /// Sentences kept in the in-memory LRU cache (0: no cache).
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    pub cache_size: u64,
    /// Most sentences waiting for the model; past it, requests get 429 with Retry-After at
    /// once.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub queue_limit: u64,
    /// Most characters per request (all texts together).
    #[arg(long, value_name = "N", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub char_limit: u64,
    /// Most texts per request (LibreTranslate's q array; DeepL takes at most 50 anyway).
    #[arg(long, value_name = "N", default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_limit: u64,
    /// Most alternatives a request may ask for (from beam search's n-best list; needs
    /// --beams at least N+1; default: 3, or beams - 1 when fewer).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=127))]
    pub alternatives_limit: Option<u64>,
    /// Most bytes in a request body.
    #[arg(long, value_name = "BYTES", default_value_t = 2_000_000, value_parser = clap::value_parser!(u64).range(1024..=1_073_741_824))]
    pub body_limit: u64,
    /// Seconds from a request's arrival to its answer, queue included; then 504 (keep it
    /// below the clients' own timeouts: Weblate gives up after 20 s).
    #[arg(long, value_name = "SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout: u64,
    /// Seconds a client has to send a request's headers (idle keep-alive connections
    /// included); then the connection is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_read_timeout: u64,
    /// Seconds a client has to send a request's body; then 408.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_read_timeout: u64,
    /// After SIGTERM or Ctrl-C, seconds to finish the requests in flight before exiting.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_timeout: u64,
    /// Require API keys, read from this file: one per line, optionally followed by that
    /// key's requests and characters per minute.
    #[arg(long, value_name = "FILE")]
    pub api_keys: Option<PathBuf>,
    /// Default requests per minute of a key (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub key_requests_per_minute: u32,
    /// Default characters per minute of a key (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub key_chars_per_minute: u32,
    /// Allow cross-origin requests from this origin only (repeat for several; default:
    /// any origin, as LibreTranslate).
    #[arg(long, value_name = "ORIGIN", conflicts_with = "no_cors")]
    pub cors_origin: Vec<String>,
    /// Send no CORS headers (browsers then refuse cross-origin calls).
    #[arg(long)]
    pub no_cors: bool,
    /// Threads for HTTP (parsing, segmentation, language identification); inference has
    /// its own pool (--threads).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub http_threads: u16,
    /// Log warnings and errors only (no line per request).
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs the server until SIGTERM or Ctrl-C.
pub fn run(args: ServeArgs) -> Result<()> {
    // Everything that can be checked without the model comes first.
    let model_options = args.model.runtime.options()?;
    args.decode.check()?;
    args.model.check()?;
    let keys = match &args.api_keys {
        None => None,
        Some(path) => Some(ApiKeys::load(
            path,
            KeyLimits {
                requests_per_minute: NonZeroU32::new(args.key_requests_per_minute),
                chars_per_minute: NonZeroU32::new(args.key_chars_per_minute),
            },
        )?),
    };
    let cors_origins = if args.no_cors {
        None
    } else {
        let mut origins = Vec::new();
        for origin in &args.cors_origin {
            origins.push(
                HeaderValue::from_str(origin)
                    .with_context(|| format!("--cors-origin {origin:?} is not a valid origin"))?,
            );
        }
        Some(origins)
    };
    init_logging(args.quiet);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(threads) = args
        .model
        .runtime
        .threads
        .filter(|&t| usize::from(t) > cores)
    {
        tracing::warn!(
            threads,
            cores,
            "--threads is above the number of cores: inference threads will compete for them"
        );
    }

    let config = ServeConfig {
        limits: Limits {
            body_bytes: args.body_limit as usize,
            chars_per_request: args.char_limit as usize,
            items_per_request: args.batch_limit as usize,
            request_timeout: Duration::from_secs(args.request_timeout),
            body_read_timeout: Duration::from_secs(args.body_read_timeout),
        },
        policy: BatchPolicy {
            max_batch_wait: Duration::from_millis(args.max_batch_wait),
            queue_limit: args.queue_limit as usize,
            one_request_per_batch: args.one_request_per_batch,
        },
        cache_size: args.cache_size as usize,
        keys,
        cors_origins,
        header_read_timeout: Duration::from_secs(args.header_read_timeout),
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
        segment: SegmentOptions {
            wrapped: args.wrapped,
        },
    };
    let load = loader(&args, model_options);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.http_threads.into())
        .thread_name("traduire-http")
        .enable_all()
        .build()
        .context("cannot start the HTTP runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
        traduire::serve::run(config, load, listener, shutdown_signal()).await
    })
}

/// Resolves (downloads) and loads the model on the inference thread, then checks the
/// decoding options against it.
fn loader(args: &ServeArgs, model_options: traduire::marian::ModelOptions) -> Loader {
    let model = args.model.clone();
    let decode_args = args.decode.clone();
    let alternatives = args.alternatives_limit;
    Box::new(move || {
        let dir = model.model_dir(false)?;
        let translator = Translator::load(&dir, &model_options)?;
        let mut decode = decode_args.apply(translator.default_decode_options());
        let beams = decode.num_beams;
        let most = beams.saturating_sub(1);
        let alternatives = match alternatives {
            None => most.min(3),
            Some(n) if n as usize <= most => n as usize,
            Some(n) => bail!(
                "--alternatives-limit {n} needs --beams {} at least (beam search gives each of its {beams} beams one hypothesis)",
                n + 1
            ),
        };
        // Returning more of the beam's hypotheses does not change the search: the best
        // translation is the same as with one.
        decode.num_return_sequences = alternatives + 1;
        let options = TranslatorOptions {
            decode,
            batch: decode_args.batch(model_options.device),
            max_sentence_tokens: decode_args.max_sentence_tokens as usize,
            alignments: false,
        };
        translator.validate(&options)?;
        Ok((translator, options))
    })
}

/// Logs to stderr; `RUST_LOG` overrides the level.
fn init_logging(quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
