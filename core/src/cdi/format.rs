//! Spec files as bytes: JSON or YAML, chosen by the file name the way
//! runtimes choose it.
//!
//! JSON is pretty-printed with two-space indents and a trailing newline;
//! YAML comes from serde-saphyr, which quotes every string a YAML 1.1 or
//! 1.2 reader could take for something else (`"0"`, `"1:20"`, `"yes"`),
//! so device names read back as the same strings.

use std::path::Path;

use serde_json::Value;

use super::spec::Spec;

/// A spec file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    /// YAML for `*.yaml` and `*.yml`, JSON otherwise.
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml") => {
                Format::Yaml
            }
            _ => Format::Json,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Yaml => "YAML",
        }
    }
}

/// Why a spec could not be turned into bytes or read back.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("cannot write the spec as JSON: {0}")]
    WriteJson(#[source] serde_json::Error),
    #[error("cannot write the spec as YAML: {0}")]
    WriteYaml(String),
    #[error("not valid JSON: {0}")]
    ReadJson(#[source] serde_json::Error),
    #[error("not valid YAML: {0}")]
    ReadYaml(String),
}

/// The bytes of `spec` in `format`.
pub fn to_bytes(spec: &Spec, format: Format) -> Result<Vec<u8>, FormatError> {
    match format {
        Format::Json => {
            let mut bytes = serde_json::to_vec_pretty(spec).map_err(FormatError::WriteJson)?;
            bytes.push(b'\n');
            Ok(bytes)
        }
        #[cfg(feature = "yaml")]
        Format::Yaml => {
            let mut text =
                serde_saphyr::to_string(spec).map_err(|e| FormatError::WriteYaml(e.to_string()))?;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            Ok(text.into_bytes())
        }
        #[cfg(not(feature = "yaml"))]
        Format::Yaml => Err(FormatError::WriteYaml(
            "built without the yaml feature".into(),
        )),
    }
}

/// Read a document as a generic value (for schema checks of any spec).
pub fn parse_value(bytes: &[u8], format: Format) -> Result<Value, FormatError> {
    match format {
        Format::Json => serde_json::from_slice(bytes).map_err(FormatError::ReadJson),
        #[cfg(feature = "yaml-read")]
        Format::Yaml => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| FormatError::ReadYaml(format!("not UTF-8: {e}")))?;
            if text.trim().is_empty() {
                return Err(FormatError::ReadYaml("the file is empty".into()));
            }
            serde_saphyr::from_str(text).map_err(|e| FormatError::ReadYaml(e.to_string()))
        }
        #[cfg(not(feature = "yaml-read"))]
        Format::Yaml => Err(FormatError::ReadYaml(
            "built without the yaml-read feature".into(),
        )),
    }
}
