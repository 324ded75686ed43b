//! Stage 2, resolve: the requested names, looked up in the CDI spec
//! folders with the runtimes' priority and conflict rules (core's
//! `cdi::folders`), then CUDA's one-device rule.
//!
//! Spec files are read through the lenient view (`cdi::view`), JSON and
//! YAML: another vendor's spec, a newer version or a broken file beside
//! ours is skipped (and named if the lookup then fails), never fatal. A
//! device no one asked for is never decoded past its name.

use std::path::{Path, PathBuf};

use mig_cdi_core::cdi::folders::{Catalog, Pick};
use mig_cdi_core::cdi::view::{self, SpecDevice, SpecNode};
use mig_cdi_core::cdi::Format;
use mig_cdi_core::fsread::MAX_SPEC_BYTES;
use mig_cdi_core::paths::{classify, NodePath};

use crate::host::Host;
use crate::log::Log;
use crate::request::{DeviceRef, Request, Wanted};

/// Kind of unqualified names.
pub const DEFAULT_KIND: &str = "nvidia.com/gpu";
/// The only vendor whose devices the hook injects.
pub const VENDOR: &str = "nvidia.com";

/// Why the request does not resolve to one device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "{device} is not an NVIDIA device: mig-cdi-hook injects {VENDOR} devices only (other \
         vendors' devices go through CDI)"
    )]
    ForeignKind { device: String },
    #[error(
        "{device} is defined by more than one spec file in one directory ({}); remove all but \
         one (mig-cdi-gen writes nvidia.com-gpu.json)",
        join(files)
    )]
    Conflict { device: String, files: Vec<PathBuf> },
    #[error(
        "no CDI device {kind}={name} in {}{}; run `mig-cdi-gen list` to see the names, or \
         `mig-cdi-gen generate` if the spec is missing",
        join(dirs),
        skipped_text(skipped)
    )]
    Missing {
        kind: String,
        name: String,
        dirs: Vec<PathBuf>,
        skipped: Vec<String>,
    },
    #[error(
        "\"all\" was requested but {} hold no {DEFAULT_KIND} device{}; run `mig-cdi-gen \
         generate`",
        join(dirs),
        skipped_text(skipped)
    )]
    NoneForAll {
        dirs: Vec<PathBuf>,
        skipped: Vec<String>,
    },
    #[error(
        "{asked_by} asks for {count} {}devices: {listed}; {} — request one of them",
        if *mig { "MIG " } else { "" },
        if *mig {
            "CUDA enumerates only one MIG device per process, so a container gets exactly one"
        } else {
            "mig-cdi-hook gives a container exactly one device (use CDI for several whole GPUs)"
        }
    )]
    OneDevice {
        asked_by: String,
        count: usize,
        /// `0:0, 0:1 = MIG-…`.
        listed: String,
        mig: bool,
    },
}

fn join(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn skipped_text(skipped: &[String]) -> String {
    if skipped.is_empty() {
        String::new()
    } else {
        format!(" (skipped unreadable specs: {})", skipped.join("; "))
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
            .any(|n| matches!(classify(&n.path), NodePath::Cap(_)))
    }

    /// `nvidia.com/gpu=0:1`.
    pub fn qualified(&self) -> String {
        format!("{}={}", self.device.kind, self.device.name)
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

/// The devices the request names, from `dirs` (lowest priority first).
pub fn load(
    host: &dyn Host,
    dirs: &[PathBuf],
    wanted: &Wanted,
    log: &mut Log,
) -> Catalog<SpecDevice> {
    let keep = |kind: &str, name: &str| match wanted {
        Wanted::All | Wanted::Any { .. } => kind == DEFAULT_KIND,
        Wanted::Names(names) => names
            .iter()
            .any(|r| r.name == name && r.kind.as_deref().unwrap_or(DEFAULT_KIND) == kind),
    };
    let catalog = Catalog::load_with(
        dirs,
        |dir| host.spec_files(dir),
        |file: &Path| {
            let bytes = host
                .read_file(file, MAX_SPEC_BYTES)
                .map_err(|e| e.reason())?;
            let devices = view::parse(&bytes, Format::from_path(file), file, &keep)
                .map_err(|e| e.to_string())?;
            Ok(devices
                .into_iter()
                .map(|d| (d.kind.clone(), d.name.clone(), d))
                .collect())
        },
    );
    for (dir, why) in &catalog.unlisted {
        log.line(format_args!("spec dir {}: {why}", dir.display()));
    }
    for (file, why) in &catalog.skipped {
        log.line(format_args!("skipped spec {}: {why}", file.display()));
    }
    catalog
}

fn skipped(catalog: &Catalog<SpecDevice>) -> Vec<String> {
    catalog
        .skipped
        .iter()
        .map(|(file, why)| format!("{} ({why})", file.display()))
        .collect()
}

fn get(catalog: &Catalog<SpecDevice>, device: &DeviceRef) -> Result<SpecDevice, ResolveError> {
    let kind = device.kind.as_deref().unwrap_or(DEFAULT_KIND);
    match catalog.get(kind, &device.name) {
        Pick::One { chosen, .. } => Ok(chosen.item.clone()),
        Pick::Conflict { files } => Err(ResolveError::Conflict {
            device: device.to_string(),
            files,
        }),
        Pick::None => Err(ResolveError::Missing {
            kind: kind.to_string(),
            name: device.name.clone(),
            dirs: catalog.dirs.clone(),
            skipped: skipped(catalog),
        }),
    }
}

/// Resolve a named (or `all`) request to exactly one device; `any` is
/// allocated instead ([`crate::alloc::allocate`]), and here reads as `all`.
pub fn resolve(catalog: &Catalog<SpecDevice>, request: &Request) -> Result<Resolved, ResolveError> {
    let mut found: Vec<(String, SpecDevice)> = Vec::new();
    match &request.wanted {
        Wanted::All | Wanted::Any { .. } => {
            for name in catalog.names(DEFAULT_KIND) {
                if let Pick::One { chosen, .. } = catalog.get(DEFAULT_KIND, name) {
                    found.push((name.to_string(), chosen.item.clone()));
                }
            }
            if found.is_empty() {
                return Err(ResolveError::NoneForAll {
                    dirs: catalog.dirs.clone(),
                    skipped: skipped(catalog),
                });
            }
        }
        Wanted::Names(names) => {
            for name in names {
                let vendor = name.kind.as_deref().and_then(|k| k.split_once('/'));
                if vendor.is_some_and(|(vendor, _)| vendor != VENDOR) {
                    return Err(ResolveError::ForeignKind {
                        device: name.to_string(),
                    });
                }
                found.push((name.to_string(), get(catalog, name)?));
            }
        }
    }
    let mut groups: Vec<Resolved> = Vec::new();
    for (asked, device) in found {
        let identity = identity(&device.nodes);
        match groups.iter_mut().find(|g| g.identity == identity) {
            Some(group) => group.names.push(asked),
            None => groups.push(Resolved::new(vec![asked], device)),
        }
    }
    one_device(groups, request)
}

/// CUDA's rule: one MIG device per container. Several names of one device
/// count once.
pub fn one_device(groups: Vec<Resolved>, request: &Request) -> Result<Resolved, ResolveError> {
    if groups.len() == 1 {
        return Ok(groups.into_iter().next().expect("one group"));
    }
    let listed = groups
        .iter()
        .map(|g| {
            let names = g.names.join(" = ");
            if g.names.contains(&g.device.name) {
                names
            } else {
                format!("{names} (= {})", g.device.name)
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    Err(ResolveError::OneDevice {
        asked_by: request.source.clone(),
        count: groups.len(),
        listed,
        mig: groups.iter().any(Resolved::is_mig),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::{FakeFile, FakeHost};
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

    fn request(list: &str) -> Request {
        Request {
            wanted: parse_list(list, "test").unwrap().unwrap(),
            source: format!("NVIDIA_VISIBLE_DEVICES={list}"),
            mig_config: false,
            mig_monitor: false,
        }
    }

    fn host(files: &[(&str, &str)]) -> FakeHost {
        let mut host = FakeHost::h200();
        for (path, text) in files {
            host.write(*path, *text);
        }
        host
    }

    fn resolve_in(host: &FakeHost, dirs: &[&str], list: &str) -> Result<Resolved, ResolveError> {
        let dirs: Vec<PathBuf> = dirs.iter().map(PathBuf::from).collect();
        let request = request(list);
        let catalog = load(host, &dirs, &request.wanted, &mut Log::none());
        resolve(&catalog, &request)
    }

    #[test]
    fn names_of_one_device_count_once_and_two_devices_are_refused() {
        let host = host(&[("/cdi/nvidia.com-gpu.json", SPEC)]);
        let one = resolve_in(&host, &["/cdi"], "0:0,MIG-aaaa,nvidia.com/gpu=0:0").unwrap();
        assert_eq!(one.names, ["0:0", "MIG-aaaa", "nvidia.com/gpu=0:0"]);
        assert!(one.is_mig());
        assert_eq!(one.device.spec_nodes[0].path, "/dev/nvidiactl");
        let err = resolve_in(&host, &["/cdi"], "0:0,0:1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("asks for 2 MIG devices: 0:0, 0:1"), "{err}");
        assert!(err.contains("only one MIG device per process"), "{err}");
        let err = resolve_in(&host, &["/cdi"], "all").unwrap_err();
        assert!(
            matches!(err, ResolveError::OneDevice { count: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn broken_and_foreign_specs_are_skipped_and_named() {
        let mut host = host(&[
            ("/cdi/a-broken.json", "{ this is not json"),
            (
                "/cdi/b-vendor.json",
                r#"{"cdiVersion":"9.9.9","kind":"vendor.com/thing","devices":[{"name":"x",
                "containerEdits":{"netDevices":[{"hostInterfaceName":"eth0"}],"deviceNodes":[{"path":"/dev/x","type":"b"}]}}],
                "newTopLevel":{"a":1}}"#,
            ),
            ("/cdi/nvidia.com-gpu.json", SPEC),
            ("/cdi/not-a-spec.txt", "ignored"),
        ]);
        host.files
            .insert("/cdi/c-fifo.json".into(), FakeFile::NotRegular("a FIFO"));
        assert!(resolve_in(&host, &["/cdi"], "0:1").is_ok());
        let err = resolve_in(&host, &["/cdi"], "9:9").unwrap_err().to_string();
        assert!(err.contains("no CDI device nvidia.com/gpu=9:9"), "{err}");
        assert!(
            err.contains("a-broken.json (not valid JSON at line 1"),
            "{err}"
        );
        assert!(err.contains("c-fifo.json (it is a FIFO"), "{err}");
        assert!(!err.contains("b-vendor"), "{err}");
    }

    #[test]
    fn yaml_specs_are_read() {
        let yaml = "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: \"0:1\"\n  \
                    containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n";
        let host = host(&[("/cdi/nvidia.com-gpu.yaml", yaml)]);
        let got = resolve_in(&host, &["/cdi"], "0:1").unwrap();
        assert_eq!(got.device.file, PathBuf::from("/cdi/nvidia.com-gpu.yaml"));
    }

    #[test]
    fn later_directory_wins_and_same_directory_conflicts() {
        let other = SPEC.replace("\"minor\": 21", "\"minor\": 31");
        let host = host(&[
            ("/etc/cdi/nvidia.com-gpu.json", SPEC),
            ("/run/cdi/nvidia.com-gpu.json", &other),
            ("/two/a.json", SPEC),
            ("/two/b.json", SPEC),
        ]);
        let got = resolve_in(&host, &["/etc/cdi", "/run/cdi"], "0:1").unwrap();
        assert_eq!(got.device.nodes[1].minor, Some(31));
        let err = resolve_in(&host, &["/two"], "0:1").unwrap_err().to_string();
        assert!(err.contains("more than one spec file"), "{err}");
    }

    #[test]
    fn other_vendors_are_not_injected() {
        let host = host(&[("/cdi/nvidia.com-gpu.json", SPEC)]);
        let err = resolve_in(&host, &["/cdi"], "vendor.com/gpu=0:1").unwrap_err();
        assert!(matches!(err, ResolveError::ForeignKind { .. }), "{err}");
        assert!(resolve_in(&host, &["/cdi"], "nvidia.com/gpu=0:1").is_ok());
    }
}
