//! The device nodes each GPU and MIG device needs, and their check
//! against the host's `/dev`.
//!
//! [`plan`] joins what NVML said (a [`Snapshot`]) with the driver's tables
//! ([`DriverTables`]) into an [`Inventory`]: for every GPU with MIG disabled
//! and every MIG device, the exact nodes (path, major:minor, mode) a
//! container needs, plus the control nodes every GPU container needs.
//! Capability nodes are keyed by the GPU's *minor number*, never its NVML
//! index. [`check_host`] then compares each node with the host's `/dev`, so
//! a node that is missing or carries another device number is found before
//! anything is written.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::driver::{DriverError, DriverTables};
use crate::paths::{self, CapKey, CONTROL_NODES};
use crate::snapshot::{Gpu, MigDevice, Snapshot};

pub use crate::paths::{
    cap_node_path, gpu_node_path, CAPS_MAJOR_NAME, MODESET_MINOR, MODESET_PATH,
    NVIDIACTL_MAJOR_NAME, NVIDIACTL_MINOR, NVIDIA_MAJOR_NAME, UVM_MAJOR_NAME, UVM_MODE,
};

/// What a node is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeRole {
    /// `/dev/nvidiactl`, `/dev/nvidia-uvm`, ...: every GPU container.
    Control,
    /// `/dev/nvidiaN`: the physical GPU.
    Gpu,
    /// GPU-instance access capability.
    GiAccess,
    /// Compute-instance access capability.
    CiAccess,
    /// MIG management of the whole GPU (`mig/config`): privileged only.
    MigConfig,
    /// MIG monitoring of the whole GPU (`mig/monitor`): privileged only.
    MigMonitor,
}

/// One character device node as a container sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceNode {
    /// Path inside the container, e.g. `/dev/nvidia-caps/nvidia-cap12`.
    pub path: String,
    pub major: u32,
    pub minor: u32,
    /// Permission bits the driver gives the node, e.g. `0o444`.
    pub mode: u32,
    pub role: NodeRole,
}

impl DeviceNode {
    pub fn new(path: String, major: u32, minor: u32, mode: u32, role: NodeRole) -> Self {
        Self {
            path,
            major,
            minor,
            mode,
            role,
        }
    }
}

/// Which device an [`InventoryDevice`] is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum DeviceKind {
    /// A whole GPU with MIG disabled.
    Gpu,
    /// A MIG device.
    #[serde(rename_all = "camelCase")]
    Mig {
        /// Index under the parent GPU.
        mig_index: u32,
        gi: u32,
        ci: u32,
        profile: String,
    },
}

/// A device a container can ask for, with every node it needs besides the
/// control nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryDevice {
    #[serde(flatten)]
    pub kind: DeviceKind,
    /// NVML index of the (parent) GPU.
    pub gpu_index: u32,
    /// Minor number of the (parent) GPU.
    pub gpu_minor: u32,
    /// `GPU-...` or `MIG-...`.
    pub uuid: String,
    /// UUID of the parent GPU.
    pub gpu_uuid: String,
    /// Sorted: the GPU node first, then GI and CI capabilities.
    pub nodes: Vec<DeviceNode>,
}

impl InventoryDevice {
    /// `0` for a GPU, `0:1` for MIG device 1 of GPU 0 (NVIDIA's index names).
    pub fn index_name(&self) -> String {
        match &self.kind {
            DeviceKind::Gpu => self.gpu_index.to_string(),
            DeviceKind::Mig { mig_index, .. } => format!("{}:{}", self.gpu_index, mig_index),
        }
    }

    pub fn is_mig(&self) -> bool {
        matches!(self.kind, DeviceKind::Mig { .. })
    }
}

/// Every device of the node and the nodes each needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// Nodes every GPU container needs, sorted by path.
    pub control_nodes: Vec<DeviceNode>,
    /// GPUs with MIG disabled and MIG devices, by GPU index then MIG index.
    pub devices: Vec<InventoryDevice>,
    /// `mig/config` and `mig/monitor` capabilities per GPU minor, for
    /// privileged containers; empty when the driver has none.
    pub mig_management: Vec<(u32, Vec<DeviceNode>)>,
}

/// Why the node list could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(
        "no \"{name}\" character device in {}: {hint}",
        path.display()
    )]
    MissingMajor {
        name: &'static str,
        path: PathBuf,
        hint: &'static str,
    },
    #[error(
        "GPU {index} ({uuid}) is MIG device {gi}/{ci} of GPU minor {minor}, but {} has no \
         \"{key}\" entry; the driver's table does not cover this GPU — check the driver version",
        path.display()
    )]
    NoCapMinor {
        index: u32,
        uuid: String,
        minor: u32,
        gi: u32,
        ci: u32,
        key: String,
        path: PathBuf,
    },
    #[error(
        "capability {} gives minor {file_minor}, but {} says {key} is minor {table_minor}; \
         the driver tables disagree — reload the nvidia module or report a driver bug",
        file.display(),
        table.display()
    )]
    CapMinorMismatch {
        key: String,
        file: PathBuf,
        file_minor: u32,
        table: PathBuf,
        table_minor: u32,
    },
    #[error(
        "NVML says GPU {index} ({bus_id}) has minor number {nvml_minor}, but {} says {proc_minor}; \
         NVML and the kernel module disagree — make sure libnvidia-ml matches the loaded driver",
        path.display()
    )]
    MinorMismatch {
        index: u32,
        bus_id: String,
        nvml_minor: u32,
        proc_minor: u32,
        path: PathBuf,
    },
}

fn devices_path(root: &Path) -> PathBuf {
    paths::under(root, paths::PROC_DEVICES)
}

fn mig_minors_path(root: &Path) -> PathBuf {
    paths::under(root, paths::MIG_MINORS)
}

fn major(tables: &DriverTables, name: &'static str, hint: &'static str) -> Result<u32, NodeError> {
    tables
        .char_devices
        .major(name)
        .ok_or_else(|| NodeError::MissingMajor {
            name,
            path: devices_path(&tables.root),
            hint,
        })
}

/// `/proc/driver/nvidia/gpus/<bus>` uses a 4-digit domain, NVML an 8-digit
/// one; compare them in one canonical form.
pub fn canonical_bus_id(bus_id: &str) -> String {
    let lower = bus_id.trim().to_ascii_lowercase();
    match lower.split_once(':') {
        Some((domain, rest)) if domain.len() > 4 && domain.chars().all(|c| c == '0') => {
            format!("0000:{rest}")
        }
        Some((domain, rest)) if domain.len() > 4 => {
            format!("{}:{rest}", &domain[domain.len() - 4..])
        }
        _ => lower,
    }
}

/// Join NVML's view and the driver's tables into the node list.
pub fn plan(snapshot: &Snapshot, tables: &DriverTables) -> Result<Inventory, NodeError> {
    let nvidia = major(
        tables,
        NVIDIA_MAJOR_NAME,
        "the NVIDIA kernel module is not loaded (or --root points elsewhere)",
    )?;
    major(
        tables,
        UVM_MAJOR_NAME,
        "the nvidia-uvm module is not loaded; CUDA needs it — run `nvidia-modprobe -u -c=0` \
         (or `modprobe nvidia-uvm`) and try again",
    )?;
    let mode = tables.device_file_mode;

    // Every major a control node needs exists (checked just above).
    let control_nodes: Vec<DeviceNode> = CONTROL_NODES
        .iter()
        .filter_map(|node| {
            let major = node.major(|name| tables.char_devices.major(name))?;
            Some(DeviceNode::new(
                node.path.into(),
                major,
                node.minor,
                node.mode(mode),
                NodeRole::Control,
            ))
        })
        .collect();

    check_minors(snapshot, tables)?;

    let any_mig = snapshot.gpus.iter().any(|g| g.mig_enabled());
    let caps = if any_mig {
        Some(major(
            tables,
            CAPS_MAJOR_NAME,
            "the driver exposes MIG capabilities only under /proc (nv_cap_enable_devfs=0); \
             containers need the /dev/nvidia-caps model: set `options nvidia \
             nv_cap_enable_devfs=1` in /etc/modprobe.d/, reload the nvidia module, then \
             run `nvidia-modprobe -f /proc/driver/nvidia/capabilities/mig/config` (or \
             nvidia-smi) to create the nodes",
        )?)
    } else {
        tables.char_devices.major(CAPS_MAJOR_NAME)
    };

    let mut devices = Vec::new();
    let mut mig_management = Vec::new();
    for gpu in &snapshot.gpus {
        let gpu_node = DeviceNode::new(
            gpu_node_path(gpu.minor),
            nvidia,
            gpu.minor,
            mode,
            NodeRole::Gpu,
        );
        if gpu.mig_enabled() {
            // Checked above: some GPU has MIG on, so the major exists.
            let Some(caps) = caps else { continue };
            for mig in &gpu.mig_devices {
                devices.push(mig_device(gpu, mig, &gpu_node, caps, tables)?);
            }
            let management = management_nodes(tables, caps)?;
            if !management.is_empty() {
                mig_management.push((gpu.minor, management));
            }
        } else {
            devices.push(InventoryDevice {
                kind: DeviceKind::Gpu,
                gpu_index: gpu.index,
                gpu_minor: gpu.minor,
                uuid: gpu.uuid.clone(),
                gpu_uuid: gpu.uuid.clone(),
                nodes: vec![gpu_node],
            });
        }
    }
    devices.sort_by(|a, b| {
        let key = |d: &InventoryDevice| match d.kind {
            DeviceKind::Gpu => (d.gpu_index, 0u64),
            DeviceKind::Mig { mig_index, .. } => (d.gpu_index, 1 + u64::from(mig_index)),
        };
        key(a).cmp(&key(b))
    });
    Ok(Inventory {
        control_nodes,
        devices,
        mig_management,
    })
}

/// NVML's minor number for each GPU must be the one the kernel module
/// reports for the same PCI device: the capability tables are keyed by it.
fn check_minors(snapshot: &Snapshot, tables: &DriverTables) -> Result<(), NodeError> {
    for gpu in &snapshot.gpus {
        let bus = canonical_bus_id(&gpu.pci_bus_id);
        let Some(info) = tables
            .gpus
            .iter()
            .find(|i| canonical_bus_id(&i.bus_location) == bus)
        else {
            continue;
        };
        if info.device_minor != gpu.minor {
            return Err(NodeError::MinorMismatch {
                index: gpu.index,
                bus_id: gpu.pci_bus_id.clone(),
                nvml_minor: gpu.minor,
                proc_minor: info.device_minor,
                path: tables
                    .root
                    .join("proc/driver/nvidia/gpus")
                    .join(&info.bus_location)
                    .join("information"),
            });
        }
    }
    Ok(())
}

fn mig_device(
    gpu: &Gpu,
    mig: &MigDevice,
    gpu_node: &DeviceNode,
    caps: u32,
    tables: &DriverTables,
) -> Result<InventoryDevice, NodeError> {
    let minors = &tables.mig_minors;
    let missing = |key: String| NodeError::NoCapMinor {
        index: gpu.index,
        uuid: mig.uuid.clone(),
        minor: gpu.minor,
        gi: mig.gi,
        ci: mig.ci,
        key,
        path: mig_minors_path(&tables.root),
    };
    let gi_key = CapKey::Gi {
        gpu: gpu.minor,
        gi: mig.gi,
    };
    let ci_key = CapKey::Ci {
        gpu: gpu.minor,
        gi: mig.gi,
        ci: mig.ci,
    };
    let gi_minor = *minors
        .gi_access
        .get(&(gpu.minor, mig.gi))
        .ok_or_else(|| missing(gi_key.mig_minors_name()))?;
    let ci_minor = *minors
        .ci_access
        .get(&(gpu.minor, mig.gi, mig.ci))
        .ok_or_else(|| missing(ci_key.mig_minors_name()))?;
    let gi_mode = cap_mode(tables, gi_key, gi_minor)?;
    let ci_mode = cap_mode(tables, ci_key, ci_minor)?;
    Ok(InventoryDevice {
        kind: DeviceKind::Mig {
            mig_index: mig.index,
            gi: mig.gi,
            ci: mig.ci,
            profile: mig.profile.clone(),
        },
        gpu_index: gpu.index,
        gpu_minor: gpu.minor,
        uuid: mig.uuid.clone(),
        gpu_uuid: gpu.uuid.clone(),
        nodes: vec![
            gpu_node.clone(),
            DeviceNode::new(
                cap_node_path(gi_minor),
                caps,
                gi_minor,
                gi_mode,
                NodeRole::GiAccess,
            ),
            DeviceNode::new(
                cap_node_path(ci_minor),
                caps,
                ci_minor,
                ci_mode,
                NodeRole::CiAccess,
            ),
        ],
    })
}

/// The mode of a capability, from its access file; its minor must agree
/// with mig-minors.
fn cap_mode(tables: &DriverTables, key: CapKey, minor: u32) -> Result<u32, NodeError> {
    let cap = tables.capability(&key.file())?;
    if cap.minor != minor {
        return Err(NodeError::CapMinorMismatch {
            key: key.mig_minors_name(),
            file: key.path(&tables.root),
            file_minor: cap.minor,
            table: mig_minors_path(&tables.root),
            table_minor: minor,
        });
    }
    Ok(cap.mode)
}

fn management_nodes(tables: &DriverTables, caps: u32) -> Result<Vec<DeviceNode>, NodeError> {
    let mut nodes = Vec::new();
    let entries = [
        (tables.mig_minors.config, CapKey::Config),
        (tables.mig_minors.monitor, CapKey::Monitor),
    ];
    for (minor, key) in entries {
        let Some(minor) = minor else { continue };
        let mode = cap_mode(tables, key, minor)?;
        nodes.push(DeviceNode::new(
            cap_node_path(minor),
            caps,
            minor,
            mode,
            key.role(),
        ));
    }
    Ok(nodes)
}

/// What is wrong with one host node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "problem")]
pub enum HostProblem {
    /// Nothing at the path.
    Missing,
    /// Something that is not a character device.
    NotCharDevice,
    /// A character device with another number.
    #[serde(rename_all = "camelCase")]
    WrongNumber { major: u32, minor: u32 },
    /// The path could not be examined.
    Unreadable { error: String },
}

/// A node the host does not have as expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostNodeIssue {
    pub node: DeviceNode,
    /// The path examined (under the root).
    pub host_path: PathBuf,
    #[serde(flatten)]
    pub problem: HostProblem,
}

impl std::fmt::Display for HostNodeIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let want = format!("char {}:{}", self.node.major, self.node.minor);
        let path = self.host_path.display();
        match &self.problem {
            HostProblem::Missing => write!(f, "{path}: missing (expected {want})"),
            HostProblem::NotCharDevice => {
                write!(f, "{path}: not a character device (expected {want})")
            }
            HostProblem::WrongNumber { major, minor } => {
                write!(f, "{path}: is char {major}:{minor}, expected {want}")
            }
            HostProblem::Unreadable { error } => write!(f, "{path}: {error}"),
        }
    }
}

/// Linux `dev_t` encoding (glibc's `gnu_dev_major`/`gnu_dev_minor`).
pub fn dev_major(rdev: u64) -> u32 {
    (((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff)) as u32
}

/// See [`dev_major`].
pub fn dev_minor(rdev: u64) -> u32 {
    (((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff)) as u32
}

/// Linux `makedev`.
pub fn make_dev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (u64::from(major), u64::from(minor));
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}

/// Where `node` lives on the host: `<root>/<dev_root>/<node.path>`.
pub fn host_path(root: &Path, dev_root: &Path, node: &DeviceNode) -> PathBuf {
    let rel = |p: &Path| p.strip_prefix("/").unwrap_or(p).to_path_buf();
    root.join(rel(dev_root)).join(rel(Path::new(&node.path)))
}

/// What the host has at a path (symlinks not followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEntry {
    Missing,
    /// A character device, with its permission bits and owner.
    Char {
        major: u32,
        minor: u32,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Anything else: "a directory", "a symbolic link", ...
    Other(&'static str),
    /// The path could not be examined (the error, as text).
    Unreadable(String),
}

/// Look at `path` on the host without following a symlink.
pub fn examine(path: &Path) -> HostEntry {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HostEntry::Missing,
        Err(e) => HostEntry::Unreadable(e.to_string()),
        Ok(meta) if meta.file_type().is_char_device() => HostEntry::Char {
            major: dev_major(meta.rdev()),
            minor: dev_minor(meta.rdev()),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        },
        Ok(meta) => HostEntry::Other(crate::fsread::describe(meta.file_type())),
    }
}

/// Examine one node on the host; `None` when it is as expected.
pub fn check_node(root: &Path, dev_root: &Path, node: &DeviceNode) -> Option<HostNodeIssue> {
    let host_path = host_path(root, dev_root, node);
    let problem = match examine(&host_path) {
        HostEntry::Missing => HostProblem::Missing,
        HostEntry::Unreadable(error) => HostProblem::Unreadable { error },
        HostEntry::Other(_) => HostProblem::NotCharDevice,
        HostEntry::Char { major, minor, .. } if (major, minor) == (node.major, node.minor) => {
            return None
        }
        HostEntry::Char { major, minor, .. } => HostProblem::WrongNumber { major, minor },
    };
    Some(HostNodeIssue {
        node: node.clone(),
        host_path,
        problem,
    })
}

/// Check every node of the inventory on the host. The optional
/// `/dev/nvidia-modeset` is dropped from the control nodes when the host
/// does not have it; every other problem is returned, in node order.
pub fn check_host(inventory: &mut Inventory, root: &Path, dev_root: &Path) -> Vec<HostNodeIssue> {
    let mut issues = Vec::new();
    inventory
        .control_nodes
        .retain(|node| match check_node(root, dev_root, node) {
            Some(issue) if node.path == MODESET_PATH && issue.problem == HostProblem::Missing => {
                false
            }
            Some(issue) => {
                issues.push(issue);
                true
            }
            None => true,
        });
    let mut seen = std::collections::BTreeSet::new();
    let device_nodes = inventory.devices.iter().flat_map(|d| d.nodes.iter());
    let management = inventory.mig_management.iter().flat_map(|(_, n)| n.iter());
    for node in device_nodes.chain(management) {
        if seen.insert(node.path.clone()) {
            issues.extend(check_node(root, dev_root, node));
        }
    }
    issues
}
