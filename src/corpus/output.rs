//! Corpus output: rows written in input order as Moses file pairs, TSV or JSONL, to partial
//! files that are renamed into place only when the run is complete, plus a manifest that says
//! what the output is (for `corpus merge`).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::reader::{Row, RowId};
use crate::flags::Flags;
use crate::write::{escape_tsv_field, single_line};

/// Output formats of `corpus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CorpusFormat {
    /// `OUT.fr` and `OUT.en`, line-aligned.
    Moses,
    /// `OUT`: header `id fr en score flags` (`alignment` added with alignments), one row per
    /// line.
    Tsv,
    /// `OUT`: one JSON object per row.
    Jsonl,
}

impl CorpusFormat {
    /// The files this format writes for the output path (or prefix) `out`.
    pub fn files(self, out: &Path) -> Vec<PathBuf> {
        match self {
            CorpusFormat::Moses => vec![suffixed(out, ".fr"), suffixed(out, ".en")],
            _ => vec![out.to_path_buf()],
        }
    }

    /// The TSV header line, written once at the top.
    pub(crate) fn header(self, alignments: bool) -> Option<&'static str> {
        match (self, alignments) {
            (CorpusFormat::Tsv, false) => Some("id\tfr\ten\tscore\tflags\n"),
            (CorpusFormat::Tsv, true) => Some("id\tfr\ten\tscore\tflags\talignment\n"),
            _ => None,
        }
    }
}

/// `path` with `suffix` appended to its file name.
pub fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// What an output is: written next to it as `OUT.manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The program and its version.
    pub generator: String,
    /// Output format.
    pub format: CorpusFormat,
    /// Whether each row carries the model's alignment (TSV and JSONL).
    #[serde(default)]
    pub alignments: bool,
    /// This output's shard, `[index, count]` (`[0, 1]` for a whole run).
    pub shard: [usize; 2],
    /// The inputs, as given, with their sizes in bytes (0 for stdin).
    pub inputs: Vec<InputRecord>,
    /// How inputs were read (`lines`, `documents`, `jsonl:FIELD`).
    pub mode: String,
    /// Everything that decides a translation (model, precision, decoding options).
    pub context: String,
    /// Rows in the whole input (all shards).
    pub total_rows: u64,
    /// Rows in this output.
    pub rows: u64,
    /// The output files (names relative to the manifest) with sizes and BLAKE3 hashes.
    pub files: Vec<FileRecord>,
}

/// An input of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    /// As given (or found in a directory).
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// An output file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// BLAKE3 hash of the contents, hex.
    pub blake3: String,
}

impl Manifest {
    /// The manifest path of an output path (or Moses prefix).
    pub fn path(out: &Path) -> PathBuf {
        suffixed(out, ".manifest.json")
    }

    /// Reads the manifest of `out`.
    pub fn read(out: &Path) -> Result<Self> {
        let path = Self::path(out);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{}: cannot read the manifest of {} (is it a complete corpus output?)",
                path.display(),
                out.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a corpus manifest", path.display()))
    }
}

/// A file written under `PATH.partial` and renamed to `PATH` when complete. The partial file is
/// locked, so two runs cannot write the same output.
/// Dropped before [`PartialFile::commit`] (an error on the way), it deletes the partial file:
/// a full disk gets its space back, and nothing half-written is left to look like output.
struct PartialFile {
    path: PathBuf,
    partial: PathBuf,
    out: Option<BufWriter<File>>,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl PartialFile {
    fn create(path: &Path) -> Result<Self> {
        let partial = suffixed(path, ".partial");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&partial)
            .with_context(|| format!("{}: cannot create the output", partial.display()))?;
        if file.try_lock().is_err() {
            bail!(
                "{}: another traduire corpus run is writing this output",
                partial.display()
            );
        }
        // A previous run may have been killed halfway: start the file again.
        file.set_len(0)
            .with_context(|| format!("{}: cannot write the output", partial.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            partial,
            out: Some(BufWriter::with_capacity(1 << 16, file)),
            hasher: blake3::Hasher::new(),
            bytes: 0,
        })
    }

    fn write(&mut self, data: &[u8]) -> Result<()> {
        let out = self.out.as_mut().expect("written before commit");
        out.write_all(data).with_context(|| {
            format!(
                "{}: cannot write the output (disk full?)",
                self.partial.display()
            )
        })?;
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        Ok(())
    }

    /// Syncs and renames into place.
    fn commit(mut self) -> Result<FileRecord> {
        let out = self.out.take().expect("committed once");
        let placed = (|| {
            let file = out
                .into_inner()
                .map_err(|e| e.into_error())
                .with_context(|| {
                    format!(
                        "{}: cannot write the output (disk full?)",
                        self.partial.display()
                    )
                })?;
            file.sync_all()
                .with_context(|| format!("{}: cannot sync the output", self.partial.display()))?;
            std::fs::rename(&self.partial, &self.path).with_context(|| {
                format!(
                    "cannot rename {} into {}",
                    self.partial.display(),
                    self.path.display()
                )
            })
        })();
        if placed.is_err() {
            let _ = std::fs::remove_file(&self.partial);
        }
        placed?;
        Ok(FileRecord {
            name: file_name(&self.path),
            bytes: self.bytes,
            blake3: self.hasher.finalize().to_hex().to_string(),
        })
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The partial files of one output, with the format's header written.
pub(crate) struct PartialFileWriter {
    files: Vec<PartialFile>,
}

impl PartialFileWriter {
    /// Opens the partial files of `out` (a path, or a prefix for Moses).
    pub(crate) fn create(format: CorpusFormat, alignments: bool, out: &Path) -> Result<Self> {
        let files = format
            .files(out)
            .iter()
            .map(|p| PartialFile::create(p))
            .collect::<Result<Vec<_>>>()?;
        let mut writer = Self { files };
        if let Some(header) = format.header(alignments) {
            writer.write(0, header.as_bytes())?;
        }
        Ok(writer)
    }

    /// Appends `data` to file `file`.
    pub(crate) fn write(&mut self, file: usize, data: &[u8]) -> Result<()> {
        self.files[file].write(data)
    }

    /// Syncs every file and renames it into place.
    pub(crate) fn commit(self) -> Result<Vec<FileRecord>> {
        self.files.into_iter().map(PartialFile::commit).collect()
    }
}

/// Writes rows in one of the corpus formats.
pub struct CorpusWriter {
    format: CorpusFormat,
    alignments: bool,
    out: PathBuf,
    files: PartialFileWriter,
    rows: u64,
}

impl CorpusWriter {
    /// Opens the partial files of `out` (a path, or a prefix for Moses). With `alignments`
    /// (TSV and JSONL only), every row gets an `alignment` column or key.
    pub fn create(format: CorpusFormat, alignments: bool, out: &Path) -> Result<Self> {
        if alignments && format == CorpusFormat::Moses {
            bail!("alignments are written in the tsv and jsonl corpus formats, not in moses");
        }
        Ok(Self {
            format,
            alignments,
            out: out.to_path_buf(),
            files: PartialFileWriter::create(format, alignments, out)?,
            rows: 0,
        })
    }

    /// Whether rows carry alignments.
    pub fn alignments(&self) -> bool {
        self.alignments
    }

    /// Writes one row and its translation (`alignment`: Marian's hard alignment, written when
    /// the writer has alignments; an empty row has none).
    pub fn write(
        &mut self,
        row: &Row,
        target: &str,
        score: f32,
        flags: Flags,
        alignment: Option<&str>,
    ) -> Result<()> {
        self.rows += 1;
        match self.format {
            CorpusFormat::Moses => {
                let fr = single_line(&row.source) + "\n";
                let en = single_line(target) + "\n";
                self.files.write(0, fr.as_bytes())?;
                self.files.write(1, en.as_bytes())
            }
            CorpusFormat::Tsv => {
                let mut line = format!(
                    "{}\t{}\t{}\t{:?}\t{}",
                    escape_tsv_field(&row.id.text()),
                    escape_tsv_field(&row.source),
                    escape_tsv_field(target),
                    crate::write::finite_score(score),
                    flags.text()
                );
                if self.alignments {
                    line.push('\t');
                    line.push_str(alignment.unwrap_or(""));
                }
                line.push('\n');
                self.files.write(0, line.as_bytes())
            }
            CorpusFormat::Jsonl => {
                let mut object = row.fields.clone().unwrap_or_default();
                if row.fields.is_none() {
                    object.insert("id".into(), json!(row.id.text()));
                    id_fields(&row.id, &mut object);
                    object.insert("fr".into(), json!(row.source));
                } else {
                    object.insert("id".into(), json!(row.id.text()));
                }
                object.insert("en".into(), json!(target));
                object.insert("score".into(), json!(crate::write::finite_score(score)));
                object.insert("flags".into(), json!(flags));
                if self.alignments {
                    object.insert("alignment".into(), json!(alignment.unwrap_or("")));
                }
                let mut line = serde_json::to_vec(&Value::Object(object))?;
                line.push(b'\n');
                self.files.write(0, &line)
            }
        }
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Commits every file, then writes the manifest (the output is complete once it exists).
    pub fn finish(self, mut manifest: Manifest) -> Result<()> {
        // The manifest of an earlier output here would vouch for files being replaced.
        remove_stale(&Manifest::path(&self.out))?;
        manifest.rows = self.rows;
        manifest.format = self.format;
        manifest.alignments = self.alignments;
        manifest.files = self.files.commit()?;
        write_manifest(&self.out, &manifest)
    }
}

/// Removes `path` if it exists.
pub(crate) fn remove_stale(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("{}: cannot remove the old manifest", path.display()))
        }
        _ => Ok(()),
    }
}

/// Writes `OUT.manifest.json` atomically.
pub(crate) fn write_manifest(out: &Path, manifest: &Manifest) -> Result<()> {
    let path = Manifest::path(out);
    let mut file = crate::write::atomic::AtomicFile::create(&path)?;
    let text = serde_json::to_string_pretty(manifest)? + "\n";
    file.write_all(text.as_bytes())
        .with_context(|| format!("{}: cannot write the manifest", path.display()))?;
    file.commit()
}

/// The fields of a row's id, for JSONL.
fn id_fields(id: &RowId, object: &mut Map<String, Value>) {
    match id {
        RowId::Line { doc, line } => {
            object.insert("doc".into(), json!(doc));
            object.insert("line".into(), json!(line));
        }
        RowId::Sentence {
            doc,
            paragraph,
            sentence,
            kind,
        } => {
            object.insert("doc".into(), json!(doc));
            object.insert("paragraph".into(), json!(paragraph));
            object.insert("sentence".into(), json!(sentence));
            object.insert("kind".into(), json!(kind));
        }
    }
}

/// The BLAKE3 hash and size of a file.
pub(crate) fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hasher.finalize().to_hex().to_string()))
}
