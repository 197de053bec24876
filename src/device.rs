//! Where the model runs and in which number format: the device (`cpu`, `cuda[:N]`,
//! `metal[:N]`) and the precision (`f32`, `f16`, `bf16`, `int8`).
//!
//! Both are plain values, parsed and checked before any work (a typo must not cost a
//! download); the device is only opened when the model loads.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

/// What can be wrong with a device or precision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// Not a device name.
    #[error("unknown device {0:?} (expected cpu, cuda, cuda:N, metal or metal:N)")]
    UnknownDevice(String),
    /// Not a precision name.
    #[error("unknown precision {0:?} (expected f32, f16, bf16 or int8)")]
    UnknownPrecision(String),
    /// The GPU back-end was not compiled into this build.
    #[error("this traduire was built without {backend} support")]
    NotBuilt {
        /// `CUDA` or `Metal`.
        backend: &'static str,
        /// The cargo feature that adds it (`cuda`, `metal`).
        feature: &'static str,
    },
    /// The back-end is built in, but the device could not be opened (no driver, no GPU).
    #[error("cannot open {device}: {reason}")]
    Open {
        /// The device, e.g. `CUDA device 0`.
        device: String,
        /// What the driver said.
        reason: String,
    },
    /// The precision cannot run on the device.
    #[error("{precision} is not supported on {}: {reason}", device.describe())]
    Unsupported {
        /// The precision asked for.
        precision: Precision,
        /// The device.
        device: DeviceSpec,
        /// Why.
        reason: &'static str,
    },
}

/// A device by name: the CPU or a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceSpec {
    /// The CPU (traduire's own kernels for f32 and int8).
    #[default]
    Cpu,
    /// An NVIDIA GPU (needs the `cuda` feature).
    Cuda(usize),
    /// An Apple GPU (needs the `metal` feature).
    Metal(usize),
}

impl DeviceSpec {
    /// Whether this is a GPU.
    pub fn is_gpu(self) -> bool {
        !matches!(self, DeviceSpec::Cpu)
    }

    /// Checks that this build can use the device, without opening it.
    pub fn check_built(self) -> Result<(), DeviceError> {
        match self {
            DeviceSpec::Cpu => Ok(()),
            DeviceSpec::Cuda(_) if cfg!(feature = "cuda") => Ok(()),
            DeviceSpec::Metal(_) if cfg!(feature = "metal") => Ok(()),
            DeviceSpec::Cuda(_) => Err(DeviceError::NotBuilt {
                backend: "CUDA",
                feature: "cuda",
            }),
            DeviceSpec::Metal(_) => Err(DeviceError::NotBuilt {
                backend: "Metal",
                feature: "metal",
            }),
        }
    }

    /// Opens the device.
    pub fn open(self) -> Result<Device, DeviceError> {
        self.check_built()?;
        let opened = match self {
            DeviceSpec::Cpu => return Ok(Device::Cpu),
            DeviceSpec::Cuda(n) => Device::new_cuda(n),
            DeviceSpec::Metal(n) => Device::new_metal(n),
        };
        opened.map_err(|e| DeviceError::Open {
            device: self.describe(),
            // The first line only: with RUST_BACKTRACE set, candle appends a backtrace.
            reason: e
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        })
    }

    /// `CUDA device 0`, `the CPU`, ...
    pub fn describe(self) -> String {
        match self {
            DeviceSpec::Cpu => "the CPU".to_string(),
            DeviceSpec::Cuda(n) => format!("CUDA device {n}"),
            DeviceSpec::Metal(n) => format!("Metal device {n}"),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceSpec::Metal(n) => write!(f, "metal:{n}"),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;

    /// `cpu`, `cuda`, `cuda:N`, `metal` or `metal:N` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, DeviceError> {
        let lower = s.trim().to_ascii_lowercase();
        let (kind, ordinal) = match lower.split_once(':') {
            Some((kind, n)) => {
                let n: usize = n
                    .parse()
                    .ok()
                    .filter(|&n| n < 1024)
                    .ok_or_else(|| DeviceError::UnknownDevice(s.to_string()))?;
                (kind, Some(n))
            }
            None => (lower.as_str(), None),
        };
        match (kind, ordinal) {
            ("cpu", None) => Ok(DeviceSpec::Cpu),
            ("cuda", n) => Ok(DeviceSpec::Cuda(n.unwrap_or(0))),
            ("metal", n) => Ok(DeviceSpec::Metal(n.unwrap_or(0))),
            _ => Err(DeviceError::UnknownDevice(s.to_string())),
        }
    }
}

/// The number format of the weights and of the arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// 32-bit floats: exact parity with transformers.
    #[default]
    F32,
    /// 16-bit floats (candle's operations).
    F16,
    /// bfloat16 (candle's operations; GPUs only).
    Bf16,
    /// 8-bit integer weights and activations with f32 scales (CPU only).
    Int8,
}

impl Precision {
    /// Every precision, in documentation order.
    pub const ALL: [Precision; 4] = [
        Precision::F32,
        Precision::F16,
        Precision::Bf16,
        Precision::Int8,
    ];

    /// The name used in options and reports.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        }
    }

    /// Checks that the precision can run on `device`.
    pub fn check_on(self, device: DeviceSpec) -> Result<(), DeviceError> {
        let refuse = |reason| {
            Err(DeviceError::Unsupported {
                precision: self,
                device,
                reason,
            })
        };
        match (self, device) {
            (Precision::Int8, d) if d.is_gpu() => {
                refuse("int8 runs on the CPU only (its kernels are x86 and portable CPU code)")
            }
            (Precision::Bf16, DeviceSpec::Cpu) => {
                refuse("candle has no bf16 matrix product on the CPU; use f32, int8 or f16")
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, DeviceError> {
        let lower = s.trim().to_ascii_lowercase();
        Precision::ALL
            .into_iter()
            .find(|p| p.name() == lower)
            .ok_or_else(|| DeviceError::UnknownPrecision(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse(), Ok(DeviceSpec::Cpu));
        assert_eq!("CUDA".parse(), Ok(DeviceSpec::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceSpec::Cuda(3)));
        assert_eq!("metal:1".parse(), Ok(DeviceSpec::Metal(1)));
        for bad in [
            "gpu",
            "cuda:",
            "cuda:x",
            "cpu:1",
            "cuda:-1",
            "cuda:99999999999999999999",
        ] {
            assert!(bad.parse::<DeviceSpec>().is_err(), "{bad}");
        }
        assert_eq!(DeviceSpec::Cuda(2).to_string(), "cuda:2");
    }

    #[test]
    fn precisions_and_devices() {
        assert_eq!("INT8".parse(), Ok(Precision::Int8));
        assert!("f64".parse::<Precision>().is_err());
        assert!(Precision::Int8.check_on(DeviceSpec::Cpu).is_ok());
        assert!(Precision::Int8.check_on(DeviceSpec::Cuda(0)).is_err());
        assert!(Precision::Bf16.check_on(DeviceSpec::Cpu).is_err());
        assert!(Precision::Bf16.check_on(DeviceSpec::Cuda(0)).is_ok());
    }

    #[test]
    #[cfg(not(feature = "cuda"))]
    fn cuda_without_the_feature_says_so() {
        let err = DeviceSpec::Cuda(0).open().unwrap_err();
        assert_eq!(
            err,
            DeviceError::NotBuilt {
                backend: "CUDA",
                feature: "cuda"
            }
        );
        assert_eq!(
            err.to_string(),
            "this traduire was built without CUDA support"
        );
    }
}
