//! The persistent store of a corpus run: every translation made, keyed by what produced it
//! (model, precision, decoding options) and the source sentence, in SQLite.
//!
//! It is what makes a run resumable: translations are committed a chunk at a time (WAL
//! journal, so a killed process loses at most the chunk in flight and never leaves the file
//! inconsistent), and a run that starts again finds them. It doubles as a cache across runs
//! with the same model and options; translations made with other ones are kept apart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::flags::Flags;

/// A stored translation.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The English text.
    pub target: String,
    /// Its score.
    pub score: f32,
    /// Source tokens the model read.
    pub source_tokens: u32,
    /// Target tokens it generated.
    pub target_tokens: u32,
    /// Signs that the translation may be broken.
    pub flags: Flags,
    /// The model's hard alignment (Marian's `0-0 1-2` text), when it was asked for.
    pub alignment: Option<String>,
}

/// An open store, bound to one context (model + options).
pub struct Store {
    connection: Connection,
    path: PathBuf,
    context: i64,
    other_contexts: usize,
}

impl Store {
    /// Opens (or creates) the store at `path` for `context`, a description of everything that
    /// decides a translation.
    pub fn open(path: &Path, context: &str) -> Result<Self> {
        let describe = |what: &str| format!("cache {}: {what}", path.display());
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| describe("cannot open it (a SQLite database is expected)"))?;
        connection
            .busy_timeout(std::time::Duration::from_secs(10))
            .with_context(|| describe("cannot configure it"))?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .with_context(|| describe("cannot use it (read-only or not a SQLite database?)"))?;
        // In WAL mode a commit survives the process being killed; NORMAL only risks the last
        // commits on a power cut, which resuming recomputes.
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .with_context(|| describe("cannot configure it"))?;
        connection
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS contexts (
                     id INTEGER PRIMARY KEY,
                     description TEXT NOT NULL UNIQUE
                 );
                 CREATE TABLE IF NOT EXISTS translations (
                     context INTEGER NOT NULL REFERENCES contexts(id),
                     source TEXT NOT NULL,
                     target TEXT NOT NULL,
                     score REAL NOT NULL,
                     source_tokens INTEGER NOT NULL,
                     target_tokens INTEGER NOT NULL,
                     flags INTEGER NOT NULL,
                     alignment TEXT,
                     PRIMARY KEY (context, source)
                 ) WITHOUT ROWID;",
            )
            .with_context(|| {
                describe("cannot create its tables (read-only, or not a traduire cache?)")
            })?;
        // Stores made before alignments existed lack the column: add it (NULL: not known).
        let has_alignment: bool = connection
            .query_row(
                "SELECT count(*) FROM pragma_table_info('translations') WHERE name = 'alignment'",
                [],
                |row| row.get::<_, i64>(0),
            )
            .with_context(|| describe("cannot read it"))?
            > 0;
        if !has_alignment {
            connection
                .execute_batch("ALTER TABLE translations ADD COLUMN alignment TEXT")
                .with_context(|| describe("cannot add the alignment column (read-only?)"))?;
        }
        let existing: Option<i64> = connection
            .query_row(
                "SELECT id FROM contexts WHERE description = ?1",
                params![context],
                |row| row.get(0),
            )
            .optional()
            .with_context(|| describe("cannot read it"))?;
        let context_id = match existing {
            Some(id) => id,
            None => {
                connection
                    .execute(
                        "INSERT INTO contexts (description) VALUES (?1)",
                        params![context],
                    )
                    .with_context(|| describe("cannot write to it (read-only or disk full?)"))?;
                connection.last_insert_rowid()
            }
        };
        let contexts: i64 = connection
            .query_row("SELECT count(*) FROM contexts", [], |row| row.get(0))
            .with_context(|| describe("cannot read it"))?;
        Ok(Self {
            connection,
            path: path.to_path_buf(),
            context: context_id,
            other_contexts: (contexts - 1).max(0) as usize,
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many other model/option contexts the store holds translations for (not reused).
    pub fn other_contexts(&self) -> usize {
        self.other_contexts
    }

    /// Translations stored for this context, by source.
    pub fn stored(&self) -> Result<u64> {
        let n: i64 = self
            .connection
            .query_row(
                "SELECT count(*) FROM translations WHERE context = ?1",
                params![self.context],
                |row| row.get(0),
            )
            .with_context(|| format!("cache {}: cannot read it", self.path.display()))?;
        Ok(n as u64)
    }

    /// The stored translations of `sources` (those found).
    pub fn lookup<'a>(
        &self,
        sources: impl IntoIterator<Item = &'a str>,
    ) -> Result<HashMap<String, Stored>> {
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT target, score, source_tokens, target_tokens, flags, alignment
                 FROM translations WHERE context = ?1 AND source = ?2",
            )
            .with_context(|| format!("cache {}: cannot read it", self.path.display()))?;
        let mut found = HashMap::new();
        for source in sources {
            let row = statement
                .query_row(params![self.context, source], |row| {
                    Ok(Stored {
                        target: row.get(0)?,
                        score: row.get::<_, f64>(1)? as f32,
                        source_tokens: row.get(2)?,
                        target_tokens: row.get(3)?,
                        flags: Flags::from_bits(row.get(4)?),
                        alignment: row.get(5)?,
                    })
                })
                .optional()
                .with_context(|| format!("cache {}: cannot read it", self.path.display()))?;
            if let Some(stored) = row {
                found.insert(source.to_string(), stored);
            }
        }
        Ok(found)
    }

    /// Stores translations in one transaction: all of them or none.
    pub fn insert(&mut self, items: &[(&str, &Stored)]) -> Result<()> {
        let path = self.path.clone();
        let write_error = move || {
            format!(
                "cache {}: cannot write to it (read-only or disk full?); it keeps the translations committed so far",
                path.display()
            )
        };
        let transaction = self
            .connection
            .transaction()
            .with_context(write_error.clone())?;
        {
            let mut statement = transaction
                .prepare_cached(
                    "INSERT OR REPLACE INTO translations
                     (context, source, target, score, source_tokens, target_tokens, flags, alignment)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .with_context(write_error.clone())?;
            for (source, stored) in items {
                statement
                    .execute(params![
                        self.context,
                        source,
                        stored.target,
                        f64::from(stored.score),
                        stored.source_tokens,
                        stored.target_tokens,
                        stored.flags.bits(),
                        stored.alignment
                    ])
                    .with_context(write_error.clone())?;
            }
        }
        transaction.commit().with_context(write_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(target: &str, score: f32) -> Stored {
        Stored {
            target: target.into(),
            score,
            source_tokens: 3,
            target_tokens: 4,
            flags: Flags::NONE.with(crate::flags::Flag::Repeat),
            alignment: Some("0-0 1-1".into()),
        }
    }

    #[test]
    fn contexts_are_kept_apart_and_scores_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.sqlite");
        let mut a = Store::open(&path, "model A").unwrap();
        let odd = f32::from_bits(0xbe99_9999); // a score with every mantissa bit in use
        a.insert(&[("Bonjour.", &stored("Hello.", odd)), ("", &stored("", 0.0))])
            .unwrap();
        assert_eq!(a.stored().unwrap(), 2);
        drop(a);
        let b = Store::open(&path, "model B").unwrap();
        assert_eq!(b.other_contexts(), 1);
        assert!(b.lookup(["Bonjour."]).unwrap().is_empty());
        let a = Store::open(&path, "model A").unwrap();
        let found = a.lookup(["Bonjour.", "Absent."]).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found["Bonjour."].score.to_bits(), odd.to_bits());
        assert_eq!(found["Bonjour."].target, "Hello.");
        assert_eq!(found["Bonjour."].flags, stored("", 0.0).flags);
    }

    #[test]
    fn not_a_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.sqlite");
        std::fs::write(
            &path,
            b"this is not a database at all, just some text bytes",
        )
        .unwrap();
        let err = format!("{:#}", Store::open(&path, "x").err().unwrap());
        assert!(err.contains("cache.sqlite"), "{err}");
    }
}
