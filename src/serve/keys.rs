//! Optional API keys, read from a file, with a request rate and a character rate per key.
//!
//! The file has one key per line, optionally followed by that key's limits:
//!
//! ```text
//! # key                               requests/minute  characters/minute
//! 5c3e5a3f-mastodon-instance          600              200000
//! weblate-3f9a                        120
//! curl-tests
//! ```
//!
//! Missing limits take the server's defaults (`--key-requests-per-minute`,
//! `--key-chars-per-minute`); 0 means no limit. A key is compared in constant time: the given
//! key and every stored key are hashed to 32 bytes, and every stored hash is compared with
//! `subtle`, so neither the length nor the first differing byte of a stored key leaks through
//! timing.

use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Per-minute limits of one key (`None`: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyLimits {
    /// Requests per minute.
    pub requests_per_minute: Option<NonZeroU32>,
    /// Characters per minute.
    pub chars_per_minute: Option<NonZeroU32>,
}

struct Key {
    hash: [u8; 32],
    requests: Option<DefaultDirectRateLimiter>,
    chars: Option<DefaultDirectRateLimiter>,
}

/// The keys of a server; identifies a caller by index, never by the key itself.
pub struct ApiKeys {
    keys: Vec<Key>,
    clock: DefaultClock,
}

/// Which key a request came with (an index: keys never go into logs or metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyId(pub usize);

/// Why a key's request may not go on now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateError {
    /// Over its rate: try again after this long.
    Wait(Duration),
    /// The request alone has more characters than the key may send in a minute.
    TooLarge {
        /// The key's characters per minute.
        limit: u32,
    },
}

impl ApiKeys {
    /// Reads a keys file; `defaults` apply to keys without limits of their own.
    pub fn load(path: &Path, defaults: KeyLimits) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the API keys file {}", path.display()))?;
        Self::parse(&text, defaults).with_context(|| path.display().to_string())
    }

    /// Parses the text of a keys file.
    pub fn parse(text: &str, defaults: KeyLimits) -> Result<Self> {
        let mut keys: Vec<Key> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let key = words.next().expect("a non-empty line has a word");
            let mut limit =
                |name: &str, default: Option<NonZeroU32>| -> Result<Option<NonZeroU32>> {
                    match words.next() {
                        None => Ok(default),
                        Some(w) => {
                            let n: u32 = w.parse().with_context(|| {
                                format!(
                                    "line {}: {name} {w:?} is not a whole number (0 to {})",
                                    n + 1,
                                    u32::MAX
                                )
                            })?;
                            Ok(NonZeroU32::new(n))
                        }
                    }
                };
            let requests = limit("requests per minute", defaults.requests_per_minute)?;
            let chars = limit("characters per minute", defaults.chars_per_minute)?;
            if words.next().is_some() {
                bail!(
                    "line {}: expected KEY [REQUESTS_PER_MINUTE [CHARACTERS_PER_MINUTE]]",
                    n + 1
                );
            }
            let hash = *blake3::hash(key.as_bytes()).as_bytes();
            if keys.iter().any(|k| k.hash == hash) {
                bail!("line {}: this key is listed twice", n + 1);
            }
            keys.push(Key {
                hash,
                requests: requests.map(|r| RateLimiter::direct(Quota::per_minute(r))),
                chars: chars.map(|c| RateLimiter::direct(Quota::per_minute(c))),
            });
        }
        if keys.is_empty() {
            bail!("the API keys file lists no key");
        }
        Ok(Self {
            keys,
            clock: DefaultClock::default(),
        })
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys (never true for a loaded file).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key `given` is, compared with every stored key in constant time.
    pub fn find(&self, given: &str) -> Option<KeyId> {
        let hash = blake3::hash(given.as_bytes());
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, key) in self.keys.iter().enumerate() {
            let equal = key.hash.ct_eq(hash.as_bytes());
            index = u64::conditional_select(&index, &(i as u64), equal);
            found |= equal;
        }
        bool::from(found).then_some(KeyId(index as usize))
    }

    /// Counts one request of `chars` characters against the key's rates.
    pub fn check(&self, id: KeyId, chars: usize) -> Result<(), RateError> {
        let key = &self.keys[id.0];
        if let Some(requests) = &key.requests {
            requests
                .check()
                .map_err(|n| RateError::Wait(n.wait_time_from(self.clock.now())))?;
        }
        if let (Some(limiter), Some(n)) = (
            &key.chars,
            NonZeroU32::new(chars.min(u32::MAX as usize) as u32),
        ) {
            match limiter.check_n(n) {
                Ok(Ok(())) => {}
                Ok(Err(not_until)) => {
                    return Err(RateError::Wait(not_until.wait_time_from(self.clock.now())))
                }
                Err(capacity) => return Err(RateError::TooLarge { limit: capacity.0 }),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_find_and_rates() {
        let keys = ApiKeys::parse(
            "# comment\nalpha 2 10\n\nbeta  # no limits of its own\ngamma 0 0\ndelta 0 10\n",
            KeyLimits {
                requests_per_minute: NonZeroU32::new(1),
                chars_per_minute: None,
            },
        )
        .unwrap();
        assert_eq!(keys.len(), 4);
        assert_eq!(keys.find("alpha"), Some(KeyId(0)));
        assert_eq!(keys.find("gamma"), Some(KeyId(2)));
        assert_eq!(keys.find("alph"), None);
        assert_eq!(keys.find(""), None);
        // alpha: 2 requests, 10 characters a minute.
        assert_eq!(keys.check(KeyId(0), 4), Ok(()));
        assert!(matches!(keys.check(KeyId(0), 7), Err(RateError::Wait(_))));
        assert_eq!(
            keys.check(KeyId(3), 11),
            Err(RateError::TooLarge { limit: 10 })
        );
        // beta takes the default: one request a minute.
        assert_eq!(keys.check(KeyId(1), 1_000_000), Ok(()));
        assert!(matches!(keys.check(KeyId(1), 1), Err(RateError::Wait(d)) if d > Duration::ZERO));
        // gamma: no limits.
        for _ in 0..100 {
            assert_eq!(keys.check(KeyId(2), 1_000_000), Ok(()));
        }
        assert!(ApiKeys::parse("a\na\n", KeyLimits::default()).is_err());
        assert!(ApiKeys::parse("a x\n", KeyLimits::default()).is_err());
        assert!(ApiKeys::parse("a 1 2 3\n", KeyLimits::default()).is_err());
        assert!(ApiKeys::parse("# none\n", KeyLimits::default()).is_err());
    }
}
