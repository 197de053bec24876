//! JSON Lines: one object per sentence, no header, loadable as-is by Hugging Face `datasets`
//! (`load_dataset("json", data_files=...)`).
//!
//! Keys, in order: `doc` (string, the input name or "-"), `paragraph` and `sentence` (0-based
//! integers), `kind` ("title", "heading", "paragraph" or "list_item"), `fr`, `en` (strings), `score` (always
//! a finite float: non-finite scores are clamped, see `finite_score`), `flags` (a list of
//! names: "repeat", "length_ratio", "length_limit"; empty when none), and with `--alignments`
//! `alignment` (Marian's hard alignment, `"0-0 1-2"`). Every line has every key with the same
//! type, which `datasets` needs to build one schema.

use std::io::Write;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::flags::Flags;

use super::{
    finite_score, for_each_sentence, BilingualDocument, DocumentWriter, ParagraphKind, Sink,
};

pub(crate) struct JsonlWriter {
    out: Sink,
}

#[derive(Serialize)]
struct Record<'a> {
    doc: &'a str,
    paragraph: usize,
    sentence: usize,
    kind: ParagraphKind,
    fr: &'a str,
    en: &'a str,
    /// serde_json writes an f32 in its shortest form and always with a fraction or exponent
    /// ("1.0", "0.25"), so the column is inferred as float on every line.
    score: f32,
    flags: Flags,
    #[serde(skip_serializing_if = "Option::is_none")]
    alignment: Option<&'a str>,
}

impl JsonlWriter {
    pub(crate) fn new(out: Sink) -> JsonlWriter {
        JsonlWriter { out }
    }
}

impl DocumentWriter for JsonlWriter {
    fn write_document(&mut self, doc: &BilingualDocument) -> Result<()> {
        let describe = self.out.describe();
        let out = &mut self.out;
        for_each_sentence(doc, |paragraph, sentence_index, kind, sentence| {
            let record = Record {
                doc: &doc.name,
                paragraph,
                sentence: sentence_index,
                kind,
                fr: &sentence.fr,
                en: &sentence.en,
                score: finite_score(sentence.score),
                flags: sentence.flags,
                alignment: sentence.alignment.as_deref(),
            };
            serde_json::to_writer(&mut *out, &record).map_err(std::io::Error::from)?;
            out.write_all(b"\n")
        })
        .with_context(|| format!("writing JSONL to {describe}"))
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.out.finish()
    }
}
