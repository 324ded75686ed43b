//! `/proc/driver/nvidia/gpus/<bus>/information`: the kernel module's view
//! of each GPU.
//!
//! It is the one place that ties a PCI address to the GPU's *minor number*
//! (`/dev/nvidia<minor>`, and the key of every capability table) without
//! NVML, so the generator can check that NVML and the loaded module agree,
//! and the hook can check a GPU without linking NVML.

use std::io::BufRead;
use std::path::Path;

use super::text::{decimal, key_value, set_once, Lines};
use super::{DriverError, UNEXPECTED_TABLE};

/// One GPU's `information` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuInformation {
    /// `Model`, e.g. `NVIDIA H200`.
    pub model: String,
    /// `GPU UUID`, e.g. `GPU-866b5d23-...`; `None` when the driver printed
    /// no UUID line (it omits it when it cannot read the UUID).
    pub uuid: Option<String>,
    /// `Bus Location` in the kernel's form, `0000:00:06.0` (4-digit
    /// domain; NVML writes `00000000:00:06.0`). It is also the name of the
    /// file's folder.
    pub bus_location: String,
    /// `Device Minor`: the minor of `/dev/nvidia<N>`.
    pub device_minor: u32,
    /// `GPU Excluded: Yes` (left out by `NVreg_ExcludedGpus`); `false` when
    /// the line is absent (drivers before exclusion existed).
    pub excluded: bool,
}

/// Parse one `information` file; `path` only names the file in errors.
///
/// Lines are `Key:<tabs> value`; unknown keys are skipped. `Model`, `Bus
/// Location` and `Device Minor` are required.
pub fn parse_gpu_information(
    reader: impl BufRead,
    path: &Path,
) -> Result<GpuInformation, DriverError> {
    let mut lines = Lines::new(reader, path, UNEXPECTED_TABLE);
    let (mut model, mut uuid, mut bus, mut minor, mut excluded) = (None, None, None, None, None);
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
            "Model" => set_once(
                &mut model,
                value.to_string(),
                path,
                number,
                key,
                UNEXPECTED_TABLE,
            )?,
            "GPU UUID" => set_once(
                &mut uuid,
                value.to_string(),
                path,
                number,
                key,
                UNEXPECTED_TABLE,
            )?,
            "Bus Location" => {
                if value.is_empty() || value.contains(char::is_whitespace) {
                    return Err(bad(format!(
                        "expected \"Bus Location: <domain>:<bus>:<device>.<function>\", \
                         found \"{text}\""
                    )));
                }
                set_once(
                    &mut bus,
                    value.to_string(),
                    path,
                    number,
                    key,
                    UNEXPECTED_TABLE,
                )?;
            }
            "Device Minor" => {
                let value = decimal(value).ok_or_else(|| {
                    bad(format!(
                        "expected \"Device Minor: <decimal minor>\", found \"{text}\""
                    ))
                })?;
                set_once(&mut minor, value, path, number, key, UNEXPECTED_TABLE)?;
            }
            "GPU Excluded" => {
                let value = match value {
                    "Yes" => true,
                    "No" => false,
                    _ => {
                        return Err(bad(format!(
                        "expected \"GPU Excluded: Yes\" or \"GPU Excluded: No\", found \"{text}\""
                    )))
                    }
                };
                set_once(&mut excluded, value, path, number, key, UNEXPECTED_TABLE)?;
            }
            _ => {}
        }
    }
    let missing = |key: &str| DriverError::Missing {
        path: path.to_path_buf(),
        what: format!("\"{key}\" line"),
        hint: UNEXPECTED_TABLE,
    };
    Ok(GpuInformation {
        model: model.ok_or_else(|| missing("Model"))?,
        uuid,
        bus_location: bus.ok_or_else(|| missing("Bus Location"))?,
        device_minor: minor.ok_or_else(|| missing("Device Minor"))?,
        excluded: excluded.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<GpuInformation, DriverError> {
        parse_gpu_information(text.as_bytes(), Path::new("/g/information"))
    }

    #[test]
    fn no_uuid_line_and_no_excluded_line() {
        let info =
            parse("Model: \t\t Tesla A100\nBus Location: \t 0000:3b:00.0\nDevice Minor: \t 2\n")
                .unwrap();
        assert_eq!(info.model, "Tesla A100");
        assert_eq!(info.uuid, None);
        assert_eq!(info.bus_location, "0000:3b:00.0");
        assert_eq!(info.device_minor, 2);
        assert!(!info.excluded);
    }

    #[test]
    fn excluded_yes() {
        let info =
            parse("Model: x\nBus Location: 0000:01:00.0\nDevice Minor: 1\nGPU Excluded:\t Yes\n")
                .unwrap();
        assert!(info.excluded);
    }

    #[test]
    fn bad_minor_fails_with_line() {
        let err = parse("Model: x\nBus Location: 0000:01:00.0\nDevice Minor: \t one\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/g/information:3: expected \"Device Minor:"),
            "{err}"
        );
    }

    #[test]
    fn missing_minor_names_the_file() {
        let err = parse("Model: x\nBus Location: 0000:01:00.0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/g/information: no \"Device Minor\" line;"),
            "{err}"
        );
    }
}
