//! `corpus merge`: joins the outputs of the shards of one run into exactly the bytes a
//! one-shard run writes. Shard `i` of `n` holds the rows whose index is `i` modulo `n`, so the
//! merge takes one row from each shard in turn.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::output::{hash_file, write_manifest, FileRecord, Manifest, PartialFileWriter};

/// Rows of shard `index` of `count` among `total` rows.
pub fn shard_rows(index: usize, count: usize, total: u64) -> u64 {
    let (index, count) = (index as u64, count as u64);
    if total <= index {
        0
    } else {
        (total - index).div_ceil(count)
    }
}

/// Checks that `shards` are the complete outputs of one sharded run and merges them into `out`.
pub fn merge(shards: &[PathBuf], out: &Path) -> Result<Manifest> {
    if shards.is_empty() {
        bail!("no shard outputs to merge");
    }
    let manifests: Vec<Manifest> = shards
        .iter()
        .map(|s| Manifest::read(s))
        .collect::<Result<_>>()?;
    let first = &manifests[0];
    let count = first.shard[1];
    for (path, m) in shards.iter().zip(&manifests) {
        let differs = |what: &str| {
            format!(
                "{} and {} are not shards of the same run: their {what} differ",
                shards[0].display(),
                path.display()
            )
        };
        if m.format != first.format || m.alignments != first.alignments {
            bail!(differs("formats"));
        }
        if m.shard[1] != count {
            bail!(differs("shard counts"));
        }
        if m.inputs != first.inputs || m.mode != first.mode {
            bail!(differs("inputs"));
        }
        if m.context != first.context {
            bail!(differs("models or options"));
        }
        if m.total_rows != first.total_rows {
            bail!(differs("row counts"));
        }
    }
    let mut by_index: Vec<Option<usize>> = vec![None; count];
    for (i, m) in manifests.iter().enumerate() {
        let index = m.shard[0];
        if index >= count {
            bail!(
                "{}: shard {index} of {count} is out of range",
                shards[i].display()
            );
        }
        if let Some(other) = by_index[index] {
            bail!(
                "{} and {} are both shard {index}/{count}",
                shards[other].display(),
                shards[i].display()
            );
        }
        by_index[index] = Some(i);
    }
    let missing: Vec<String> = by_index
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "the shards are incomplete: missing {} of {count} (got {})",
            missing.join(", "),
            shards.len()
        );
    }
    // Every shard output is what its manifest says: complete and unchanged.
    for (path, m) in shards.iter().zip(&manifests) {
        let expected = shard_rows(m.shard[0], count, m.total_rows);
        if m.rows != expected {
            bail!(
                "{}: {} rows, but shard {}/{count} of {} rows has {expected}",
                path.display(),
                m.rows,
                m.shard[0],
                m.total_rows
            );
        }
        for (file, record) in m.format.files(path).iter().zip(&m.files) {
            let (bytes, hash) = hash_file(file)?;
            if bytes != record.bytes || hash != record.blake3 {
                bail!(
                    "{}: changed since it was written (its manifest does not match)",
                    file.display()
                );
            }
        }
    }

    let format = first.format;
    let mut readers: Vec<Vec<BufReader<File>>> = Vec::with_capacity(count);
    for &i in by_index.iter().flatten() {
        let files = format.files(&shards[i]);
        let mut opened = Vec::new();
        for file in &files {
            let mut reader = BufReader::new(
                File::open(file).with_context(|| format!("{}: cannot open", file.display()))?,
            );
            if format.header(first.alignments).is_some() {
                let mut header = Vec::new();
                reader.read_until(b'\n', &mut header)?;
            }
            opened.push(reader);
        }
        readers.push(opened);
    }
    let mut writer = PartialFileWriter::create(format, first.alignments, out)?;
    let mut line = Vec::new();
    for row in 0..first.total_rows {
        let shard = (row % count as u64) as usize;
        for (file, reader) in readers[shard].iter_mut().enumerate() {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                bail!(
                    "{}: ends early (row {row} missing)",
                    format.files(&shards[by_index[shard].unwrap_or(0)])[file].display()
                );
            }
            writer.write(file, &line)?;
        }
    }
    super::output::remove_stale(&Manifest::path(out))?;
    let files: Vec<FileRecord> = writer.commit()?;
    let manifest = Manifest {
        shard: [0, 1],
        rows: first.total_rows,
        files,
        ..first.clone()
    };
    write_manifest(out, &manifest)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_per_shard_add_up() {
        for total in [0u64, 1, 5, 17, 100] {
            for count in [1usize, 2, 3, 4, 7] {
                let sum: u64 = (0..count).map(|i| shard_rows(i, count, total)).sum();
                assert_eq!(sum, total, "{total} rows in {count} shards");
            }
        }
        assert_eq!(shard_rows(3, 4, 2), 0);
    }
}
