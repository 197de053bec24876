//! Atomic file output: write to a temporary file beside the target, rename it on success.
//!
//! A run that fails halfway (translation error, Ctrl-C, full disk) must not leave a truncated
//! file under the final name, nor destroy a previous good output. Writing next to the target
//! keeps the final rename on one filesystem, where it is atomic.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::NamedTempFile;

/// A file being written under a temporary name; [`AtomicFile::commit`] moves it to its final
/// path. Dropping it uncommitted deletes the temporary file.
pub struct AtomicFile {
    /// `Option` only so `commit` can take the file out; always `Some` otherwise.
    file: Option<BufWriter<NamedTempFile>>,
    path: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file in `path`'s directory (which must exist).
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let file_name = path
            .file_name()
            .with_context(|| format!("output path {} does not name a file", path.display()))?;
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(file_name);
        prefix.push(".");
        let temp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| {
                format!(
                    "creating a temporary file in {} for {}",
                    dir.display(),
                    path.display()
                )
            })?;
        // Temporary files are private (0600); give the result the permissions a plain
        // `File::create` would have, or keep those of the file being replaced.
        let permissions = match fs::metadata(path) {
            Ok(meta) => Some(meta.permissions()),
            Err(_) => default_permissions(),
        };
        if let Some(permissions) = permissions {
            fs::set_permissions(temp.path(), permissions)
                .with_context(|| format!("setting permissions of {}", temp.path().display()))?;
        }
        Ok(AtomicFile {
            file: Some(BufWriter::new(temp)),
            path: path.to_path_buf(),
        })
    }

    /// The final path the file is committed to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, syncs and renames the temporary file onto the final path, replacing any
    /// existing file there.
    pub fn commit(mut self) -> Result<()> {
        let path = self.path.clone();
        let buffered = self.file.take().expect("file is present until commit");
        let temp = buffered
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", path.display()))?;
        temp.as_file()
            .sync_all()
            .with_context(|| format!("syncing {}", path.display()))?;
        temp.persist(&path)
            .with_context(|| format!("renaming output into {}", path.display()))?;
        Ok(())
    }
}

#[cfg(unix)]
fn default_permissions() -> Option<fs::Permissions> {
    use std::os::unix::fs::PermissionsExt;
    // 0644: what most umasks give a new file; reading the real umask is not portable.
    Some(fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn default_permissions() -> Option<fs::Permissions> {
    None
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file
            .as_mut()
            .expect("file is present until commit")
            .write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file
            .as_mut()
            .expect("file is present until commit")
            .write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file
            .as_mut()
            .expect("file is present until commit")
            .flush()
    }
}
