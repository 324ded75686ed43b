//! Capability access files under `/proc/driver/nvidia/capabilities`.
//!
//! Each MIG capability (`mig/config`, `gpu0/mig/gi1/access`, ...) has a
//! small file saying which `nvidia-cap<M>` minor stands for it and which
//! mode the node must have (`DeviceFileMode`, e.g. 0o400 for `config`,
//! 0o444 for `monitor`). The device node we create for a container must
//! match both, so the minor and mode are required; the file exists only
//! once the instance does, which is why it is read on demand
//! ([`DriverTables::capability`](super::DriverTables::capability)).

use std::io::BufRead;
use std::path::Path;

use super::text::{decimal, decimal_mode, key_value, set_once, Lines};
use super::{DriverError, UNEXPECTED_TABLE};

/// A capability access file (`DeviceFileMinor`, `DeviceFileMode`, `DeviceFileModify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    /// `DeviceFileMinor`: the `nvidia-cap<minor>` node.
    pub minor: u32,
    /// Permission bits, e.g. 0o444 (`DeviceFileMode`, printed in decimal).
    pub mode: u32,
    /// `DeviceFileModify`: the driver may create or fix the node itself
    /// (through nvidia-modprobe). `false` when the line is absent.
    pub modify: bool,
}

/// Parse one capability access file; `path` only names the file in errors.
///
/// Lines are `Key: value`; unknown keys are skipped, a known key given
/// twice or with a bad value is an error, and `DeviceFileMinor` and
/// `DeviceFileMode` must be present.
pub fn parse_capability(reader: impl BufRead, path: &Path) -> Result<Capability, DriverError> {
    let mut lines = Lines::new(reader, path, UNEXPECTED_TABLE);
    let (mut minor, mut mode, mut modify) = (None, None, None);
    while let Some((number, line)) = lines.next_line()? {
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let bad = |message: String| DriverError::Parse {
            path: path.to_path_buf(),
            line: number,
            message,
            hint: UNEXPECTED_TABLE,
        };
        let (key, value) = key_value(text)
            .ok_or_else(|| bad(format!("expected \"Key: value\", found \"{text}\"")))?;
        match key {
            "DeviceFileMinor" => {
                let value = decimal(value).ok_or_else(|| {
                    bad(format!(
                        "expected \"DeviceFileMinor: <decimal minor>\", found \"{text}\""
                    ))
                })?;
                set_once(&mut minor, value, path, number, key, UNEXPECTED_TABLE)?;
            }
            "DeviceFileMode" => {
                let value = decimal_mode(value).ok_or_else(|| {
                    bad(format!(
                        "expected \"DeviceFileMode: <decimal permission bits, at most 4095>\", \
                         found \"{text}\""
                    ))
                })?;
                set_once(&mut mode, value, path, number, key, UNEXPECTED_TABLE)?;
            }
            "DeviceFileModify" => {
                let value = match value {
                    "0" => false,
                    "1" => true,
                    _ => {
                        return Err(bad(format!(
                            "expected \"DeviceFileModify: 0\" or \"DeviceFileModify: 1\", \
                             found \"{text}\""
                        )))
                    }
                };
                set_once(&mut modify, value, path, number, key, UNEXPECTED_TABLE)?;
            }
            _ => {}
        }
    }
    let missing = |key: &str| DriverError::Missing {
        path: path.to_path_buf(),
        what: format!("\"{key}\" line"),
        hint: UNEXPECTED_TABLE,
    };
    Ok(Capability {
        minor: minor.ok_or_else(|| missing("DeviceFileMinor"))?,
        mode: mode.ok_or_else(|| missing("DeviceFileMode"))?,
        modify: modify.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Capability, DriverError> {
        parse_capability(text.as_bytes(), Path::new("/c/mig/config"))
    }

    #[test]
    fn decimal_mode_becomes_permission_bits() {
        let cap = parse("DeviceFileMinor: 1\nDeviceFileMode: 256\nDeviceFileModify: 1\n").unwrap();
        assert_eq!(
            cap,
            Capability {
                minor: 1,
                mode: 0o400,
                modify: true
            }
        );
    }

    #[test]
    fn modify_defaults_to_false_and_unknown_keys_are_skipped() {
        let cap = parse("DeviceFileMinor: 2\nSomethingNew: x\nDeviceFileMode: 292\n").unwrap();
        assert_eq!(cap.mode, 0o444);
        assert!(!cap.modify);
    }

    #[test]
    fn bad_values_fail_with_line() {
        let err = parse("DeviceFileMinor: 1\nDeviceFileMode: 0644\nDeviceFileMode: x\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/c/mig/config:3: expected \"DeviceFileMode:"),
            "{err}"
        );
        let err = parse("DeviceFileMinor: 1\nDeviceFileMode: 256\nDeviceFileModify: 2\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/c/mig/config:3:"), "{err}");
        assert!(parse("DeviceFileMinor: 1\nDeviceFileMode: 65535\n").is_err());
    }

    #[test]
    fn repeated_key_fails() {
        let err = parse("DeviceFileMinor: 1\nDeviceFileMinor: 2\nDeviceFileMode: 256\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/c/mig/config:2: \"DeviceFileMinor\" appears a second time"),
            "{err}"
        );
    }

    #[test]
    fn missing_mode_names_the_file() {
        let err = parse("DeviceFileMinor: 1\n").unwrap_err().to_string();
        assert!(
            err.starts_with("/c/mig/config: no \"DeviceFileMode\" line;"),
            "{err}"
        );
    }
}
