//! Resolve requested names against the CDI specs the generator wrote.
//!
//! The hook reads a lenient view of each spec — `kind`, each device's
//! `name` and `containerEdits.deviceNodes`, and the spec-level
//! `containerEdits.deviceNodes` (control nodes) — and nothing else, so
//! another vendor's spec with fields we do not know, or a broken file, is
//! skipped (and named if the lookup then fails), never fatal. Directories
//! are read in order and a later one wins (`/etc/cdi`, then `/var/run/cdi`,
//! as CDI says); two files of one directory defining the same device make
//! it unusable, as in the CDI reference library.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mig_cdi_core::cgroup::Access;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::HookError;
use crate::log::Log;
use crate::request::{DeviceRef, Wanted};

/// Default spec directories, lowest priority first.
pub const DEFAULT_SPEC_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];
/// Kind of unqualified names.
pub const DEFAULT_KIND: &str = "nvidia.com/gpu";
/// A spec larger than this is not ours (ours are a few KiB).
const MAX_SPEC_BYTES: u64 = 16 << 20;

// Views borrow from the file's bytes (`Cow` falls back to an owned string
// only where JSON escapes force it): a spec of 8 GPUs x 7 MIG devices holds
// hundreds of names and paths, and the hook needs one device of them.
#[derive(Debug, Deserialize)]
struct SpecView<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    devices: Option<Vec<DeviceView<'a>>>,
    #[serde(default, rename = "containerEdits", borrow)]
    container_edits: Option<EditsView<'a>>,
}

/// A device's edits stay raw (only their extent is scanned) until the
/// device turns out to be one the container asked for.
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
    /// Device cgroup access the container needs (`permissions`, default
    /// `rw`; `m` is never needed: the hook creates the node).
    pub access: Access,
}

impl SpecNode {
    /// Where the host's node is: `hostPath`, else `path`.
    pub fn host_path(&self) -> &str {
        self.host_path.as_deref().unwrap_or(&self.path)
    }
}

/// One device of one spec file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecDevice {
    pub kind: String,
    pub name: String,
    pub nodes: Vec<SpecNode>,
    /// The spec's own (spec-level) nodes: the control nodes.
    pub spec_nodes: Vec<SpecNode>,
    pub file: PathBuf,
}

/// Every device of the default (or any requested) kind, after priority.
#[derive(Debug, Default)]
pub struct Catalog {
    /// (kind, name) -> device, or the files that both define it.
    devices: BTreeMap<(String, String), Entry>,
    /// Files skipped, with why (named when a lookup fails).
    pub skipped: Vec<String>,
    pub dirs: Vec<PathBuf>,
}

#[derive(Debug)]
enum Entry {
    Device(SpecDevice),
    Conflict(Vec<PathBuf>),
}

impl Catalog {
    /// Read every `*.json` spec directly in `dirs` (lowest priority first),
    /// keeping the devices `wanted` names (a device no one asked for is
    /// never decoded past its name, so a broken one cannot get in the way).
    pub fn load(dirs: &[PathBuf], wanted: &Wanted, log: &mut Log) -> Self {
        let keep = |kind: &str, name: &str| match wanted {
            Wanted::All => kind == DEFAULT_KIND,
            Wanted::Names(names) => names
                .iter()
                .any(|r| r.name == name && r.kind.as_deref().unwrap_or(DEFAULT_KIND) == kind),
        };
        let mut catalog = Catalog {
            dirs: dirs.to_vec(),
            ..Catalog::default()
        };
        for dir in dirs {
            let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "json" || e == "yaml"))
                    .collect(),
                Err(err) => {
                    log.line(format_args!("spec dir {}: {err}", dir.display()));
                    continue;
                }
            };
            files.sort();
            let mut this_dir: BTreeMap<(String, String), Entry> = BTreeMap::new();
            for file in files {
                match read_spec(&file, &keep) {
                    Ok(devices) => {
                        for device in devices {
                            let key = (device.kind.clone(), device.name.clone());
                            let entry = match this_dir.remove(&key) {
                                None => Entry::Device(device),
                                Some(Entry::Device(first)) => {
                                    Entry::Conflict(vec![first.file, device.file])
                                }
                                Some(Entry::Conflict(mut files)) => {
                                    files.push(device.file);
                                    Entry::Conflict(files)
                                }
                            };
                            this_dir.insert(key, entry);
                        }
                    }
                    Err(why) => {
                        log.line(format_args!("skipped spec {}: {why}", file.display()));
                        catalog.skipped.push(format!("{} ({why})", file.display()));
                    }
                }
            }
            // A later directory wins.
            catalog.devices.extend(this_dir);
        }
        catalog
    }

    /// Look up one name.
    fn get(&self, device: &DeviceRef) -> Result<&SpecDevice, HookError> {
        let kind = device.kind.as_deref().unwrap_or(DEFAULT_KIND);
        match self.devices.get(&(kind.to_string(), device.name.clone())) {
            Some(Entry::Device(found)) => Ok(found),
            Some(Entry::Conflict(files)) => Err(HookError::Resolve(format!(
                "{device} is defined by more than one spec file in one directory ({}); \
                 remove all but one (mig-cdi-gen writes nvidia.com-gpu.json)",
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            None => Err(HookError::Resolve(format!(
                "no CDI device {kind}={} in {}{}; run `mig-cdi-gen list` to see the names, \
                 or `mig-cdi-gen generate` if the spec is missing",
                device.name,
                self.dirs_text(),
                self.skipped_text()
            ))),
        }
    }

    fn dirs_text(&self) -> String {
        self.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn skipped_text(&self) -> String {
        if self.skipped.is_empty() {
            String::new()
        } else {
            format!(" (skipped unreadable specs: {})", self.skipped.join("; "))
        }
    }

    /// Resolve the request to devices, grouped by identity: names that
    /// denote the same device (same node set) give one group.
    pub fn resolve(&self, wanted: &Wanted) -> Result<Vec<Resolved>, HookError> {
        let mut found: Vec<(String, &SpecDevice)> = Vec::new();
        match wanted {
            Wanted::All => {
                for ((kind, _), entry) in &self.devices {
                    if let (true, Entry::Device(device)) = (kind == DEFAULT_KIND, entry) {
                        found.push((device.name.clone(), device));
                    }
                }
                if found.is_empty() {
                    return Err(HookError::Resolve(format!(
                        "\"all\" was requested but {} hold no {DEFAULT_KIND} device{}; run \
                         `mig-cdi-gen generate`",
                        self.dirs_text(),
                        self.skipped_text()
                    )));
                }
            }
            Wanted::Names(names) => {
                for name in names {
                    found.push((name.to_string(), self.get(name)?));
                }
            }
        }
        let mut groups: Vec<Resolved> = Vec::new();
        for (asked, device) in found {
            let identity = identity(&device.nodes);
            match groups.iter_mut().find(|g| g.identity == identity) {
                Some(group) => group.names.push(asked),
                None => groups.push(Resolved::new(vec![asked], device.clone())),
            }
        }
        Ok(groups)
    }
}

/// One requested device and every name it was asked for by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub names: Vec<String>,
    identity: Vec<(u32, u32, String)>,
    pub device: SpecDevice,
}

impl Resolved {
    pub fn new(names: Vec<String>, device: SpecDevice) -> Self {
        Self {
            identity: identity(&device.nodes),
            names,
            device,
        }
    }

    /// A MIG device has capability nodes.
    pub fn is_mig(&self) -> bool {
        self.device
            .nodes
            .iter()
            .any(|n| n.path.starts_with("/dev/nvidia-caps/"))
    }
}

/// The device's identity: its node numbers (paths only where a spec leaves
/// the numbers to the host).
fn identity(nodes: &[SpecNode]) -> Vec<(u32, u32, String)> {
    let mut id: Vec<_> = nodes
        .iter()
        .map(|n| match (n.major, n.minor) {
            (Some(major), Some(minor)) => (major, minor, String::new()),
            _ => (u32::MAX, u32::MAX, n.host_path().to_string()),
        })
        .collect();
    id.sort();
    id.dedup();
    id
}

fn read_spec(path: &Path, keep: &dyn Fn(&str, &str) -> bool) -> Result<Vec<SpecDevice>, String> {
    if path.extension().is_some_and(|e| e == "yaml") {
        return Err("YAML specs are not read by mig-cdi-hook; mig-cdi-gen writes JSON".into());
    }
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_SPEC_BYTES {
        return Err(format!("{} bytes is too large for a CDI spec", meta.len()));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    parse_spec(&bytes, path, keep)
}

/// Decode the devices of one spec file that `keep(kind, name)` selects
/// (pure; `path` names it).
pub fn parse_spec(
    bytes: &[u8],
    path: &Path,
    keep: &dyn Fn(&str, &str) -> bool,
) -> Result<Vec<SpecDevice>, String> {
    let spec: SpecView = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let mut spec_nodes = None;
    let mut kept = Vec::new();
    for device in spec.devices.unwrap_or_default() {
        if !keep(&spec.kind, &device.name) {
            continue;
        }
        if spec_nodes.is_none() {
            spec_nodes = Some(nodes(spec.container_edits.as_ref())?);
        }
        let edits: Option<EditsView> = device
            .container_edits
            .map(|raw| serde_json::from_str(raw.get()))
            .transpose()
            .map_err(|e| format!("device {:?}: {e}", device.name))?;
        kept.push(SpecDevice {
            kind: spec.kind.to_string(),
            nodes: nodes(edits.as_ref()).map_err(|e| format!("device {:?}: {e}", device.name))?,
            name: device.name.into_owned(),
            spec_nodes: spec_nodes.clone().unwrap_or_default(),
            file: path.to_path_buf(),
        });
    }
    Ok(kept)
}

fn nodes(edits: Option<&EditsView>) -> Result<Vec<SpecNode>, String> {
    let Some(list) = edits.and_then(|e| e.device_nodes.as_deref()) else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|node| {
            if node.typ.as_deref().is_some_and(|t| t != "c") {
                return Err(format!(
                    "{}: only character devices are expected",
                    node.path
                ));
            }
            let number = |n: Option<i64>| -> Result<Option<u32>, String> {
                n.map(|n| {
                    u32::try_from(n).map_err(|_| format!("{}: bad device number {n}", node.path))
                })
                .transpose()
            };
            Ok(SpecNode {
                path: node.path.to_string(),
                host_path: node.host_path.as_ref().map(|p| p.to_string()),
                major: number(node.major)?,
                minor: number(node.minor)?,
                access: access(node.permissions.as_deref())
                    .ok_or_else(|| format!("{}: bad permissions", node.path))?,
            })
        })
        .collect()
}

/// The open access a node's `permissions` ask for: its `r` and `w` (`rw`
/// when absent; `r` when it names only `m`).
fn access(permissions: Option<&str>) -> Option<Access> {
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
    use crate::request::parse_list;

    pub(crate) const SPEC: &str = r#"{
      "cdiVersion": "0.5.0", "kind": "nvidia.com/gpu",
      "devices": [
        {"name": "0:0", "containerEdits": {"deviceNodes": [
          {"path": "/dev/nvidia0", "type": "c", "major": 195, "minor": 0},
          {"path": "/dev/nvidia-caps/nvidia-cap12", "type": "c", "major": 241, "minor": 12},
          {"path": "/dev/nvidia-caps/nvidia-cap13", "type": "c", "major": 241, "minor": 13}]}},
        {"name": "MIG-aaaa", "containerEdits": {"deviceNodes": [
          {"path": "/dev/nvidia0", "type": "c", "major": 195, "minor": 0},
          {"path": "/dev/nvidia-caps/nvidia-cap12", "type": "c", "major": 241, "minor": 12},
          {"path": "/dev/nvidia-caps/nvidia-cap13", "type": "c", "major": 241, "minor": 13}]}},
        {"name": "0:1", "containerEdits": {"deviceNodes": [
          {"path": "/dev/nvidia0", "type": "c", "major": 195, "minor": 0},
          {"path": "/dev/nvidia-caps/nvidia-cap21", "type": "c", "major": 241, "minor": 21},
          {"path": "/dev/nvidia-caps/nvidia-cap22", "type": "c", "major": 241, "minor": 22}]}}
      ],
      "containerEdits": {"env": ["X=1"], "deviceNodes": [
        {"path": "/dev/nvidiactl", "type": "c", "major": 195, "minor": 255}]}
    }"#;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn wanted(list: &str) -> Wanted {
        parse_list(list, "test").unwrap().unwrap()
    }

    #[test]
    fn resolves_and_groups_names_of_one_device() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "nvidia.com-gpu.json", SPEC);
        let load = |w: &Wanted| Catalog::load(&[dir.path().to_path_buf()], w, &mut Log::none());
        let names = wanted("0:0,MIG-aaaa,nvidia.com/gpu=0:0");
        let groups = load(&names).resolve(&names).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].names, ["0:0", "MIG-aaaa", "nvidia.com/gpu=0:0"]);
        assert!(groups[0].is_mig());
        assert_eq!(groups[0].device.spec_nodes[0].path, "/dev/nvidiactl");
        let names = wanted("0:0,0:1");
        let groups = load(&names).resolve(&names).unwrap();
        assert_eq!(groups.len(), 2);
        let groups = load(&Wanted::All).resolve(&Wanted::All).unwrap();
        assert_eq!(groups.len(), 2);
    }

    #[test]
    fn broken_and_foreign_specs_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a-broken.json", "{ this is not json");
        write(
            dir.path(),
            "b-vendor.json",
            r#"{"cdiVersion":"9.9.9","kind":"vendor.com/thing","devices":[{"name":"x",
                "containerEdits":{"netDevices":[{"hostInterfaceName":"eth0"}],"deviceNodes":[{"path":"/dev/x","type":"b"}]}}],
                "newTopLevel":{"a":1}}"#,
        );
        write(dir.path(), "c.yaml", "kind: a/b");
        write(dir.path(), "nvidia.com-gpu.json", SPEC);
        write(dir.path(), "not-a-spec.txt", "ignored");
        let load = |w: &Wanted| Catalog::load(&[dir.path().to_path_buf()], w, &mut Log::none());
        let names = wanted("0:1");
        let catalog = load(&names);
        assert_eq!(catalog.resolve(&names).unwrap().len(), 1);
        // The foreign vendor's block device is never decoded: only the
        // broken JSON and the YAML file are skipped.
        assert_eq!(catalog.skipped.len(), 2, "{:?}", catalog.skipped);
        let names = wanted("9:9");
        let err = load(&names).resolve(&names).unwrap_err().to_string();
        assert!(err.contains("no CDI device nvidia.com/gpu=9:9"), "{err}");
        assert!(err.contains("a-broken.json"), "{err}");
    }

    #[test]
    fn later_directory_wins() {
        let etc = tempfile::tempdir().unwrap();
        let run = tempfile::tempdir().unwrap();
        write(etc.path(), "nvidia.com-gpu.json", SPEC);
        write(
            run.path(),
            "nvidia.com-gpu.json",
            &SPEC.replace("\"minor\": 21", "\"minor\": 31"),
        );
        let names = wanted("0:1");
        let catalog = Catalog::load(
            &[etc.path().to_path_buf(), run.path().to_path_buf()],
            &names,
            &mut Log::none(),
        );
        let groups = catalog.resolve(&names).unwrap();
        assert_eq!(groups[0].device.nodes[1].minor, Some(31));
    }

    #[test]
    fn same_device_in_two_files_of_one_dir_is_unusable() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.json", SPEC);
        write(dir.path(), "b.json", SPEC);
        let names = wanted("0:1");
        let catalog = Catalog::load(&[dir.path().to_path_buf()], &names, &mut Log::none());
        let err = catalog.resolve(&names).unwrap_err().to_string();
        assert!(err.contains("more than one spec file"), "{err}");
    }

    #[test]
    fn permissions_give_the_open_access() {
        assert_eq!(access(None), Some(Access::RW));
        assert_eq!(access(Some("r")), Some(Access::READ));
        assert_eq!(access(Some("rwm")), Some(Access::RW));
        assert_eq!(access(Some("m")), Some(Access::READ));
        assert_eq!(access(Some("x")), None);
    }

    #[test]
    fn missing_directories_are_fine() {
        let names = wanted("0:1");
        let catalog = Catalog::load(
            &[PathBuf::from("/nonexistent/cdi")],
            &names,
            &mut Log::none(),
        );
        assert!(catalog.resolve(&names).is_err());
    }
}
