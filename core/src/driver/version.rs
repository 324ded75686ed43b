//! `/proc/driver/nvidia/version`: which kernel module is loaded.
//!
//! The loaded module's version is what the `/proc` tables follow (NVML's
//! library may be another version on a badly upgraded host), and its
//! presence is the plainest sign that the NVIDIA module is loaded at all.

use std::io::BufRead;
use std::path::Path;

use super::text::{decimal, Lines};
use super::{DriverError, UNEXPECTED_TABLE};

const NVRM_PREFIX: &str = "NVRM version:";

/// The oldest driver whose MIG tables mig-cdi reads (`major`, `minor`).
pub const MIN_SUPPORTED_VERSION: (u32, u32) = (450, 51);

/// The kernel module's version line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverVersion {
    /// The version as printed, e.g. `580.159.04` (leading zeros kept).
    pub version: String,
    /// First component, e.g. 580.
    pub major: u32,
    /// Second component, e.g. 159.
    pub minor: u32,
    /// The whole `NVRM version:` line, trimmed, e.g. `NVRM version: NVIDIA
    /// UNIX Open Kernel Module for x86_64  580.159.04  Release Build ...`.
    pub nvrm: String,
}

impl DriverVersion {
    /// At least [`MIN_SUPPORTED_VERSION`].
    pub fn is_supported(&self) -> bool {
        (self.major, self.minor) >= MIN_SUPPORTED_VERSION
    }
}

/// Parse the version file; `path` only names the file in errors.
///
/// The version is the first word of the `NVRM version:` line made of two
/// or more dot-separated decimal numbers: `580.159.04` in
/// `NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build ...`
/// and `450.51.06` in
/// `NVRM version: NVIDIA UNIX x86_64 Kernel Module  450.51.06  Sun Jul 19 ...`.
pub fn parse_version(reader: impl BufRead, path: &Path) -> Result<DriverVersion, DriverError> {
    let mut lines = Lines::new(reader, path, UNEXPECTED_TABLE);
    while let Some((number, line)) = lines.next_line()? {
        let text = line.trim();
        let Some(rest) = text.strip_prefix(NVRM_PREFIX) else {
            continue;
        };
        let found = rest.split_ascii_whitespace().find_map(|word| {
            let (major, minor) = version_numbers(word)?;
            Some((word, major, minor))
        });
        let Some((version, major, minor)) = found else {
            return Err(DriverError::Parse {
                path: path.to_path_buf(),
                line: number,
                message: format!(
                    "expected a version such as 580.159.04 on the \"{NVRM_PREFIX}\" line, \
                     found \"{text}\""
                ),
                hint: UNEXPECTED_TABLE,
            });
        };
        return Ok(DriverVersion {
            version: version.to_string(),
            major,
            minor,
            nvrm: text.to_string(),
        });
    }
    Err(DriverError::Missing {
        path: path.to_path_buf(),
        what: format!("\"{NVRM_PREFIX}\" line"),
        hint: UNEXPECTED_TABLE,
    })
}

/// `580.159.04` -> (580, 159); `None` unless the word is two or more
/// dot-separated decimal numbers.
fn version_numbers(word: &str) -> Option<(u32, u32)> {
    let mut parts = word.split('.');
    let major = decimal(parts.next()?)?;
    let minor = decimal(parts.next()?)?;
    for part in parts {
        decimal(part)?;
    }
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DriverVersion, DriverError> {
        parse_version(text.as_bytes(), Path::new("/v"))
    }

    #[test]
    fn proprietary_module_line() {
        let v = parse(
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  450.51.06  Sun Jul 19 20:02:54 UTC 2020\n\
             GCC version:  gcc version 9.3.0\n",
        )
        .unwrap();
        assert_eq!(
            (v.version.as_str(), v.major, v.minor),
            ("450.51.06", 450, 51)
        );
        assert!(v.is_supported());
    }

    #[test]
    fn two_part_version_and_old_driver() {
        let v = parse("NVRM version: NVIDIA UNIX x86_64 Kernel Module  440.33  Wed\n").unwrap();
        assert_eq!(v.version, "440.33");
        assert!(!v.is_supported());
    }

    #[test]
    fn no_version_word_fails_with_line() {
        let err = parse("\nNVRM version: NVIDIA UNIX x86_64 Kernel Module\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/v:2: expected a version such as 580.159.04"),
            "{err}"
        );
    }

    #[test]
    fn no_nvrm_line_fails() {
        let err = parse("GCC version: 9\n").unwrap_err().to_string();
        assert!(err.starts_with("/v: no \"NVRM version:\" line;"), "{err}");
    }
}
