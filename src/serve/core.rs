//! The server's core: what a translation request means, whichever API it came through.
//!
//! The LibreTranslate and DeepL adapters only read their request shapes into a
//! [`TranslateRequest`] and write the [`Translated`] answer (or the [`ApiError`]) back in
//! their own shapes. Everything else happens here, once: the API key and its rates, the
//! limits, language identification, reading each item as a document ([`Markup`]), the cache,
//! the queue and the deadline, and rendering each document back with its translations.
//!
//! Each item goes through the same two phases as `traduire translate`: parse -> sentences ->
//! (the batching queue) -> render. That is why an answer equals the command line's output
//! for the same text and options.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batcher::Batcher;
use super::cache::Cache;
use super::detect::{detect, Detection};
use super::error::ApiError;
use super::keys::{ApiKeys, KeyId, RateError};
use super::metrics::Metrics;
use crate::markup::{InputFormat, Markup};
use crate::segment::SegmentOptions;
use crate::translator::Translation;

/// Limits on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes in a request body.
    pub body_bytes: usize,
    /// Most characters (Unicode scalar values, as LibreTranslate counts) in one request.
    pub chars_per_request: usize,
    /// Most texts in one request's array.
    pub items_per_request: usize,
    /// Longest time from a request's arrival to its answer, queue included (then 504).
    pub request_timeout: Duration,
    /// Longest time to receive a request's body (then 408).
    pub body_read_timeout: Duration,
}

/// How a request's texts are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    /// Plain text.
    Text,
    /// HTML, whole pages or fragments (`<p>…<a>…</a></p>` as Mastodon sends).
    Html,
}

/// The language the client says the text is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// French, as the client says.
    French,
    /// Identify it: refuse text confidently identified as another language.
    Auto,
}

/// Who is asking: the API key's index, when keys are configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller(pub Option<KeyId>);

/// One translation request, read from either API.
#[derive(Debug, Clone)]
pub struct TranslateRequest {
    /// The texts, one answer each.
    pub items: Vec<String>,
    /// Their language.
    pub source: Source,
    /// How they are written.
    pub format: TextFormat,
    /// How many other translations to give per text (from beam search's n-best list).
    pub alternatives: usize,
    /// Most items this API allows (the adapter's own cap within the server's limit).
    pub max_items: usize,
    /// The field that holds the texts, for error messages (`q`, `text`).
    pub field: &'static str,
    /// Whether the texts came as an array (errors then name `q[i]`).
    pub list: bool,
}

/// One text's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslatedItem {
    /// The translation, in the text's own format.
    pub text: String,
    /// Other translations, best first (at most the number asked for; duplicates dropped).
    pub alternatives: Vec<String>,
    /// The language identified, for `source=auto`.
    pub detected: Option<Detection>,
}

/// A request's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    /// One per item, in order.
    pub items: Vec<TranslatedItem>,
    /// What it cost, for the request's log line.
    pub stats: RequestStats,
}

/// What one request asked for, for its log line (attached to the response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestStats {
    /// Texts.
    pub items: usize,
    /// Characters.
    pub chars: usize,
    /// Sentences, every occurrence.
    pub sentences: usize,
    /// Sentences answered from the cache.
    pub cached: usize,
}

/// The server's state shared by both APIs.
pub struct Core {
    limits: Limits,
    segment: SegmentOptions,
    keys: Option<ApiKeys>,
    batcher: Batcher,
    cache: Arc<Cache>,
    metrics: Arc<Metrics>,
    ready: AtomicBool,
    stopping: AtomicBool,
    /// Characters translated, per key (index) or in all (`usage[0]` without keys), for
    /// DeepL's `/v2/usage`.
    usage: Vec<AtomicU64>,
}

impl Core {
    /// Assembles the core around a started [`Batcher`].
    pub fn new(
        limits: Limits,
        segment: SegmentOptions,
        keys: Option<ApiKeys>,
        batcher: Batcher,
        cache: Arc<Cache>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let counters = keys.as_ref().map_or(1, ApiKeys::len);
        Self {
            limits,
            segment,
            keys,
            batcher,
            cache,
            metrics,
            ready: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            usage: (0..counters).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether API keys are required.
    pub fn keys_required(&self) -> bool {
        self.keys.is_some()
    }

    /// Whether the model is loaded and the server not shutting down.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.stopping.load(Ordering::Acquire)
    }

    /// Whether the server is shutting down.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// The model is loaded: requests may be translated.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Shutdown began: `/health` says so, new translations are refused, and the queue
    /// accepts no more jobs once those in flight are answered.
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Closes the queue: the worker ends once it is empty.
    pub fn close_queue(&self) {
        self.batcher.close();
    }

    /// Sentences waiting or being translated.
    pub fn queued(&self) -> usize {
        self.batcher.queued()
    }

    /// Sentences in the cache.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Checks a request's API key: without configured keys every request passes (a key
    /// given is ignored); with keys, a missing key is a 400 and a wrong one a 403.
    pub fn authorize(&self, key: Option<&str>) -> Result<Caller, ApiError> {
        let Some(keys) = &self.keys else {
            return Ok(Caller(None));
        };
        match key.filter(|k| !k.is_empty()) {
            None => Err(ApiError::bad_request(
                "this server requires an API key (api_key); ask its operator for one",
            )),
            Some(k) => keys
                .find(k)
                .map(|id| Caller(Some(id)))
                .ok_or_else(|| ApiError::forbidden("Invalid API key")),
        }
    }

    /// Characters translated for this caller (all callers without keys).
    pub fn usage(&self, caller: Caller) -> u64 {
        self.usage[caller.0.map_or(0, |k| k.0)].load(Ordering::Relaxed)
    }

    /// Counts a request of `chars` characters against the caller's rates.
    fn check_rates(&self, caller: Caller, chars: usize) -> Result<(), ApiError> {
        let (Some(keys), Some(id)) = (&self.keys, caller.0) else {
            return Ok(());
        };
        keys.check(id, chars).map_err(|e| {
            self.metrics.rejected.with_label_values(&["rate_limit"]).inc();
            match e {
                RateError::Wait(wait) => ApiError::too_many(
                    "this API key is over its rate limit; slow down",
                    wait,
                ),
                RateError::TooLarge { limit } => ApiError::too_many(
                    format!("this request has more characters than this API key may send in a minute ({limit})"),
                    Duration::from_secs(60),
                ),
            }
        })
    }

    /// Identifies the language of a text (`/detect`).
    pub fn detect(&self, caller: Caller, text: &str) -> Result<Detection, ApiError> {
        let chars = text.chars().count();
        self.check_chars(chars)?;
        self.check_rates(caller, chars)?;
        Ok(detect(text))
    }

    fn check_chars(&self, chars: usize) -> Result<(), ApiError> {
        let limit = self.limits.chars_per_request;
        if chars > limit {
            self.metrics
                .rejected
                .with_label_values(&["too_large"])
                .inc();
            return Err(ApiError::bad_request(format!(
                "the request has {chars} characters; this server takes at most {limit} (--char-limit)"
            )));
        }
        Ok(())
    }

    /// Translates a request's texts: limits, key rates, language identification, the
    /// cache, the queue (429 when full), the deadline (504), and each text rendered back in
    /// its own format.
    pub async fn translate(
        &self,
        caller: Caller,
        request: TranslateRequest,
    ) -> Result<Translated, ApiError> {
        let started = Instant::now();
        // A request already received during shutdown is still answered: the connection
        // closes after it.
        if !self.ready.load(Ordering::Acquire) {
            return Err(ApiError::unavailable(
                "the model is loading; try again shortly",
                Duration::from_secs(5),
            ));
        }
        let max_items = request.max_items.min(self.limits.items_per_request);
        if request.items.len() > max_items {
            return Err(ApiError::bad_request(format!(
                "{}: {} texts; at most {max_items} per request",
                request.field,
                request.items.len()
            )));
        }
        let chars: usize = request.items.iter().map(|t| t.chars().count()).sum();
        self.check_chars(chars)?;
        let most = self.batcher.alternatives_limit();
        if request.alternatives > most {
            return Err(ApiError::bad_request(format!(
                "alternatives: at most {most} on this server (--alternatives-limit)"
            )));
        }
        self.check_rates(caller, chars)?;
        self.metrics.characters.inc_by(chars as u64);

        let format = markup_format(request.format)?;
        let alignments = needs_alignments(request.format);
        let mut documents = Vec::with_capacity(request.items.len());
        for (i, item) in request.items.into_iter().enumerate() {
            let markup = Markup::parse(item, format, &self.segment).map_err(|e| {
                ApiError::bad_request(format!(
                    "{}: {e:#}",
                    item_name(request.field, i, request.list)
                ))
            })?;
            documents.push(markup);
        }
        let detected = match request.source {
            Source::French => None,
            Source::Auto => Some(self.identify(&documents, request.field, request.list)?),
        };

        // Distinct sentences: from the cache, or to the queue.
        let mut found: HashMap<&str, Arc<Translation>> = HashMap::new();
        let mut missing: Vec<String> = Vec::new();
        let mut asked: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut stats = RequestStats {
            items: documents.len(),
            chars,
            ..RequestStats::default()
        };
        for document in &documents {
            for sentence in document.sentences() {
                stats.sentences += 1;
                if !asked.insert(sentence) {
                    continue;
                }
                match self.cache.get(sentence, alignments) {
                    Some(t) => {
                        stats.cached += 1;
                        found.insert(sentence, t);
                    }
                    None => missing.push(sentence.to_string()),
                }
            }
        }
        self.metrics.cache_hits.inc_by(stats.cached as u64);
        self.metrics.cache_misses.inc_by(missing.len() as u64);
        let queued: Vec<Arc<Translation>> = if missing.is_empty() {
            Vec::new()
        } else {
            let answer = self.batcher.submit(missing.clone(), alignments)?;
            let deadline = started + self.limits.request_timeout;
            match tokio::time::timeout_at(deadline.into(), answer).await {
                Err(_) => {
                    self.metrics.rejected.with_label_values(&["deadline"]).inc();
                    return Err(ApiError::new(
                        axum::http::StatusCode::GATEWAY_TIMEOUT,
                        format!(
                            "not translated within {} s (--request-timeout); the server is busy",
                            self.limits.request_timeout.as_secs_f64()
                        ),
                    ));
                }
                Ok(Err(_)) => return Err(ApiError::internal("the inference worker stopped")),
                Ok(Ok(Err(e))) => return Err(ApiError::internal(format!("cannot translate: {e}"))),
                Ok(Ok(Ok(t))) => t,
            }
        };
        for (sentence, t) in missing.iter().zip(queued) {
            found.insert(sentence.as_str(), t);
        }
        self.metrics
            .sentences_answered
            .inc_by(stats.sentences as u64);
        self.usage[caller.0.map_or(0, |k| k.0)].fetch_add(chars as u64, Ordering::Relaxed);

        let mut items = Vec::with_capacity(documents.len());
        for (i, document) in documents.iter().enumerate() {
            let translations: Vec<Translation> = document
                .sentences()
                .iter()
                .map(|s| found.get(s).map(|t| (**t).clone()))
                .collect::<Option<_>>()
                .ok_or_else(|| ApiError::internal("a sentence came back untranslated"))?;
            let render = |t: &[Translation]| {
                document.render(t).map_err(|e| {
                    ApiError::internal(format!("cannot render the translation: {e:#}"))
                })
            };
            let text = render(&translations)?;
            let mut alternatives: Vec<String> = Vec::new();
            for rank in 0..request.alternatives {
                let ranked: Vec<Translation> = translations
                    .iter()
                    .map(|t| Translation {
                        text: t
                            .alternatives
                            .get(rank)
                            .or(t.alternatives.last())
                            .unwrap_or(&t.text)
                            .clone(),
                        ..t.clone()
                    })
                    .collect();
                let alternative = render(&ranked)?;
                if alternative != text && !alternatives.contains(&alternative) {
                    alternatives.push(alternative);
                }
            }
            items.push(TranslatedItem {
                text,
                alternatives,
                detected: detected.as_ref().map(|d| d[i].clone()),
            });
        }
        Ok(Translated { items, stats })
    }

    /// Identifies each item's language from its sentences (markup left out); an item
    /// confidently in another language is refused, naming the language.
    fn identify(
        &self,
        documents: &[Markup],
        field: &str,
        list: bool,
    ) -> Result<Vec<Detection>, ApiError> {
        documents
            .iter()
            .enumerate()
            .map(|(i, document)| {
                let d = detect(&document.sentences().join(" "));
                if d.is_french_enough() {
                    return Ok(Detection {
                        code: "fr",
                        name: "French",
                        confidence: if d.code == "fr" { d.confidence } else { 0.0 },
                        reliable: d.reliable && d.code == "fr",
                    });
                }
                self.metrics.rejected.with_label_values(&["language"]).inc();
                Err(ApiError::bad_request(format!(
                    "{} is in {} ({}, confidence {:.0} %), not French: this server translates French into English only",
                    item_name(field, i, list),
                    d.name,
                    d.code,
                    d.confidence
                )))
            })
            .collect()
    }
}

/// The one place a request's format picks the document reader.
fn markup_format(format: TextFormat) -> Result<InputFormat, ApiError> {
    Ok(match format {
        TextFormat::Text => InputFormat::Text,
        // HTML fragments and pages, with their inline markup projected (src/markup/html.rs).
        TextFormat::Html => InputFormat::Html,
    })
}

/// Whether a format's translations need word alignments (to carry inline markup across).
fn needs_alignments(format: TextFormat) -> bool {
    format == TextFormat::Html
}

/// How an item is named in an error: `q` for a single text, `q[2]` in an array.
fn item_name(field: &str, index: usize, list: bool) -> String {
    if list {
        format!("{field}[{index}]")
    } else {
        field.to_string()
    }
}
