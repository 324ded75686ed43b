//! A lenient, borrowed view of a CDI spec: what a consumer that injects
//! device nodes needs, and nothing else.
//!
//! [`Spec`](super::Spec) is the strict model the generator writes and
//! `validate` checks. A consumer that only looks a device up (the hook)
//! must instead survive any file a spec folder may hold: another vendor's
//! spec with fields we do not know, a newer `cdiVersion`, a broken file
//! beside ours. So this view reads `kind`, each device's `name`, the
//! requested devices' `containerEdits.deviceNodes` and the spec-level
//! `containerEdits.deviceNodes`, and skips the rest unread.
//!
//! - JSON borrows from the file's bytes, and a device's edits stay a raw
//!   extent until that device is selected: a spec of 8 GPUs x 7 MIG devices
//!   holds hundreds of names and paths, and a lookup needs one device.
//! - YAML (with the `yaml-read` feature) is read into a JSON value first
//!   and then through the same code, so both formats mean the same.
//! - Errors name the position (line, column) and the kind of mistake,
//!   never text from the file: a spec folder's content is no business of
//!   whoever reads the message (a container's user, for the hook).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::format::Format;
use crate::cgroup::Access;

#[derive(Debug, Deserialize)]
struct SpecView<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    devices: Option<Vec<DeviceView<'a>>>,
    #[serde(default, rename = "containerEdits", borrow)]
    container_edits: Option<EditsView<'a>>,
}

#[derive(Debug, Deserialize)]
struct DeviceView<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default, rename = "containerEdits", borrow)]
    container_edits: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
struct EditsView<'a> {
    #[serde(default, rename = "deviceNodes", borrow)]
    device_nodes: Option<Vec<NodeView<'a>>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    mounts: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    hooks: Option<Vec<serde_json::Value>>,
}

/// The edits besides device nodes, as the spec gives them (a consumer that
/// writes them into an OCI config, such as a runtime wrapper, applies them
/// as CDI says; the hook, which only makes nodes, refuses a device that
/// has any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtherEdits {
    /// `NAME=value`.
    pub env: Vec<String>,
    /// CDI mounts (`hostPath`, `containerPath`, `options`, `type`).
    pub mounts: Vec<serde_json::Value>,
    /// CDI hooks (`hookName`, `path`, `args`, `env`, `timeout`).
    pub hooks: Vec<serde_json::Value>,
}

impl OtherEdits {
    pub fn is_empty(&self) -> bool {
        self.env.is_empty() && self.mounts.is_empty() && self.hooks.is_empty()
    }
}

fn other_edits(edits: Option<&EditsView>) -> OtherEdits {
    let Some(edits) = edits else {
        return OtherEdits::default();
    };
    OtherEdits {
        env: edits.env.clone().unwrap_or_default(),
        mounts: edits.mounts.clone().unwrap_or_default(),
        hooks: edits.hooks.clone().unwrap_or_default(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeView<'a> {
    #[serde(borrow)]
    path: Cow<'a, str>,
    #[serde(default, borrow)]
    host_path: Option<Cow<'a, str>>,
    #[serde(default, rename = "type", borrow)]
    typ: Option<Cow<'a, str>>,
    #[serde(default)]
    major: Option<i64>,
    #[serde(default)]
    minor: Option<i64>,
    #[serde(default, borrow)]
    permissions: Option<Cow<'a, str>>,
}

/// A device node as a spec describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecNode {
    /// Path inside the container (`/dev/nvidia0`).
    pub path: String,
    /// Path on the host, when it differs from `path`.
    pub host_path: Option<String>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Device cgroup access the container needs to open the node
    /// (`permissions`' `r` and `w`; `rw` when absent, `r` when it names
    /// only `m`).
    pub access: Access,
}

impl SpecNode {
    /// Where the host's node is: `hostPath`, else `path`.
    pub fn host_path(&self) -> &str {
        self.host_path.as_deref().unwrap_or(&self.path)
    }
}

/// One device of one spec file, with the spec-level nodes that come with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecDevice {
    pub kind: String,
    pub name: String,
    pub nodes: Vec<SpecNode>,
    /// The spec's own (spec-level) nodes.
    pub spec_nodes: Vec<SpecNode>,
    /// The device's edits besides nodes.
    pub edits: OtherEdits,
    /// The spec-level edits besides nodes.
    pub spec_edits: OtherEdits,
    pub file: PathBuf,
}

/// Why a file could not be read as a spec; says where, never what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    #[error("not valid {format} at line {line}, column {column}")]
    Syntax {
        format: &'static str,
        line: usize,
        column: usize,
    },
    #[error(
        "not a CDI spec: a field is missing or has the wrong type near line {line}, column \
         {column}"
    )]
    Shape { line: usize, column: usize },
    #[error("device #{index}: node #{node}: {what}")]
    Node {
        index: usize,
        node: usize,
        what: &'static str,
    },
    #[error("device #{index}: its containerEdits are not a CDI edits object")]
    Edits { index: usize },
    #[error("YAML specs need mig-cdi built with the yaml-read feature")]
    NoYaml,
}

fn json_error(err: &serde_json::Error) -> ViewError {
    let (line, column) = (err.line(), err.column());
    match err.classify() {
        serde_json::error::Category::Data => ViewError::Shape { line, column },
        _ => ViewError::Syntax {
            format: "JSON",
            line,
            column,
        },
    }
}

/// Decode the devices that `keep(kind, name)` selects from one file's
/// bytes (pure; `path` is recorded in each device).
pub fn parse(
    bytes: &[u8],
    format: Format,
    path: &Path,
    keep: &dyn Fn(&str, &str) -> bool,
) -> Result<Vec<SpecDevice>, ViewError> {
    match format {
        Format::Json => parse_json(bytes, path, keep),
        Format::Yaml => {
            let json = yaml_to_json(bytes)?;
            parse_json(&json, path, keep)
        }
    }
}

#[cfg(feature = "yaml-read")]
fn yaml_to_json(bytes: &[u8]) -> Result<Vec<u8>, ViewError> {
    let syntax = |line: u64, column: u64| ViewError::Syntax {
        format: "YAML",
        line: line as usize,
        column: column as usize,
    };
    let text = std::str::from_utf8(bytes).map_err(|err| {
        let before = &bytes[..err.valid_up_to()];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        syntax(line as u64, 0)
    })?;
    let value: serde_json::Value = serde_saphyr::from_str(text).map_err(|err| {
        let at = err.location();
        syntax(at.map_or(0, |l| l.line()), at.map_or(0, |l| l.column()))
    })?;
    Ok(serde_json::to_vec(&value).expect("a JSON value serializes"))
}

#[cfg(not(feature = "yaml-read"))]
fn yaml_to_json(_bytes: &[u8]) -> Result<Vec<u8>, ViewError> {
    Err(ViewError::NoYaml)
}

fn parse_json(
    bytes: &[u8],
    path: &Path,
    keep: &dyn Fn(&str, &str) -> bool,
) -> Result<Vec<SpecDevice>, ViewError> {
    let spec: SpecView = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
    let mut spec_nodes = None;
    let spec_edits = other_edits(spec.container_edits.as_ref());
    let mut kept = Vec::new();
    for (index, device) in spec.devices.unwrap_or_default().into_iter().enumerate() {
        if !keep(&spec.kind, &device.name) {
            continue;
        }
        if spec_nodes.is_none() {
            spec_nodes = Some(nodes(spec.container_edits.as_ref(), usize::MAX)?);
        }
        let edits: Option<EditsView> = device
            .container_edits
            .map(|raw| serde_json::from_str(raw.get()))
            .transpose()
            .map_err(|_| ViewError::Edits { index })?;
        kept.push(SpecDevice {
            kind: spec.kind.to_string(),
            nodes: nodes(edits.as_ref(), index)?,
            name: device.name.into_owned(),
            spec_nodes: spec_nodes.clone().unwrap_or_default(),
            edits: other_edits(edits.as_ref()),
            spec_edits: spec_edits.clone(),
            file: path.to_path_buf(),
        });
    }
    Ok(kept)
}

fn nodes(edits: Option<&EditsView>, index: usize) -> Result<Vec<SpecNode>, ViewError> {
    let Some(list) = edits.and_then(|e| e.device_nodes.as_deref()) else {
        return Ok(Vec::new());
    };
    list.iter()
        .enumerate()
        .map(|(at, node)| {
            let bad = |what| ViewError::Node {
                index,
                node: at,
                what,
            };
            if node.typ.as_deref().is_some_and(|t| t != "c") {
                return Err(bad("only character devices are expected"));
            }
            let number = |n: Option<i64>| -> Result<Option<u32>, ViewError> {
                n.map(|n| u32::try_from(n).map_err(|_| bad("device number out of range")))
                    .transpose()
            };
            Ok(SpecNode {
                path: node.path.to_string(),
                host_path: node.host_path.as_ref().map(|p| p.to_string()),
                major: number(node.major)?,
                minor: number(node.minor)?,
                access: access(node.permissions.as_deref())
                    .ok_or_else(|| bad("permissions are not a subset of rwm"))?,
            })
        })
        .collect()
}

/// The open access a node's `permissions` ask for.
pub fn access(permissions: Option<&str>) -> Option<Access> {
    let Some(text) = permissions else {
        return Some(Access::RW);
    };
    let parsed = Access::parse(text)?;
    let open = [Access::READ, Access::WRITE]
        .into_iter()
        .filter(|bit| parsed.contains(*bit))
        .fold(Access::NONE, |acc, bit| acc.union(bit));
    Some(if open.is_empty() { Access::READ } else { open })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{
      "cdiVersion": "0.5.0", "kind": "nvidia.com/gpu",
      "devices": [
        {"name": "0:0", "containerEdits": {"deviceNodes": [
          {"path": "/dev/nvidia0", "type": "c", "major": 195, "minor": 0},
          {"path": "/dev/nvidia-caps/nvidia-cap12", "type": "c", "major": 241, "minor": 12,
           "permissions": "r"}]}},
        {"name": "broken", "containerEdits": {"deviceNodes": "not a list"}}
      ],
      "containerEdits": {"env": ["X=1"], "deviceNodes": [
        {"path": "/dev/nvidiactl", "type": "c", "major": 195, "minor": 255}]}
    }"#;

    fn all(_: &str, _: &str) -> bool {
        true
    }

    #[test]
    fn selected_devices_only_are_decoded() {
        let keep = |_: &str, name: &str| name == "0:0";
        let got = parse(SPEC.as_bytes(), Format::Json, Path::new("/s.json"), &keep).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].nodes[1].access, Access::READ);
        assert_eq!(got[0].spec_nodes[0].path, "/dev/nvidiactl");
        assert_eq!(got[0].spec_edits.env, ["X=1"]);
        assert!(got[0].edits.is_empty());
        let err = parse(SPEC.as_bytes(), Format::Json, Path::new("/s.json"), &all).unwrap_err();
        assert_eq!(err, ViewError::Edits { index: 1 });
    }

    #[test]
    fn errors_say_where_never_what() {
        for text in [
            "{ \"kind\": \"SECRET-TOKEN\" ",
            "{\"kind\": [\"SECRET-TOKEN\"]}",
            "{\"kind\": \"a/b\", \"devices\": {\"SECRET-TOKEN\": 1}}",
            "SECRET-TOKEN",
        ] {
            let err = parse(text.as_bytes(), Format::Json, Path::new("x"), &all).unwrap_err();
            let shown = err.to_string();
            assert!(!shown.contains("SECRET"), "{shown}");
            assert!(shown.contains("line 1"), "{shown}");
        }
        let text = r#"{"kind":"a/b","devices":[{"name":"d","containerEdits":{"deviceNodes":[
            {"path":"/dev/x","type":"SECRET"}]}}]}"#;
        let err = parse(text.as_bytes(), Format::Json, Path::new("x"), &all)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("SECRET"), "{err}");
        assert!(err.contains("device #0: node #0"), "{err}");
    }

    #[cfg(feature = "yaml-read")]
    #[test]
    fn yaml_reads_like_json() {
        let yaml = "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: \"0:0\"\n  \
                    containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n      major: \
                    195\n      minor: 0\ncontainerEdits:\n  deviceNodes:\n  - path: /dev/nvidiactl\n";
        let got = parse(yaml.as_bytes(), Format::Yaml, Path::new("s.yaml"), &all).unwrap();
        assert_eq!(got[0].name, "0:0");
        assert_eq!(got[0].nodes[0].major, Some(195));
        assert_eq!(got[0].spec_nodes[0].path, "/dev/nvidiactl");
        let err = parse(b"kind: [SECRET", Format::Yaml, Path::new("s.yaml"), &all)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("not valid YAML at line"), "{err}");
        assert!(!err.contains("SECRET"), "{err}");
    }

    #[test]
    fn permissions_give_the_open_access() {
        assert_eq!(access(None), Some(Access::RW));
        assert_eq!(access(Some("r")), Some(Access::READ));
        assert_eq!(access(Some("rwm")), Some(Access::RW));
        assert_eq!(access(Some("m")), Some(Access::READ));
        assert_eq!(access(Some("x")), None);
    }
}
