//! `/proc/driver/nvidia/params`: the module parameters that decide how the
//! driver itself creates `/dev/nvidia*` nodes.
//!
//! Nodes we create for containers should look like the ones the driver
//! would create: `NVreg_DeviceFileMode` (0o666 unless an administrator
//! narrowed it), owner and group. Only those few keys matter here; the
//! rest of the file (dozens of tuning knobs, quoted strings set by the
//! administrator) is skipped without judging it.

use std::io::BufRead;
use std::path::Path;

use super::text::{decimal, decimal_mode, key_value, set_once, Lines};
use super::{DriverError, UNEXPECTED_TABLE};

/// The device-file parameters of the loaded module.
///
/// [`Default`] is the driver's own default, used when the file is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverParams {
    /// `DeviceFileMode`, printed in decimal (`438` is 0o666).
    pub device_file_mode: u32,
    /// `DeviceFileUID`.
    pub device_file_uid: u32,
    /// `DeviceFileGID`.
    pub device_file_gid: u32,
    /// `ModifyDeviceFiles`: the driver (via nvidia-modprobe) creates and
    /// fixes its device nodes itself.
    pub modify_device_files: bool,
}

impl Default for DriverParams {
    fn default() -> Self {
        DriverParams {
            device_file_mode: 0o666,
            device_file_uid: 0,
            device_file_gid: 0,
            modify_device_files: true,
        }
    }
}

/// Parse the params file; `path` only names the file in errors.
///
/// Lines are `Key: value`. The four device-file keys must hold valid
/// values and appear at most once; a key that is absent keeps the driver's
/// default. Every other line is skipped.
pub fn parse_params(reader: impl BufRead, path: &Path) -> Result<DriverParams, DriverError> {
    let mut lines = Lines::new(reader, path, UNEXPECTED_TABLE);
    let (mut mode, mut uid, mut gid, mut modify) = (None, None, None, None);
    while let Some((number, line)) = lines.next_line()? {
        let Some((key, value)) = key_value(line) else {
            continue;
        };
        let bad = |expected: &str| DriverError::Parse {
            path: path.to_path_buf(),
            line: number,
            message: format!("expected \"{key}: {expected}\", found \"{}\"", line.trim()),
            hint: UNEXPECTED_TABLE,
        };
        let hint = UNEXPECTED_TABLE;
        match key {
            "DeviceFileMode" => {
                let value = decimal_mode(value)
                    .ok_or_else(|| bad("<decimal permission bits, at most 4095>"))?;
                set_once(&mut mode, value, path, number, key, hint)?;
            }
            "DeviceFileUID" => {
                let value = decimal(value).ok_or_else(|| bad("<decimal uid>"))?;
                set_once(&mut uid, value, path, number, key, hint)?;
            }
            "DeviceFileGID" => {
                let value = decimal(value).ok_or_else(|| bad("<decimal gid>"))?;
                set_once(&mut gid, value, path, number, key, hint)?;
            }
            "ModifyDeviceFiles" => {
                let value = match value {
                    "0" => false,
                    "1" => true,
                    _ => return Err(bad("0 or 1")),
                };
                set_once(&mut modify, value, path, number, key, hint)?;
            }
            _ => {}
        }
    }
    let default = DriverParams::default();
    Ok(DriverParams {
        device_file_mode: mode.unwrap_or(default.device_file_mode),
        device_file_uid: uid.unwrap_or(default.device_file_uid),
        device_file_gid: gid.unwrap_or(default.device_file_gid),
        modify_device_files: modify.unwrap_or(default.modify_device_files),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DriverParams, DriverError> {
        parse_params(text.as_bytes(), Path::new("/p"))
    }

    #[test]
    fn narrowed_mode_and_group() {
        let params = parse(
            "ModifyDeviceFiles: 0\nDeviceFileUID: 0\nDeviceFileGID: 44\nDeviceFileMode: 432\n\
             RegistryDwords: \"RMFoo=1: odd\"\nnot a key value line\n",
        )
        .unwrap();
        assert_eq!(
            params,
            DriverParams {
                device_file_mode: 0o660,
                device_file_uid: 0,
                device_file_gid: 44,
                modify_device_files: false,
            }
        );
    }

    #[test]
    fn absent_keys_keep_driver_defaults() {
        assert_eq!(parse("EnableMSI: 1\n").unwrap(), DriverParams::default());
    }

    #[test]
    fn bad_mode_fails_with_line() {
        let err = parse("EnableMSI: 1\nDeviceFileMode: rw-rw-rw-\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/p:2: expected \"DeviceFileMode: <decimal permission bits"),
            "{err}"
        );
    }
}
