//! The one place the engines read weights from: a checkpoint file (`model.safetensors` or
//! `pytorch_model.bin`) or random values for benchmarks, always as f32 rows, with errors that
//! name the file and the tensor.
//!
//! Safetensors files are read tensor by tensor with positioned reads rather than mapped, so a
//! load touches each byte once and keeps at most one tensor (or one slice of rows) in memory
//! besides the model being built: quantizing to int8 never holds the f32 model.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::error::{MarianError, Result};

/// Weight files in order of preference: safetensors, else the PyTorch pickle (older revisions
/// of the OPUS-MT repositories only have that).
pub const WEIGHT_FILES: &[&str] = &["model.safetensors", "pytorch_model.bin"];

/// The weights file of a checkpoint folder: `model.safetensors`, else `pytorch_model.bin`.
pub fn weights_file(dir: &Path) -> Result<PathBuf> {
    WEIGHT_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| MarianError::Weights {
            path: dir.to_path_buf(),
            problem: "no model.safetensors nor pytorch_model.bin in this folder".to_string(),
        })
}

/// A source of named tensors.
pub(crate) struct Weights {
    path: PathBuf,
    store: Store,
}

enum Store {
    Safetensors {
        file: File,
        data_start: u64,
        tensors: HashMap<String, Entry>,
    },
    Pytorch(candle_core::pickle::PthTensors),
    Random,
}

/// A tensor of a safetensors file.
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    /// Byte range within the data section.
    bytes: Range<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dtype {
    F32,
    F16,
    Bf16,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::Bf16 => 2,
        }
    }
}

/// Largest safetensors header accepted (the real ones are a few tens of KB).
const MAX_HEADER: u64 = 100 * 1024 * 1024;

impl Weights {
    /// Opens a checkpoint's weight file and reads its index (not the tensors).
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
        let store = if is_safetensors {
            open_safetensors(path)?
        } else {
            let tensors = candle_core::pickle::PthTensors::new(path, None).map_err(|e| {
                MarianError::Weights {
                    path: path.to_path_buf(),
                    problem: format!(
                        "cannot read the weight file (truncated or corrupt?): {}",
                        one_line(&e.to_string())
                    ),
                }
            })?;
            Store::Pytorch(tensors)
        };
        Ok(Self {
            path: path.to_path_buf(),
            store,
        })
    }

    /// Random weights, N(0, 0.02), the same for every run: a model with a real architecture
    /// for speed measurements, whose output is nonsense. Tied embeddings and no output bias,
    /// like opus-mt.
    pub(crate) fn random() -> Self {
        Self {
            path: PathBuf::from("<random weights>"),
            store: Store::Random,
        }
    }

    /// The file the weights come from.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the tensor exists.
    pub(crate) fn contains(&self, name: &str) -> bool {
        match &self.store {
            Store::Safetensors { tensors, .. } => tensors.contains_key(name),
            Store::Pytorch(pth) => pth.tensor_infos().contains_key(name),
            Store::Random => name != "lm_head.weight" && name != "final_logits_bias",
        }
    }

    /// Checks that tensor `name` exists with `shape`, without reading it.
    pub(crate) fn check(&self, name: &str, shape: &[usize]) -> Result<()> {
        match &self.store {
            Store::Safetensors { tensors, .. } => {
                let entry = tensors.get(name).ok_or_else(|| self.missing(name))?;
                self.check_shape(name, &entry.shape, shape)
            }
            Store::Pytorch(pth) => {
                let info = pth
                    .tensor_infos()
                    .get(name)
                    .ok_or_else(|| self.missing(name))?;
                self.check_shape(name, info.layout.dims(), shape)
            }
            Store::Random => Ok(()),
        }
    }

    /// A view of the tensors under `prefix.` (candle's `VarBuilder::pp`).
    pub(crate) fn pp(&self, prefix: impl Into<String>) -> Prefixed<'_> {
        Prefixed {
            weights: self,
            prefix: prefix.into(),
        }
    }

    /// The whole tensor `name`, which must have `shape`, as f32 values in row-major order.
    pub(crate) fn read(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let rows = shape.first().copied().unwrap_or(1);
        self.read_rows(name, shape, 0..rows)
    }

    /// Rows `rows` (along the first dimension) of the tensor `name`, which must have `shape`.
    pub(crate) fn read_rows(
        &self,
        name: &str,
        shape: &[usize],
        rows: Range<usize>,
    ) -> Result<Vec<f32>> {
        let row_len: usize = shape.iter().skip(1).product();
        let total_rows = shape.first().copied().unwrap_or(1);
        assert!(
            rows.start <= rows.end && rows.end <= total_rows,
            "read_rows: bad range"
        );
        match &self.store {
            Store::Safetensors {
                file,
                data_start,
                tensors,
            } => {
                let entry = tensors.get(name).ok_or_else(|| self.missing(name))?;
                self.check_shape(name, &entry.shape, shape)?;
                let size = entry.dtype.size() as u64;
                let start = entry.bytes.start + (rows.start * row_len) as u64 * size;
                let len = ((rows.end - rows.start) * row_len) as u64 * size;
                let read_error = |e: std::io::Error| {
                    self.error(format!("tensor {name}: cannot read its data ({e})"))
                };
                if entry.dtype == Dtype::F32 && cfg!(target_endian = "little") {
                    // Straight into the f32 buffer: no second copy of a slice of rows.
                    let mut values = vec![0f32; (len / 4) as usize];
                    // SAFETY: any bit pattern is a valid f32, the byte view covers exactly the
                    // vector's initialised elements, and the file is little-endian like us.
                    let bytes = unsafe {
                        std::slice::from_raw_parts_mut(
                            values.as_mut_ptr().cast::<u8>(),
                            len as usize,
                        )
                    };
                    read_exact_at(file, bytes, data_start + start).map_err(read_error)?;
                    return Ok(values);
                }
                let mut bytes = vec![0u8; len as usize];
                read_exact_at(file, &mut bytes, data_start + start).map_err(read_error)?;
                Ok(to_f32(entry.dtype, &bytes))
            }
            Store::Pytorch(pth) => {
                let tensor = pth
                    .get(name)
                    .map_err(|e| {
                        self.error(format!("tensor {name}: {}", one_line(&e.to_string())))
                    })?
                    .ok_or_else(|| self.missing(name))?;
                self.check_shape(name, tensor.dims(), shape)?;
                let values = tensor
                    .narrow(0, rows.start, rows.end - rows.start)
                    .and_then(|t| t.to_dtype(candle_core::DType::F32))
                    .and_then(|t| t.flatten_all())
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(|e| {
                        self.error(format!("tensor {name}: {}", one_line(&e.to_string())))
                    })?;
                Ok(values)
            }
            Store::Random => Ok(random_rows(name, row_len, rows)),
        }
    }

    fn missing(&self, name: &str) -> MarianError {
        self.error(format!("tensor {name} is missing"))
    }

    fn error(&self, problem: String) -> MarianError {
        MarianError::Weights {
            path: self.path.clone(),
            problem,
        }
    }

    fn check_shape(&self, name: &str, found: &[usize], expected: &[usize]) -> Result<()> {
        // A bias stored as (1, n) is the same tensor as (n).
        let squeeze = |s: &[usize]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
        if found != expected && squeeze(found) != squeeze(expected) {
            return Err(self.error(format!(
                "tensor {name} has shape {found:?}, expected {expected:?}"
            )));
        }
        Ok(())
    }
}

/// Tensors under a name prefix.
pub(crate) struct Prefixed<'a> {
    weights: &'a Weights,
    prefix: String,
}

impl<'a> Prefixed<'a> {
    /// The full name of `name` under this prefix.
    pub(crate) fn name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// A deeper prefix.
    pub(crate) fn pp(&self, name: &str) -> Prefixed<'a> {
        Prefixed {
            weights: self.weights,
            prefix: self.name(name),
        }
    }

    /// The tensor `prefix.name`, which must have `shape`.
    pub(crate) fn read(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        self.weights.read(&self.name(name), shape)
    }

    /// Rows of the tensor `prefix.name`.
    pub(crate) fn read_rows(
        &self,
        name: &str,
        shape: &[usize],
        rows: Range<usize>,
    ) -> Result<Vec<f32>> {
        self.weights.read_rows(&self.name(name), shape, rows)
    }
}

fn open_safetensors(path: &Path) -> Result<Store> {
    let error = |problem: String| MarianError::Weights {
        path: path.to_path_buf(),
        problem,
    };
    let file = File::open(path).map_err(|source| MarianError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file_len = file
        .metadata()
        .map_err(|source| MarianError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let corrupt = || "cannot read the weight file (truncated or corrupt?)".to_string();
    let mut len_bytes = [0u8; 8];
    read_exact_at(&file, &mut len_bytes, 0).map_err(|_| error(corrupt()))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_HEADER || 8 + header_len > file_len {
        return Err(error(corrupt()));
    }
    let mut header = vec![0u8; header_len as usize];
    read_exact_at(&file, &mut header, 8).map_err(|_| error(corrupt()))?;
    let index: HashMap<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|_| error(corrupt()))?;
    let data_len = file_len - 8 - header_len;
    let mut tensors = HashMap::new();
    for (name, info) in index {
        if name == "__metadata__" {
            continue;
        }
        let dtype = match info.get("dtype").and_then(|d| d.as_str()) {
            Some("F32") => Dtype::F32,
            Some("F16") => Dtype::F16,
            Some("BF16") => Dtype::Bf16,
            other => {
                return Err(error(format!(
                    "tensor {name} has dtype {}, expected F32, F16 or BF16",
                    other.unwrap_or("?")
                )))
            }
        };
        let shape: Vec<usize> = info
            .get("shape")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .ok_or_else(|| error(format!("tensor {name} has no valid shape")))?;
        let offsets: [u64; 2] = info
            .get("data_offsets")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .ok_or_else(|| error(format!("tensor {name} has no valid data_offsets")))?;
        let elements = shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
            .and_then(|n| n.checked_mul(dtype.size() as u64));
        if offsets[0] > offsets[1]
            || offsets[1] > data_len
            || elements != Some(offsets[1] - offsets[0])
        {
            return Err(error(format!(
                "tensor {name}: its data is truncated or does not match its shape {shape:?}"
            )));
        }
        tensors.insert(
            name,
            Entry {
                dtype,
                shape,
                bytes: offsets[0]..offsets[1],
            },
        );
    }
    Ok(Store::Safetensors {
        file,
        data_start: 8 + header_len,
        tensors,
    })
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

fn to_f32(dtype: Dtype, bytes: &[u8]) -> Vec<f32> {
    match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::Bf16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
    }
}

/// N(0, 0.02) values for rows `rows` of the tensor `name`: each row has its own generator
/// (seeded by the name and the row), so any slice of rows reads the same values.
fn random_rows(name: &str, row_len: usize, rows: Range<usize>) -> Vec<f32> {
    let name_hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut out = Vec::with_capacity((rows.end - rows.start) * row_len);
    for row in rows {
        let mut state = name_hash ^ (row as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut i = 0;
        while i < row_len {
            // Box-Muller: two normal values per pair of uniforms.
            let (u1, u2) = (next().max(1e-300), next());
            let radius = (-2.0 * u1.ln()).sqrt() * 0.02;
            let angle = 2.0 * std::f64::consts::PI * u2;
            out.push((radius * angle.cos()) as f32);
            if i + 1 < row_len {
                out.push((radius * angle.sin()) as f32);
            }
            i += 2;
        }
    }
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_rows_are_consistent_slices() {
        let w = Weights::random();
        let all = w.read("x", &[5, 7]).unwrap();
        let some = w.read_rows("x", &[5, 7], 2..4).unwrap();
        assert_eq!(&all[14..28], &some[..]);
        let mean = all.iter().sum::<f32>() / all.len() as f32;
        assert!(mean.abs() < 0.02);
        assert!(all.iter().all(|v| v.abs() < 0.2));
    }
}
