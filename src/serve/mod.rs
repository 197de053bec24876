//! `traduire serve`: a translation server speaking LibreTranslate's API and a subset of
//! DeepL's v2 API, over one core.
//!
//! ```text
//! HTTP (hyper, one task per connection; header and body read timeouts)
//!   -> observe        request id, one log line, metrics by route and status
//!   -> libretranslate | deepl     request shapes in, answers and errors out (thin adapters)
//!   -> core           keys and rates, limits, language identification, Markup::parse,
//!                     cache, queue, deadline, Markup::render
//!   -> batcher        the one queue in front of the model; one inference thread owns it
//! ```
//!
//! Handlers never touch the model: the batcher's worker thread owns it. The library prints
//! nothing: it logs through `tracing`, and the command line sets up the subscriber.

pub mod batcher;
pub mod cache;
pub mod core;
pub mod deepl;
pub mod detect;
pub mod error;
pub mod keys;
pub mod libretranslate;
pub mod metrics;
pub mod request;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use self::batcher::Batcher;
pub use self::batcher::{BatchPolicy, Loader};
use self::cache::Cache;
pub use self::core::{Core, Limits};
use self::error::ApiError;
use self::keys::ApiKeys;
use self::metrics::Metrics;
use crate::segment::SegmentOptions;

/// Everything a server needs besides its model.
pub struct ServeConfig {
    /// Request limits.
    pub limits: Limits,
    /// How batches are formed, and the queue's bound.
    pub policy: BatchPolicy,
    /// Sentences in the LRU cache (0: no cache).
    pub cache_size: usize,
    /// API keys, when required.
    pub keys: Option<ApiKeys>,
    /// Allowed CORS origins: `None` turns CORS off, an empty list allows any origin (as
    /// LibreTranslate).
    pub cors_origins: Option<Vec<HeaderValue>>,
    /// Longest wait for a client to send a request's headers (idle keep-alive
    /// connections included).
    pub header_read_timeout: Duration,
    /// After SIGTERM or Ctrl-C, longest wait for requests in flight.
    pub shutdown_timeout: Duration,
    /// How documents are split into sentences.
    pub segment: SegmentOptions,
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    core: Arc<Core>,
    next_id: Arc<AtomicU64>,
}

impl AppState {
    /// The core.
    pub fn core(&self) -> &Core {
        &self.core
    }
}

/// A server assembled but not yet listening: its routes, its core, and the inference thread
/// loading the model.
pub struct App {
    /// Every route, ready to serve (e.g. in process with `tower::ServiceExt::oneshot`).
    pub router: Router,
    /// The shared core.
    pub core: Arc<Core>,
    loaded: Option<tokio::sync::oneshot::Receiver<Result<()>>>,
    worker: std::thread::JoinHandle<()>,
}

impl App {
    /// Assembles the server and starts loading the model on the inference thread.
    pub fn new(config: ServeConfig, load: Loader) -> Result<Self> {
        let metrics = Arc::new(Metrics::new());
        let cache = Arc::new(Cache::new(config.cache_size));
        let (batcher, loaded, worker) =
            Batcher::start(load, config.policy, cache.clone(), metrics.clone())
                .context("cannot start the inference thread")?;
        let core = Arc::new(Core::new(
            config.limits,
            config.segment,
            config.keys,
            batcher,
            cache,
            metrics,
        ));
        let state = AppState {
            core: core.clone(),
            next_id: Arc::new(AtomicU64::new(1)),
        };
        Ok(Self {
            router: router(state, config.cors_origins),
            core,
            loaded: Some(loaded),
            worker,
        })
    }

    /// Waits for the model; from then on requests are translated.
    pub async fn loaded(&mut self) -> Result<()> {
        let Some(loaded) = self.loaded.take() else {
            return Ok(());
        };
        match loaded.await {
            Ok(Ok(())) => {
                self.core.set_ready();
                Ok(())
            }
            Ok(Err(e)) => Err(e.context("cannot load the model")),
            Err(_) => Err(anyhow::anyhow!(
                "the inference thread ended while loading the model"
            )),
        }
    }
}

/// Serves on `listener` until `shutdown` resolves, then stops accepting, answers what is in
/// flight (up to `shutdown_timeout`) and returns. The model is loaded by `load` on the
/// inference thread while the server already answers `/health` (not ready) and `/metrics`;
/// a failed load ends the server with its error.
pub async fn run(
    config: ServeConfig,
    load: Loader,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let header_read_timeout = config.header_read_timeout;
    let shutdown_timeout = config.shutdown_timeout;
    let mut app = App::new(config, load)?;
    let core = app.core.clone();
    let router = app.router.clone();
    let loaded = app.loaded.take().expect("not awaited yet");
    let worker = app.worker;
    let mut loaded = Box::pin(loaded);
    let mut model_loaded = false;
    let mut shutdown = Box::pin(shutdown);
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(address = %local, "listening; loading the model");
    let outcome: Result<()> = loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little, never exit.
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(router.clone());
                let connection = http.serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            result = &mut loaded, if !model_loaded => {
                model_loaded = true;
                // As App::loaded, inside the accept loop: /health answers while loading.
                match result {
                    Ok(Ok(())) => {
                        core.set_ready();
                        tracing::info!(address = %local, "ready");
                    }
                    Ok(Err(e)) => break Err(e.context("cannot load the model")),
                    Err(_) => break Err(anyhow::anyhow!("the inference thread ended while loading the model")),
                }
            }
            () = &mut shutdown => break Ok(()),
        }
    };
    // Stop accepting at once; answer what is in flight.
    drop(listener);
    core.begin_shutdown();
    let open = graceful.count();
    tracing::info!(connections = open, queued = core.queued(), "shutting down");
    let drained = tokio::time::timeout(shutdown_timeout, graceful.shutdown())
        .await
        .is_ok();
    if !drained {
        tracing::warn!(
            queued = core.queued(),
            "shutdown timeout: connections still open were closed"
        );
    }
    core.close_queue();
    if drained {
        // Every request was answered, so the queue is empty and the worker ends at once
        // (unless the model was still loading: then it ends once loaded).
        let _ = tokio::task::spawn_blocking(move || worker.join()).await;
    }
    tracing::info!("stopped");
    outcome
}

/// The routes of both APIs, `/health` and `/metrics`, behind the request observer and CORS.
pub fn router(state: AppState, cors_origins: Option<Vec<HeaderValue>>) -> Router {
    let mut app = Router::new()
        .merge(libretranslate::routes())
        .merge(deepl::routes())
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state.clone());
    if let Some(origins) = cors_origins {
        let allow = if origins.is_empty() {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(origins)
        };
        app = app.layer(
            CorsLayer::new()
                .allow_origin(allow)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers(Any),
        );
    }
    app.layer(axum::middleware::from_fn_with_state(state, observe))
}

/// `GET /health`: 200 once the model is loaded, 503 while loading or shutting down (a
/// readiness probe).
async fn health(State(state): State<AppState>) -> Response {
    let core = state.core();
    let (status, text) = if core.is_ready() {
        (StatusCode::OK, "ok")
    } else if core.is_stopping() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "loading")
    };
    (status, axum::Json(serde_json::json!({ "status": text }))).into_response()
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        state.core().metrics().render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({ "error": "Not Found" })),
    )
        .into_response()
}

/// The routes metrics are labelled with: a fixed set, whatever paths clients try.
fn route_label(path: &str) -> &'static str {
    match path {
        "/translate" => "/translate",
        "/detect" => "/detect",
        "/languages" => "/languages",
        "/frontend/settings" => "/frontend/settings",
        "/health" => "/health",
        "/metrics" => "/metrics",
        "/v2/translate" => "/v2/translate",
        "/v2/languages" => "/v2/languages",
        "/v2/usage" => "/v2/usage",
        _ => "other",
    }
}

/// Logs one line per request when it ends (or when its client goes away), with a request
/// id also sent back as `X-Request-Id`, and counts it in the metrics. The lines have the
/// target `traduire::request`, so `RUST_LOG=info,traduire::request=off` keeps the rest.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let mut guard = RequestLog {
        core: state.core.clone(),
        id,
        method: request.method().clone(),
        route: route_label(request.uri().path()),
        started: Instant::now(),
        finished: false,
    };
    let mut response = next.run(request).await;
    guard.finished = true;
    let status = response.status();
    let stats = response
        .extensions()
        .get::<core::RequestStats>()
        .copied()
        .unwrap_or_default();
    guard.count(status.as_str());
    let ms = guard.started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        target: "traduire::request",
        id,
        method = %guard.method,
        route = %guard.route,
        status = status.as_u16(),
        ms = format_args!("{ms:.1}"),
        items = stats.items,
        chars = stats.chars,
        sentences = stats.sentences,
        cached = stats.cached,
        "request"
    );
    if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// A request in progress; dropped unfinished when its client disconnects.
struct RequestLog {
    core: Arc<Core>,
    id: u64,
    method: Method,
    route: &'static str,
    started: Instant,
    finished: bool,
}

impl RequestLog {
    fn count(&self, status: &str) {
        let metrics = self.core.metrics();
        metrics
            .requests
            .with_label_values(&[self.route, status])
            .inc();
        metrics
            .request_seconds
            .with_label_values(&[self.route])
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // 499, nginx's "client closed request": the answer was never sent.
        self.count("499");
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            target: "traduire::request",
            id = self.id,
            method = %self.method,
            route = %self.route,
            status = 499,
            ms = format_args!("{ms:.1}"),
            "request: client went away"
        );
    }
}

/// A request's headers and whole body, read within the body limit and the body read
/// timeout: 413 past the limit, 408 past the timeout.
pub async fn read_body(
    core: &Core,
    request: Request,
) -> Result<(HeaderMap, bytes::Bytes), ApiError> {
    let limits = core.limits();
    let (parts, body) = request.into_parts();
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is over {} bytes (--body-limit)",
                limits.body_bytes
            ),
        )
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.body_bytes as u64) {
        return Err(too_large());
    }
    let read = axum::body::to_bytes(Body::new(body), limits.body_bytes);
    match tokio::time::timeout(limits.body_read_timeout, read).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s",
                limits.body_read_timeout.as_secs_f64()
            ),
        )),
        Ok(Err(e)) if is_length_limit(&e) => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::bad_request(format!(
            "cannot read the request body: {e}"
        ))),
        Ok(Ok(bytes)) => Ok((parts.headers, bytes)),
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// The `Content-Type` header, if readable.
pub fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// Adds `Retry-After` to an error answer that has one.
pub fn with_retry_after(mut response: Response, error: &ApiError) -> Response {
    if let Some(secs) = error.retry_after_secs() {
        if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}
