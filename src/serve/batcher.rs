//! The one queue in front of the model, and the inference worker that owns it.
//!
//! Requests put their sentences (those not in the cache) into the queue as a job. One worker
//! thread owns the [`Translator`] (and through it the model's thread pool, sized by
//! `--threads`), so inference never runs on more threads than the user asked for, however
//! many requests arrive. The worker forms token-budget batches from the sentences of all
//! waiting jobs, first come first served:
//!
//! - it waits up to `max_batch_wait` after the oldest waiting job arrived for others to join,
//!   unless a batch is already full;
//! - a sentence that several jobs ask for is translated once; one that an earlier batch
//!   translated while it waited comes from the cache;
//! - a job whose client went away (its answer channel is closed) is dropped before its
//!   sentences take room in a batch;
//! - each job gets back exactly its sentences, in its order, once all are translated.
//!
//! On the CPU engine a sentence's translation does not depend on its batch, so none of this
//! changes a single byte of any answer. Alignments, where a job needs them, are computed for
//! the whole batch: they do not change the text either.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::oneshot;

use super::cache::Cache;
use super::error::ApiError;
use super::metrics::Metrics;
use crate::translator::{Translation, Translator, TranslatorOptions};

/// A job's answer: its sentences' translations in order, or why the batch failed.
pub type JobResult = Result<Vec<Arc<Translation>>, String>;

/// How the worker forms batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPolicy {
    /// Longest wait for company after the oldest waiting job arrived (zero: none).
    pub max_batch_wait: Duration,
    /// Most sentences waiting or being translated; beyond it requests are refused at once.
    pub queue_limit: usize,
    /// Never put sentences of two requests in one batch (for benchmarks: how servers that
    /// batch only within a request behave).
    pub one_request_per_batch: bool,
}

/// A request's sentences, waiting for the model.
struct Job {
    sentences: Vec<String>,
    alignments: bool,
    reply: oneshot::Sender<JobResult>,
    enqueued: Instant,
}

/// The submitting side of the queue, held by the request handlers.
pub struct Batcher {
    jobs: Mutex<Option<Sender<Job>>>,
    queued: Arc<AtomicUsize>,
    /// Recent throughput in sentences per second (f64 bits), for `Retry-After`.
    rate: Arc<AtomicU64>,
    /// Alternatives each translation has (the n-best list beyond the best), once loaded.
    alternatives: Arc<AtomicUsize>,
    policy: BatchPolicy,
    metrics: Arc<Metrics>,
}

/// What loads the model on the worker thread: the translator and its options.
pub type Loader = Box<dyn FnOnce() -> Result<(Translator, TranslatorOptions)> + Send>;

impl Batcher {
    /// Starts the worker thread: it runs `load`, reports the outcome on the returned
    /// channel, then serves jobs until [`Batcher::close`] and the queue is empty.
    pub fn start(
        load: Loader,
        policy: BatchPolicy,
        cache: Arc<Cache>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<(Self, oneshot::Receiver<Result<()>>, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel();
        let (loaded_tx, loaded_rx) = oneshot::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let rate = Arc::new(AtomicU64::new(0f64.to_bits()));
        let alternatives = Arc::new(AtomicUsize::new(0));
        let worker_state = (
            queued.clone(),
            rate.clone(),
            metrics.clone(),
            alternatives.clone(),
        );
        let handle = std::thread::Builder::new()
            .name("traduire-inference".into())
            .spawn(move || {
                let (translator, options) = match load() {
                    Ok(loaded) => loaded,
                    Err(e) => {
                        let _ = loaded_tx.send(Err(e));
                        return;
                    }
                };
                let (queued, rate, metrics, alternatives) = worker_state;
                let n = options.decode.num_return_sequences.saturating_sub(1);
                alternatives.store(n, Ordering::Release);
                metrics.ready.set(1);
                let _ = loaded_tx.send(Ok(()));
                Worker {
                    translator,
                    options,
                    policy,
                    cache,
                    metrics,
                    queued,
                    rate,
                    jobs: rx,
                }
                .run();
            })?;
        let batcher = Self {
            jobs: Mutex::new(Some(tx)),
            queued,
            rate,
            alternatives,
            policy,
            metrics,
        };
        Ok((batcher, loaded_rx, handle))
    }

    /// Queues `sentences` (distinct, none cached), or refuses at once: 429 with
    /// `Retry-After` past the queue limit, 503 once closed.
    pub fn submit(
        &self,
        sentences: Vec<String>,
        alignments: bool,
    ) -> Result<oneshot::Receiver<JobResult>, ApiError> {
        let n = sentences.len();
        let limit = self.policy.queue_limit;
        if n > limit {
            self.metrics
                .rejected
                .with_label_values(&["too_large"])
                .inc();
            return Err(ApiError::bad_request(format!(
                "the request has {n} sentences to translate; this server queues at most {limit} (--queue-limit)"
            )));
        }
        let admitted = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q + n <= limit).then_some(q + n)
            });
        let queued = match admitted {
            Ok(before) => before + n,
            Err(queued) => {
                self.metrics
                    .rejected
                    .with_label_values(&["queue_full"])
                    .inc();
                return Err(ApiError::too_many(
                    format!("the queue is full ({queued} of {limit} sentences waiting); try again later"),
                    self.retry_after(queued),
                ));
            }
        };
        self.metrics.queue_sentences.set(queued as i64);
        let (reply, answer) = oneshot::channel();
        let job = Job {
            sentences,
            alignments,
            reply,
            enqueued: Instant::now(),
        };
        let sent = match &*self.jobs.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(tx) => tx.send(job).is_ok(),
            None => false,
        };
        if !sent {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(ApiError::unavailable(
                "the server is shutting down",
                Duration::from_secs(5),
            ));
        }
        Ok(answer)
    }

    /// Most alternatives a request may ask for: the loaded options' n-best list beyond the
    /// best (0 until the model is loaded).
    pub fn alternatives_limit(&self) -> usize {
        self.alternatives.load(Ordering::Acquire)
    }

    /// Sentences waiting or being translated.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Accepts no more jobs; the worker finishes those queued, then ends.
    pub fn close(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// How long until `queued` sentences are done at the recent rate (1 to 60 s).
    fn retry_after(&self, queued: usize) -> Duration {
        let rate = f64::from_bits(self.rate.load(Ordering::Relaxed));
        let secs = if rate > 0.0 {
            queued as f64 / rate
        } else {
            1.0
        };
        Duration::from_secs_f64(secs.clamp(1.0, 60.0))
    }
}

/// A job in the worker's hands.
struct Pending {
    job: Job,
    results: Vec<Option<Arc<Translation>>>,
    /// The next sentence not yet given to a batch (or answered from the cache).
    next: usize,
    /// Sentences not yet translated.
    remaining: usize,
    started: bool,
    done: bool,
}

impl Pending {
    fn new(job: Job) -> Self {
        let n = job.sentences.len();
        Self {
            job,
            results: vec![None; n],
            next: 0,
            remaining: n,
            started: false,
            done: false,
        }
    }

    fn unassigned(&self) -> usize {
        self.job.sentences.len() - self.next
    }
}

/// A batch being formed: distinct sentences and who waits for each.
#[derive(Default)]
struct Batch {
    sentences: Vec<String>,
    index: HashMap<String, usize>,
    /// For each sentence, (job, position in the job).
    waiting: Vec<Vec<(usize, usize)>>,
    longest: usize,
    alignments: bool,
}

struct Worker {
    translator: Translator,
    options: TranslatorOptions,
    policy: BatchPolicy,
    cache: Arc<Cache>,
    metrics: Arc<Metrics>,
    queued: Arc<AtomicUsize>,
    rate: Arc<AtomicU64>,
    jobs: Receiver<Job>,
}

impl Worker {
    fn run(self) {
        let mut pending: VecDeque<Pending> = VecDeque::new();
        loop {
            if pending.is_empty() {
                match self.jobs.recv() {
                    Ok(job) => pending.push_back(Pending::new(job)),
                    // Closed and drained: the server is shutting down.
                    Err(_) => return,
                }
            }
            while let Ok(job) = self.jobs.try_recv() {
                pending.push_back(Pending::new(job));
            }
            self.wait_for_company(&mut pending);
            self.drop_abandoned(&mut pending);
            let batch = self.form_batch(&mut pending);
            if !batch.sentences.is_empty() {
                self.translate(batch, &mut pending);
            }
            self.answer_finished(&mut pending);
        }
    }

    /// Waits until a batch is full or `max_batch_wait` has passed since the oldest job
    /// that no batch has started yet arrived.
    fn wait_for_company(&self, pending: &mut VecDeque<Pending>) {
        if self.policy.max_batch_wait.is_zero() || self.policy.one_request_per_batch {
            return;
        }
        let Some(oldest) = pending.iter().find(|p| !p.started).map(|p| p.job.enqueued) else {
            return;
        };
        let deadline = oldest + self.policy.max_batch_wait;
        while !self.batch_full(pending) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match self.jobs.recv_timeout(deadline - now) {
                Ok(job) => pending.push_back(Pending::new(job)),
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    /// Whether the waiting sentences already fill a batch (counted by sentences; the token
    /// budget is checked when the batch is formed).
    fn batch_full(&self, pending: &VecDeque<Pending>) -> bool {
        let waiting: usize = pending.iter().map(Pending::unassigned).sum();
        waiting >= self.options.batch.max_sentences
    }

    /// Removes jobs whose client went away (the handler dropped its end on disconnect or
    /// deadline), before their sentences take room in a batch.
    fn drop_abandoned(&self, pending: &mut VecDeque<Pending>) {
        pending.retain(|p| {
            if !p.job.reply.is_closed() {
                return true;
            }
            self.release(p.remaining);
            self.metrics.dropped.inc();
            false
        });
    }

    /// Takes sentences from the waiting jobs, oldest first, until the batch is full.
    fn form_batch(&self, pending: &mut VecDeque<Pending>) -> Batch {
        let limits = self.options.batch;
        let mut batch = Batch::default();
        let mut requests = 0;
        'jobs: for (j, p) in pending.iter_mut().enumerate() {
            if p.unassigned() == 0 {
                continue;
            }
            if self.policy.one_request_per_batch && requests == 1 {
                break;
            }
            requests += 1;
            if !p.started {
                p.started = true;
                self.metrics
                    .queue_wait_seconds
                    .observe(p.job.enqueued.elapsed().as_secs_f64());
            }
            while p.next < p.job.sentences.len() {
                let i = p.next;
                let sentence = &p.job.sentences[i];
                if let Some(t) = self.cache.get(sentence, p.job.alignments) {
                    p.results[i] = Some(t);
                    p.remaining -= 1;
                    p.next += 1;
                    self.release(1);
                    continue;
                }
                if let Some(&u) = batch.index.get(sentence) {
                    batch.waiting[u].push((j, i));
                    batch.alignments |= p.job.alignments;
                    p.next += 1;
                    continue;
                }
                let tokens = self
                    .translator
                    .tokenizer()
                    .encode(sentence)
                    .map_or(1, |ids| ids.len());
                let count = batch.sentences.len();
                let longest = batch.longest.max(tokens);
                let fits =
                    count < limits.max_sentences && (count + 1) * longest <= limits.max_tokens;
                if count > 0 && !fits {
                    break 'jobs;
                }
                batch.longest = longest;
                batch.index.insert(sentence.clone(), count);
                batch.sentences.push(sentence.clone());
                batch.waiting.push(vec![(j, i)]);
                batch.alignments |= p.job.alignments;
                p.next += 1;
            }
        }
        batch
    }

    /// Translates one batch and hands each translation to every job waiting for it.
    fn translate(&self, batch: Batch, pending: &mut VecDeque<Pending>) {
        let started = Instant::now();
        let options = TranslatorOptions {
            alignments: self.options.alignments || batch.alignments,
            ..self.options.clone()
        };
        let sentences: Vec<&str> = batch.sentences.iter().map(String::as_str).collect();
        // A bug in the engine must cost this batch, not the server.
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.translator.translate(&sentences, &options, &mut |_| {})
        }));
        let translations = match outcome {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => return self.fail(&batch, pending, format!("{e:#}")),
            Err(_) => return self.fail(&batch, pending, "the engine panicked".to_string()),
        };
        let n = batch.sentences.len();
        self.metrics.batch_sentences.observe(n as f64);
        self.metrics.sentences_translated.inc_by(n as u64);
        for ((sentence, translation), waiting) in
            batch.sentences.iter().zip(translations).zip(&batch.waiting)
        {
            self.metrics
                .source_tokens
                .inc_by(translation.source_tokens as u64);
            self.metrics
                .target_tokens
                .inc_by(translation.target_tokens as u64);
            let translation = Arc::new(translation);
            self.cache.put(sentence, translation.clone());
            for &(j, i) in waiting {
                let p = &mut pending[j];
                p.results[i] = Some(translation.clone());
                p.remaining -= 1;
                self.release(1);
            }
        }
        let secs = started.elapsed().as_secs_f64().max(1e-6);
        let old = f64::from_bits(self.rate.load(Ordering::Relaxed));
        let now = n as f64 / secs;
        let rate = if old > 0.0 {
            0.8 * old + 0.2 * now
        } else {
            now
        };
        self.rate.store(rate.to_bits(), Ordering::Relaxed);
    }

    /// Answers every job of a failed batch with the error.
    fn fail(&self, batch: &Batch, pending: &mut VecDeque<Pending>, error: String) {
        for waiting in &batch.waiting {
            for &(j, _) in waiting {
                let p = &mut pending[j];
                if !p.done {
                    p.done = true;
                    self.release(p.remaining);
                    let (tx, _) = oneshot::channel();
                    let reply = std::mem::replace(&mut p.job.reply, tx);
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }

    /// Sends their answer to the jobs whose sentences are all translated.
    fn answer_finished(&self, pending: &mut VecDeque<Pending>) {
        for p in pending.iter_mut().filter(|p| p.remaining == 0 && !p.done) {
            p.done = true;
            let results: Vec<Arc<Translation>> = p.results.drain(..).flatten().collect();
            let (tx, _) = oneshot::channel();
            let reply = std::mem::replace(&mut p.job.reply, tx);
            // A client that left meanwhile simply does not read it.
            let _ = reply.send(Ok(results));
        }
        pending.retain(|p| !p.done);
    }

    /// `n` sentences left the queue.
    fn release(&self, n: usize) {
        let before = self.queued.fetch_sub(n, Ordering::AcqRel);
        self.metrics
            .queue_sentences
            .set(before.saturating_sub(n) as i64);
    }
}
