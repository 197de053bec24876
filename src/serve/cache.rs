//! The in-memory LRU cache of translations, keyed by source sentence. It is shared by the
//! request handlers (which answer repeats without queueing them) and the inference worker
//! (which fills it, and answers from it sentences that an earlier batch translated while they
//! waited).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use crate::translator::Translation;

/// A bounded cache of translations; size 0 turns it off.
pub struct Cache {
    entries: Option<Mutex<LruCache<String, Arc<Translation>>>>,
}

impl Cache {
    /// A cache of at most `size` sentences.
    pub fn new(size: usize) -> Self {
        Self {
            entries: NonZeroUsize::new(size).map(|n| Mutex::new(LruCache::new(n))),
        }
    }

    /// The translation of `sentence`, if cached with what the caller needs (an alignment,
    /// for markup that is projected through one).
    pub fn get(&self, sentence: &str, alignment: bool) -> Option<Arc<Translation>> {
        let mut entries = self
            .entries
            .as_ref()?
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let found = entries.get(sentence)?;
        (!alignment || found.alignment.is_some()).then(|| found.clone())
    }

    /// Stores a translation (the least recently used entry goes when full).
    pub fn put(&self, sentence: &str, translation: Arc<Translation>) {
        if let Some(entries) = &self.entries {
            let mut entries = entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.put(sentence.to_string(), translation);
        }
    }

    /// How many sentences are cached.
    pub fn len(&self) -> usize {
        self.entries
            .as_ref()
            .map_or(0, |e| e.lock().unwrap_or_else(|e| e.into_inner()).len())
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
