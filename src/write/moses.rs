//! Moses-style parallel corpus: `PREFIX.fr` and `PREFIX.en`, one sentence per line, line N of
//! one file being the translation of line N of the other.
//!
//! Both files are committed together at `finish`, so a failed run leaves neither.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::atomic::AtomicFile;
use super::{for_each_sentence, BilingualDocument, DocumentWriter, WriterOptions};

pub(crate) struct MosesWriter {
    source: AtomicFile,
    target: AtomicFile,
}

impl MosesWriter {
    pub(crate) fn open(prefix: &Path, options: &WriterOptions) -> Result<MosesWriter> {
        anyhow::ensure!(
            options.source_lang != options.target_lang,
            "the moses format needs two different language codes for its two files"
        );
        Ok(MosesWriter {
            source: AtomicFile::create(&with_suffix(prefix, &options.source_lang))?,
            target: AtomicFile::create(&with_suffix(prefix, &options.target_lang))?,
        })
    }
}

impl DocumentWriter for MosesWriter {
    fn write_document(&mut self, doc: &BilingualDocument) -> Result<()> {
        let (source, target) = (&mut self.source, &mut self.target);
        for_each_sentence(doc, |_p, _s, _kind, sentence| {
            writeln!(source, "{}", one_line(&sentence.fr))?;
            writeln!(target, "{}", one_line(&sentence.en))
        })
        .with_context(|| {
            format!(
                "writing {} and {}",
                self.source.path().display(),
                self.target.path().display()
            )
        })
    }

    fn finish(self: Box<Self>) -> Result<()> {
        // Two renames cannot be one atomic step; both are in the same directory, so the second
        // failing right after the first succeeded is unlikely (it would pair a new .fr file
        // with an old .en one).
        self.source.commit()?;
        self.target.commit()
    }
}

/// `PREFIX` + `.` + `lang`, appended rather than replacing an extension: `corpus.v2` gives
/// `corpus.v2.fr`.
fn with_suffix(prefix: &Path, lang: &str) -> PathBuf {
    let mut name = OsString::from(prefix.as_os_str());
    name.push(".");
    name.push(lang);
    PathBuf::from(name)
}

/// Replaces every character that some tool treats as a line break (Python's `splitlines` is the
/// widest: also VT, FF, FS, GS, RS, NEL, LS, PS), and tabs, with a space, so a sentence is
/// exactly one line in every reader and the two files stay aligned.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' | '\u{B}' | '\u{C}' | '\u{1C}' | '\u{1D}' | '\u{1E}' | '\u{85}'
            | '\u{2028}' | '\u{2029}' => ' ',
            c => c,
        })
        .collect()
}
