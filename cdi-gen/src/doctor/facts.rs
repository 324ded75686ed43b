//! Everything doctor checks, gathered in one read-only pass: the kernel
//! module's version, one NVML snapshot (with the details only doctor
//! needs), the node plan examined on the host (as `generate` examines
//! it), every capability of an instance that exists, the CDI spec files
//! and what `generate` would write for ours, and the host around them
//! ([`super::host`]). Nothing here decides whether something is a
//! problem: that is [`super::checks`], over this data.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mig_cdi_core::cdi::render::VerifyHook;
use mig_cdi_core::cdi::{self, diff, folders, Checked, Format, NameStrategy, RenderOptions};
use mig_cdi_core::cdi::{SchemaValidator, Spec};
use mig_cdi_core::driver::{parse_version, CharDevices, DriverVersion, LiveDriver};
use mig_cdi_core::fsread;
use mig_cdi_core::nodes::{self, DeviceNode, HostEntry, HostNodeIssue, NodeRole};
use mig_cdi_core::paths::{self, CapKey, CAPS_MAJOR_NAME};
use mig_cdi_core::snapshot::Snapshot;

use super::host::{self, ProcessScan, RuntimeConfig, Unit};
use crate::args::HostArgs;
use crate::discover::{self, Discovery};
use crate::exit::error_line;
use crate::nvml::{self, Reads};
use crate::render::render_checked;

/// `sys/module/nvidia/parameters/nv_cap_enable_devfs`: 1 for the
/// `/dev/nvidia-caps` model, 0 for the deprecated `/proc` one.
pub const DEVFS_PARAM: &str = "sys/module/nvidia/parameters/nv_cap_enable_devfs";

/// Where and how doctor looks.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: HostArgs,
    pub vendor: String,
    pub class: String,
    /// Spec folders, lowest priority first.
    pub spec_dirs: Vec<PathBuf>,
}

impl Settings {
    pub fn kind(&self) -> String {
        format!("{}/{}", self.vendor, self.class)
    }

    /// File names of our spec: `<vendor>-<class>.json` / `.yaml`.
    pub fn is_ours(&self, path: &Path) -> bool {
        let stem = format!("{}-{}", self.vendor, self.class);
        matches!(
            path.file_name().and_then(|n| n.to_str()),
            Some(n) if n == format!("{stem}.json") || n == format!("{stem}.yaml")
        )
    }
}

/// How the driver exposes MIG capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapsModel {
    /// The `nvidia-caps` major in `/proc/devices`, when there is one.
    pub caps_major: Option<u32>,
    /// `nv_cap_enable_devfs` as the module reports it, when readable.
    pub devfs_param: Option<String>,
    /// Where the parameter was looked for.
    pub param_path: PathBuf,
}

impl CapsModel {
    /// The deprecated `/proc`-only model.
    pub fn is_proc(&self) -> bool {
        self.devfs_param.as_deref() == Some("0") || self.caps_major.is_none()
    }
}

/// A node beyond what `generate` plans (the capability of a GPU instance
/// without compute instance), examined on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraCap {
    pub gpu_index: u32,
    pub key: CapKey,
    pub node: DeviceNode,
    /// What is wrong with it on the host, if anything.
    pub issue: Option<HostNodeIssue>,
}

/// A node present with the right number but not the driver's mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeMismatch {
    pub node: DeviceNode,
    pub host_path: PathBuf,
    pub mode: u32,
}

/// What `generate` would write for one of our spec files, compared with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Currency {
    /// Byte for byte what `generate` writes.
    Current,
    /// Differs: the devices added, removed and changed (empty lists and
    /// `spec_level` when only the layout or the spec-level edits differ).
    Stale {
        added: Vec<String>,
        removed: Vec<String>,
        changed: Vec<String>,
        spec_level: Vec<String>,
    },
}

/// One spec file of a spec folder.
#[derive(Debug, Clone)]
pub struct SpecFile {
    pub path: PathBuf,
    /// Index of its folder (higher wins).
    pub priority: usize,
    /// Named `<vendor>-<class>.json|yaml`.
    pub ours: bool,
    /// Permission bits.
    pub mode: Option<u32>,
    /// The schema and the CDI rules on its bytes, or why it was not read.
    pub checked: Result<Checked, String>,
    /// For ours: against what `generate` would write now (with the naming
    /// strategies its device names show), or why that cannot be computed.
    pub currency: Option<Result<Currency, String>>,
}

impl SpecFile {
    pub fn spec(&self) -> Option<&Spec> {
        self.checked.as_ref().ok()?.spec.as_ref()
    }
}

/// All the facts.
#[derive(Debug)]
pub struct Facts {
    pub settings: Settings,
    /// `/proc/driver/nvidia/version`, or why it could not be read.
    pub module: Result<DriverVersion, String>,
    /// NVML, with details, or why it could not be read.
    pub nvml: Result<Snapshot, String>,
    /// The node plan examined on the host; `None` without NVML.
    pub host: Option<Result<Discovery, String>>,
    /// `/proc/devices`, when readable.
    pub char_devices: Option<CharDevices>,
    pub caps_model: CapsModel,
    pub extra_caps: Vec<ExtraCap>,
    /// `(GPU index, why)` where the capability files could not be read.
    pub caps_unreadable: Vec<(u32, String)>,
    pub mode_mismatches: Vec<ModeMismatch>,
    pub spec_files: Vec<SpecFile>,
    /// `(folder, why)` for spec folders that could not be listed.
    pub unlisted_dirs: Vec<(PathBuf, String)>,
    pub units: Vec<Unit>,
    pub processes: ProcessScan,
    pub runtimes: RuntimeConfig,
}

/// Gather every fact. Never fails: what cannot be read is a fact too.
pub fn gather(settings: Settings, schema: &SchemaValidator) -> Facts {
    let root = settings.host.root.clone();
    let dev_root = settings.host.dev_root.clone();
    let module = read_module(&root);
    let reads = Reads {
        details: true,
        ..Reads::default()
    };
    let nvml = nvml::take_snapshot(&settings.host.nvml_lib, reads).map_err(|e| error_line(&e));
    let host = nvml.as_ref().ok().map(|snapshot| {
        discover::examine_host(snapshot.clone(), &root, &dev_root).map_err(|e| error_line(&e))
    });
    let live = LiveDriver::load(&root).ok();
    let char_devices = live.as_ref().map(|l| l.char_devices.clone());
    let param_path = paths::under(&root, DEVFS_PARAM);
    let caps_model = CapsModel {
        caps_major: live.as_ref().and_then(|l| l.major(CAPS_MAJOR_NAME)),
        devfs_param: fsread::read(&param_path, 64)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).trim().to_string()),
        param_path,
    };
    let discovery = host.as_ref().and_then(|h| h.as_ref().ok());
    let (extra_caps, caps_unreadable) = match (&nvml, live.as_ref(), discovery) {
        (Ok(snapshot), Some(live), Some(found)) => {
            extra_caps(snapshot, live, found, &caps_model, &root, &dev_root)
        }
        _ => (Vec::new(), Vec::new()),
    };
    let mode_mismatches = discovery
        .map(|found| mode_mismatches(found, &root, &dev_root))
        .unwrap_or_default();
    let (spec_files, unlisted_dirs) = spec_files(&settings, discovery, schema);
    Facts {
        module,
        nvml,
        host,
        char_devices,
        caps_model,
        extra_caps,
        caps_unreadable,
        mode_mismatches,
        spec_files,
        unlisted_dirs,
        units: host::scan_units(&root),
        processes: host::scan_processes(&root, &dev_root),
        runtimes: host::scan_runtimes(&root),
        settings,
    }
}

fn read_module(root: &Path) -> Result<DriverVersion, String> {
    let path = paths::under(root, paths::VERSION);
    let bytes = fsread::read(&path, fsread::MAX_TABLE_BYTES).map_err(|e| e.to_string())?;
    parse_version(&bytes[..], &path).map_err(|e| e.to_string())
}

/// The capability nodes of instances `generate` does not plan: GPU
/// instances without any compute instance (their GI capability exists,
/// and its node should too).
fn extra_caps(
    snapshot: &Snapshot,
    live: &LiveDriver,
    found: &Discovery,
    model: &CapsModel,
    root: &Path,
    dev_root: &Path,
) -> (Vec<ExtraCap>, Vec<(u32, String)>) {
    let Some(major) = model.caps_major else {
        return (Vec::new(), Vec::new());
    };
    let planned: Vec<&str> = found
        .inventory
        .devices
        .iter()
        .flat_map(|d| d.nodes.iter().map(|n| n.path.as_str()))
        .collect();
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    for gpu in snapshot.gpus.iter().filter(|g| g.mig_enabled()) {
        let caps = match live.gpu_capabilities(gpu.minor) {
            Ok(caps) => caps,
            Err(e) => {
                unreadable.push((gpu.index, e.to_string()));
                continue;
            }
        };
        for (key, cap) in caps {
            let path = paths::cap_node_path(cap.minor);
            if planned.contains(&path.as_str()) {
                continue;
            }
            let node = DeviceNode::new(path, major, cap.minor, cap.mode, key.role());
            let issue = nodes::check_node(root, dev_root, &node);
            out.push(ExtraCap {
                gpu_index: gpu.index,
                key,
                node,
                issue,
            });
        }
    }
    (out, unreadable)
}

/// Nodes with the right number but another mode than the driver's.
fn mode_mismatches(found: &Discovery, root: &Path, dev_root: &Path) -> Vec<ModeMismatch> {
    let inventory = &found.inventory;
    let all = inventory
        .control_nodes
        .iter()
        .chain(inventory.devices.iter().flat_map(|d| d.nodes.iter()))
        .chain(inventory.mig_management.iter().flat_map(|(_, n)| n.iter()));
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for node in all {
        if !seen.insert(node.path.clone()) {
            continue;
        }
        let host_path = nodes::host_path(root, dev_root, node);
        if let HostEntry::Char {
            major, minor, mode, ..
        } = nodes::examine(&host_path)
        {
            if (major, minor) == (node.major, node.minor) && mode & 0o777 != node.mode & 0o777 {
                out.push(ModeMismatch {
                    node: node.clone(),
                    host_path,
                    mode,
                });
            }
        }
    }
    out
}

/// The naming strategies a spec's device names show.
fn strategies_of(spec: &Spec) -> Vec<NameStrategy> {
    let mut found = Vec::new();
    for device in &spec.devices {
        let name = device.name.as_str();
        let strategy = if name.starts_with("GPU-") || name.starts_with("MIG-") {
            NameStrategy::Uuid
        } else if name.starts_with("gpu") || name.starts_with("mig") {
            NameStrategy::TypeIndex
        } else {
            NameStrategy::Index
        };
        if !found.contains(&strategy) {
            found.push(strategy);
        }
    }
    if found.is_empty() {
        found = NameStrategy::DEFAULT.to_vec();
    }
    found
}

fn spec_files(
    settings: &Settings,
    found: Option<&Discovery>,
    schema: &SchemaValidator,
) -> (Vec<SpecFile>, Vec<(PathBuf, String)>) {
    let mut files = Vec::new();
    let mut unlisted = Vec::new();
    for (priority, dir) in settings.spec_dirs.iter().enumerate() {
        let paths = match folders::spec_files(dir) {
            Ok(paths) => paths,
            Err(e) => {
                unlisted.push((dir.clone(), e.to_string()));
                continue;
            }
        };
        for path in paths {
            let format = Format::from_path(&path);
            let bytes = fsread::read(&path, fsread::MAX_SPEC_BYTES).map_err(|e| e.reason());
            let checked = bytes
                .as_ref()
                .map(|b| cdi::check_document(b, format, schema))
                .map_err(Clone::clone);
            let ours = settings.is_ours(&path);
            let currency = match (&bytes, ours) {
                (Ok(bytes), true) => Some(currency(
                    settings,
                    found,
                    bytes,
                    checked.as_ref().ok().and_then(|c| c.spec.as_ref()),
                    format,
                    schema,
                )),
                _ => None,
            };
            files.push(SpecFile {
                mode: std::fs::metadata(&path)
                    .ok()
                    .map(|m| m.permissions().mode() & 0o7777),
                path,
                priority,
                ours,
                checked,
                currency,
            });
        }
    }
    (files, unlisted)
}

/// `generate --check` for one file: the spec the hardware gives now, with
/// the file's own naming strategies and format, against its bytes.
fn currency(
    settings: &Settings,
    found: Option<&Discovery>,
    bytes: &[u8],
    old: Option<&Spec>,
    format: Format,
    schema: &SchemaValidator,
) -> Result<Currency, String> {
    let found = found.ok_or_else(|| {
        "what generate would write cannot be computed until the problems above are fixed"
            .to_string()
    })?;
    let render = RenderOptions {
        vendor: settings.vendor.clone(),
        class: settings.class.clone(),
        strategies: old
            .map(strategies_of)
            .unwrap_or_else(|| NameStrategy::DEFAULT.to_vec()),
        dev_root: settings.host.host_path_root().map_err(|e| error_line(&e))?,
        driver: driver_edits_like(old, settings, found)?,
        verify_hook: old.and_then(verify_hook_like),
    };
    let new = render_checked(found, &render, format, schema).map_err(|e| error_line(&e))?;
    if new.bytes == bytes {
        return Ok(Currency::Current);
    }
    let Some(old) = old else {
        return Ok(Currency::Stale {
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
            spec_level: vec!["the file is not a valid CDI spec".to_string()],
        });
    };
    let d = diff::diff(old, &new.spec);
    Ok(Currency::Stale {
        added: d.added,
        removed: d.removed,
        changed: d.changed.into_iter().map(|c| c.name).collect(),
        spec_level: d.spec,
    })
}

/// The driver's files as `generate` would write them for a spec that has
/// them (its hooks name the hook binary), or none for a device-only spec.
fn driver_edits_like(
    old: Option<&Spec>,
    settings: &Settings,
    found: &Discovery,
) -> Result<Option<mig_cdi_core::cdi::render::DriverEdits>, String> {
    let Some(hook_path) = old
        .and_then(|spec| spec.container_edits.hooks.first())
        .map(|hook| hook.path.clone())
    else {
        return Ok(None);
    };
    let files = mig_cdi_core::driver_files::discover(
        &found.driver_version,
        &mig_cdi_core::driver_files::Options {
            driver_root: settings.host.root.clone(),
            graphics: false,
            video: false,
        },
    )
    .map_err(|e| e.to_string())?;
    Ok(Some(mig_cdi_core::cdi::render::DriverEdits {
        files,
        driver_root: None,
        hook_path,
    }))
}

/// The verify and release hooks as `generate --hook-path` wrote them into
/// `old` (a MIG device's `createRuntime` `mig-cdi-hook verify`, with its
/// `--state-dir`), or none.
fn verify_hook_like(old: &Spec) -> Option<VerifyHook> {
    let hook = old
        .devices
        .iter()
        .flat_map(|d| &d.container_edits.hooks)
        .find(|h| h.hook_name == "createRuntime" && h.args.get(1).is_some_and(|a| a == "verify"))?;
    let state_dir = hook
        .args
        .iter()
        .position(|a| a == "--state-dir")
        .and_then(|i| hook.args.get(i + 1))
        .cloned();
    Some(VerifyHook {
        path: hook.path.clone(),
        state_dir,
        extra: Vec::new(),
    })
}

/// The role of a node, in words, for messages.
pub fn role_text(role: NodeRole) -> &'static str {
    match role {
        NodeRole::Control => "control node",
        NodeRole::Gpu => "GPU node",
        NodeRole::GiAccess => "GPU-instance capability",
        NodeRole::CiAccess => "compute-instance capability",
        NodeRole::MigConfig => "MIG config capability",
        NodeRole::MigMonitor => "MIG monitor capability",
    }
}
