//! Input expansion (files, directories, stdin) and decoding of one input at a time.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Input text that is not UTF-8 (and lossy decoding was not asked for).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: invalid UTF-8 at byte {offset}")]
pub struct InvalidUtf8 {
    /// The input's name (`-` for stdin).
    pub name: String,
    /// Offset of the first invalid byte in the original bytes.
    pub offset: usize,
}

/// Where an input's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standard input, named `-` on the command line.
    Stdin,
    /// A file on disk.
    File(PathBuf),
}

/// One document to read, with the name used in messages and output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// `-` for stdin, otherwise the path as given (or as found under a directory).
    pub name: String,
    /// Where to read it from.
    pub source: Source,
}

/// File extensions picked up when walking a directory: plain text and every document format
/// `traduire translate` reads (see [`crate::markup::InputFormat`]).
const TEXT_EXTENSIONS: [&str; 8] = [
    "txt", "md", "markdown", "html", "htm", "xhtml", "srt", "vtt",
];

/// Expands command-line arguments into inputs: `-` is stdin, a file is itself, a directory
/// yields its text, Markdown, HTML and subtitle files (see `TEXT_EXTENSIONS`) recursively,
/// sorted by path. No arguments means stdin.
pub fn expand_inputs(args: &[String]) -> Result<Vec<Input>> {
    if args.is_empty() {
        return Ok(vec![stdin_input()]);
    }
    let mut inputs = Vec::new();
    for arg in args {
        if arg == "-" {
            inputs.push(stdin_input());
            continue;
        }
        let path = Path::new(arg);
        let meta = fs::metadata(path).with_context(|| format!("{arg}: cannot open input"))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            collect_text_files(path, &mut files)?;
            if files.is_empty() {
                bail!(
                    "{arg}: directory contains no .txt, .md, .markdown, .html, .htm, .xhtml, .srt or .vtt files"
                );
            }
            files.sort();
            inputs.extend(files.into_iter().map(|file| Input {
                name: file.display().to_string(),
                source: Source::File(file),
            }));
        } else {
            inputs.push(Input {
                name: arg.clone(),
                source: Source::File(path.to_path_buf()),
            });
        }
    }
    Ok(inputs)
}

fn stdin_input() -> Input {
    Input {
        name: "-".to_string(),
        source: Source::Stdin,
    }
}

fn collect_text_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        fs::read_dir(dir).with_context(|| format!("{}: cannot read directory", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("{}: cannot read directory", dir.display()))?;
        let path = entry.path();
        // Symlinked directories are not followed, so a link loop cannot recurse forever.
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            collect_text_files(&path, files)?;
        } else if has_text_extension(&path) && path.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

fn has_text_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| TEXT_EXTENSIONS.iter().any(|t| e.eq_ignore_ascii_case(t)))
}

/// Reads and decodes one input. With `lossy`, invalid UTF-8 becomes U+FFFD instead of an
/// error.
pub fn read_input(input: &Input, lossy: bool) -> Result<String> {
    decode(read_bytes(input)?, &input.name, lossy)
}

/// Reads one input's bytes.
pub fn read_bytes(input: &Input) -> Result<Vec<u8>> {
    Ok(match &input.source {
        Source::Stdin => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .context("-: cannot read standard input")?;
            bytes
        }
        Source::File(path) => {
            fs::read(path).with_context(|| format!("{}: cannot read input", input.name))?
        }
    })
}

/// Decodes bytes as UTF-8, dropping a leading byte-order mark. The error names the input
/// and the offset of the first invalid byte in the original bytes.
pub fn decode(bytes: Vec<u8>, name: &str, lossy: bool) -> Result<String> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let skip = if bytes.starts_with(BOM) { BOM.len() } else { 0 };
    let mut bytes = bytes;
    bytes.drain(..skip);
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(err) if lossy => Ok(String::from_utf8_lossy(err.as_bytes()).into_owned()),
        Err(err) => Err(InvalidUtf8 {
            name: name.to_string(),
            offset: skip + err.utf8_error().valid_up_to(),
        }
        .into()),
    }
}
