//! Is the spec still true? Every node of the resolved device is checked
//! against the live driver tables and the host's `/dev` before anything is
//! created.
//!
//! The spec was written by the generator at some point; since then the
//! driver may have been reloaded (majors move), MIG reconfigured (index
//! names shift, instances vanish) or the spec edited by hand. Each node must
//! be what the driver says its path means — `/dev/nvidiaN` is `nvidia:N`,
//! `/dev/nvidia-caps/nvidia-capM` is `nvidia-caps:M` and M is the GPU- or
//! compute-instance access capability of *this* device's GPU, with a
//! capability file that exists now and agrees — and the host node must be a
//! character device with the same number. Anything else is a stale spec.
//!
//! Reads go through [`Live`], so the checks are pure functions of what it
//! reports and are tested on an in-memory driver.
//!
//! The live view reads only what one device needs: `/proc/devices`, the
//! driver's `params` (node mode), and the capability files of the device's
//! own GPU (`capabilities/gpu<N>/mig/gi*/access`, `gi*/ci*/access`: the
//! instances that exist now, with their minors and modes). It does not read
//! `/proc/driver/nvidia-caps/mig-minors`: on a real driver that static
//! 4322-line table is generated on every read and costs ~5 ms, five times
//! the hook's whole budget, while the capability files say the same for the
//! instances that exist.

use std::fs::File;
use std::io::{BufReader, ErrorKind};
use std::path::{Component, Path, PathBuf};

use mig_cdi_core::cgroup::Access;
use mig_cdi_core::driver::{
    parse_capability, parse_params, parse_proc_devices, Capability, CharDevices,
};
use mig_cdi_core::nodes::{
    cap_node_path, dev_major, dev_minor, NodeRole, CAPS_MAJOR_NAME, MODESET_MINOR,
    NVIDIACTL_MAJOR_NAME, NVIDIACTL_MINOR, NVIDIA_MAJOR_NAME, UVM_MAJOR_NAME, UVM_MODE,
};

use crate::error::HookError;
use crate::spec::{Resolved, SpecNode};

const REGENERATE: &str = "the spec is stale: regenerate it with `mig-cdi-gen generate` \
     (and check the device with `mig-cdi-gen list`)";

/// What the host has at a path (not following symlinks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostNode {
    Missing,
    Char { major: u32, minor: u32, mode: u32 },
    Other(&'static str),
    Unreadable(String),
}

/// The live driver and host, as the checks see them.
pub trait Live {
    fn major(&self, name: &str) -> Option<u32>;
    /// `DeviceFileMode` of the nvidia nodes.
    fn device_file_mode(&self) -> u32;
    /// Every MIG capability of GPU minor `gpu` that exists now.
    fn gpu_capabilities(&self, gpu: u32) -> Result<Vec<(CapKey, Capability)>, HookError>;
    /// `mig/config` or `mig/monitor`; `None` when the driver has none.
    fn management(&self, key: CapKey) -> Result<Option<Capability>, HookError>;
    /// The host's node at `path` (absolute, under the host root).
    fn host_node(&self, path: &str) -> HostNode;
    /// How to name `path` on the host in messages.
    fn host_display(&self, path: &str) -> String;
}

/// The real driver under `--root`.
pub struct LiveDriver {
    pub root: PathBuf,
    char_devices: CharDevices,
    device_file_mode: u32,
}

const CAPABILITIES: &str = "proc/driver/nvidia/capabilities";

fn io_error(op: &'static str, path: PathBuf) -> impl FnOnce(std::io::Error) -> HookError {
    move |source| HookError::Io { op, path, source }
}

impl LiveDriver {
    /// Read `/proc/devices` and the driver's params under `root`.
    pub fn load(root: &Path) -> Result<Self, HookError> {
        let path = root.join("proc/devices");
        let file = File::open(&path).map_err(io_error("read", path.clone()))?;
        let char_devices = parse_proc_devices(BufReader::new(file), &path)?;
        if let Some((name, majors)) = char_devices
            .repeated
            .iter()
            .find(|(name, _)| name.starts_with("nvidia"))
        {
            return Err(HookError::Stale(format!(
                "{} lists \"{name}\" under several majors ({majors:?}): two NVIDIA kernel \
                 modules seem loaded at once — reload the driver (or reboot)",
                path.display()
            )));
        }
        if char_devices.major(NVIDIA_MAJOR_NAME).is_none() {
            return Err(HookError::Stale(format!(
                "{} has no \"nvidia\" major: the NVIDIA kernel module is not loaded (or --root \
                 points elsewhere)",
                path.display()
            )));
        }
        let path = root.join("proc/driver/nvidia/params");
        let device_file_mode = match File::open(&path) {
            Ok(file) => parse_params(BufReader::new(file), &path)?.device_file_mode,
            Err(err) if err.kind() == ErrorKind::NotFound => 0o666,
            Err(source) => {
                return Err(HookError::Io {
                    op: "read",
                    path,
                    source,
                })
            }
        };
        Ok(Self {
            root: root.to_path_buf(),
            char_devices,
            device_file_mode,
        })
    }

    fn under_root(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// A capability file; `None` when it does not exist.
    fn read_capability(&self, rel: &str) -> Result<Option<Capability>, HookError> {
        let path = self.root.join(CAPABILITIES).join(rel);
        match File::open(&path) {
            Ok(file) => Ok(Some(parse_capability(BufReader::new(file), &path)?)),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
            Err(source) => Err(HookError::Io {
                op: "read",
                path,
                source,
            }),
        }
    }

    /// `(n, name)` for entries `<prefix><n>` of a folder (none if absent).
    fn numbered(&self, dir: &Path, prefix: &str) -> Result<Vec<u32>, HookError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(HookError::Io {
                    op: "list",
                    path: dir.to_path_buf(),
                    source,
                })
            }
        };
        let mut out: Vec<u32> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix(prefix))
                    .and_then(number)
            })
            .collect();
        out.sort_unstable();
        Ok(out)
    }
}

impl Live for LiveDriver {
    fn major(&self, name: &str) -> Option<u32> {
        self.char_devices.major(name)
    }
    fn device_file_mode(&self) -> u32 {
        self.device_file_mode
    }
    fn gpu_capabilities(&self, gpu: u32) -> Result<Vec<(CapKey, Capability)>, HookError> {
        let mig = self.root.join(CAPABILITIES).join(format!("gpu{gpu}/mig"));
        let mut out = Vec::new();
        for gi in self.numbered(&mig, "gi")? {
            let key = CapKey::Gi { gpu, gi };
            if let Some(cap) = self.read_capability(&key.rel())? {
                out.push((key, cap));
            }
            for ci in self.numbered(&mig.join(format!("gi{gi}")), "ci")? {
                let key = CapKey::Ci { gpu, gi, ci };
                if let Some(cap) = self.read_capability(&key.rel())? {
                    out.push((key, cap));
                }
            }
        }
        Ok(out)
    }
    fn management(&self, key: CapKey) -> Result<Option<Capability>, HookError> {
        self.read_capability(&key.rel())
    }
    fn host_node(&self, path: &str) -> HostNode {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        match std::fs::symlink_metadata(self.under_root(path)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HostNode::Missing,
            Err(e) => HostNode::Unreadable(e.to_string()),
            Ok(meta) => {
                let kind = meta.file_type();
                if kind.is_char_device() {
                    HostNode::Char {
                        major: dev_major(meta.rdev()),
                        minor: dev_minor(meta.rdev()),
                        mode: meta.mode() & 0o7777,
                    }
                } else if kind.is_symlink() {
                    HostNode::Other("a symbolic link")
                } else if kind.is_dir() {
                    HostNode::Other("a directory")
                } else if kind.is_block_device() {
                    HostNode::Other("a block device")
                } else {
                    HostNode::Other("not a device")
                }
            }
        }
    }
    fn host_display(&self, path: &str) -> String {
        self.under_root(path).display().to_string()
    }
}

/// A node the hook will give the container, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedNode {
    /// Path inside the container, `/dev/...`.
    pub path: String,
    pub major: u32,
    pub minor: u32,
    /// Permission bits, from the driver.
    pub mode: u32,
    /// `None` for a node the driver tables say nothing about.
    pub role: Option<NodeRole>,
    /// Device cgroup access the container needs.
    pub access: Access,
    /// For a capability node: which capability it is.
    pub cap: Option<CapKey>,
}

/// What a path means to the driver.
enum Meaning {
    Gpu(u32),
    Cap(u32),
    Fixed {
        major_name: &'static str,
        minor: u32,
        mode: Option<u32>,
    },
    Unknown,
}

fn meaning(path: &str) -> Meaning {
    if let Some(minor) = path
        .strip_prefix("/dev/nvidia-caps/nvidia-cap")
        .and_then(number)
    {
        return Meaning::Cap(minor);
    }
    match path {
        "/dev/nvidiactl" => Meaning::Fixed {
            major_name: NVIDIACTL_MAJOR_NAME,
            minor: NVIDIACTL_MINOR,
            mode: None,
        },
        "/dev/nvidia-modeset" => Meaning::Fixed {
            major_name: NVIDIA_MAJOR_NAME,
            minor: MODESET_MINOR,
            mode: None,
        },
        "/dev/nvidia-uvm" => Meaning::Fixed {
            major_name: UVM_MAJOR_NAME,
            minor: 0,
            mode: Some(UVM_MODE),
        },
        "/dev/nvidia-uvm-tools" => Meaning::Fixed {
            major_name: UVM_MAJOR_NAME,
            minor: 1,
            mode: Some(UVM_MODE),
        },
        _ => match path.strip_prefix("/dev/nvidia").and_then(number) {
            Some(minor) => Meaning::Gpu(minor),
            None => Meaning::Unknown,
        },
    }
}

/// A plain decimal without sign or leading zeros.
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Which MIG capability a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapKey {
    Config,
    Monitor,
    Gi { gpu: u32, gi: u32 },
    Ci { gpu: u32, gi: u32, ci: u32 },
}

impl CapKey {
    /// The capability file, relative to `proc/driver/nvidia/capabilities`.
    fn rel(self) -> String {
        match self {
            Self::Config => "mig/config".into(),
            Self::Monitor => "mig/monitor".into(),
            Self::Gi { gpu, gi } => format!("gpu{gpu}/mig/gi{gi}/access"),
            Self::Ci { gpu, gi, ci } => format!("gpu{gpu}/mig/gi{gi}/ci{ci}/access"),
        }
    }

    fn role(self) -> NodeRole {
        match self {
            Self::Config => NodeRole::MigConfig,
            Self::Monitor => NodeRole::MigMonitor,
            Self::Gi { .. } => NodeRole::GiAccess,
            Self::Ci { .. } => NodeRole::CiAccess,
        }
    }
}

/// A container path must be a plain absolute path under `/dev/`.
fn check_container_path(path: &str, device: &str) -> Result<(), HookError> {
    let p = Path::new(path);
    let plain = p.is_absolute()
        && p.starts_with("/dev")
        && p.components().count() >= 3
        && p.components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)))
        && !path.ends_with('/')
        && !path.contains("//");
    if plain {
        Ok(())
    } else {
        Err(HookError::Stale(format!(
            "spec device {device} has node path {path:?}, which is not a plain path under /dev; \
             mig-cdi-hook creates nodes only under /dev: {REGENERATE}"
        )))
    }
}

/// Check one node; `device` names the spec device in messages.
/// Check one node; `caps_now` are the capabilities that exist now for the
/// device's GPU (or the management one asked for).
fn check_node(
    node: &SpecNode,
    device: &str,
    live: &dyn Live,
    caps_now: &[(CapKey, Capability)],
) -> Result<CheckedNode, HookError> {
    check_container_path(&node.path, device)?;
    let host_path = node.host_path();
    let (host_major, host_minor, host_mode) = match live.host_node(host_path) {
        HostNode::Char { major, minor, mode } => (major, minor, mode),
        HostNode::Missing => {
            return Err(HookError::Stale(format!(
                "{} (node {} of {device}) does not exist on the host: the driver is not loaded \
                 or the instance is gone; {REGENERATE}",
                live.host_display(host_path),
                node.path
            )))
        }
        HostNode::Other(what) => {
            return Err(HookError::Stale(format!(
                "{} (node {} of {device}) is {what}, not a character device; {REGENERATE}",
                live.host_display(host_path),
                node.path
            )))
        }
        HostNode::Unreadable(err) => {
            return Err(HookError::Stale(format!(
                "cannot examine {} (node {} of {device}): {err}",
                live.host_display(host_path),
                node.path
            )))
        }
    };
    let major = node.major.unwrap_or(host_major);
    let minor = node.minor.unwrap_or(host_minor);
    if (major, minor) != (host_major, host_minor) {
        return Err(HookError::Stale(format!(
            "spec says {} of {device} is char {major}:{minor}, but the host's {} is \
             {host_major}:{host_minor}; {REGENERATE}",
            node.path,
            live.host_display(host_path)
        )));
    }
    let want_major = |name: &'static str| -> Result<u32, HookError> {
        let found = live.major(name).or_else(|| {
            (name == NVIDIACTL_MAJOR_NAME)
                .then(|| live.major(NVIDIA_MAJOR_NAME))
                .flatten()
        });
        found.ok_or_else(|| {
            HookError::Stale(format!(
                "no \"{name}\" major in /proc/devices, but {device} needs {}: is the driver \
                 loaded? {REGENERATE}",
                node.path
            ))
        })
    };
    let mismatch = |what: String| {
        HookError::Stale(format!(
            "{} of {device} is char {major}:{minor} in the spec, but the driver says {what}; \
             {REGENERATE}",
            node.path
        ))
    };
    let checked = |mode: u32, role: Option<NodeRole>, cap: Option<CapKey>| CheckedNode {
        path: node.path.clone(),
        major,
        minor,
        mode,
        role,
        access: node.access,
        cap,
    };
    match meaning(&node.path) {
        Meaning::Gpu(gpu) => {
            let nvidia = want_major(NVIDIA_MAJOR_NAME)?;
            if (major, minor) != (nvidia, gpu) {
                return Err(mismatch(format!("{nvidia}:{gpu}")));
            }
            Ok(checked(live.device_file_mode(), Some(NodeRole::Gpu), None))
        }
        Meaning::Fixed {
            major_name,
            minor: want_minor,
            mode,
        } => {
            let want = want_major(major_name)?;
            if (major, minor) != (want, want_minor) {
                return Err(mismatch(format!("{want}:{want_minor}")));
            }
            Ok(checked(
                mode.unwrap_or(live.device_file_mode()),
                Some(NodeRole::Control),
                None,
            ))
        }
        Meaning::Cap(cap_minor) => {
            let caps = want_major(CAPS_MAJOR_NAME)?;
            if (major, minor) != (caps, cap_minor) {
                return Err(mismatch(format!("{caps}:{cap_minor}")));
            }
            let Some((key, capability)) = caps_now.iter().find(|(_, c)| c.minor == cap_minor)
            else {
                let now = caps_now
                    .iter()
                    .map(|(k, c)| format!("{} = {}", k.rel(), c.minor))
                    .collect::<Vec<_>>();
                return Err(mismatch(format!(
                    "no MIG capability of this GPU has minor {cap_minor} now ({})",
                    if now.is_empty() {
                        "it has no MIG instances".to_string()
                    } else {
                        format!("it has {}", now.join(", "))
                    }
                )));
            };
            Ok(checked(capability.mode, Some(key.role()), Some(*key)))
        }
        Meaning::Unknown => Ok(checked(host_mode, None, None)),
    }
}

/// Check every node of the resolved device and its spec's control nodes.
/// A MIG device must be exactly one GPU node plus the GPU-instance and
/// compute-instance capabilities of one instance of that GPU.
pub fn check_device(resolved: &Resolved, live: &dyn Live) -> Result<Vec<CheckedNode>, HookError> {
    let device = format!("{}={}", resolved.device.kind, resolved.device.name);
    let bad = |why: String| HookError::Stale(format!("spec device {device} {why}; {REGENERATE}"));
    let nodes = &resolved.device.nodes;
    if nodes.is_empty() {
        return Err(bad("has no device nodes".into()));
    }
    let gpus: Vec<u32> = nodes
        .iter()
        .filter_map(|n| match meaning(&n.path) {
            Meaning::Gpu(minor) => Some(minor),
            _ => None,
        })
        .collect();
    let has_caps = nodes
        .iter()
        .any(|n| matches!(meaning(&n.path), Meaning::Cap(_)));
    let caps_now = match (&gpus[..], has_caps) {
        ([gpu], true) => live.gpu_capabilities(*gpu)?,
        ([_], false) => Vec::new(),
        _ => return Err(bad("must name exactly one GPU node (/dev/nvidiaN)".into())),
    };
    let mut out: Vec<CheckedNode> = Vec::new();
    let mut device_nodes = Vec::new();
    for node in nodes {
        let checked = check_node(node, &device, live, &caps_now)?;
        device_nodes.push(checked.clone());
        push_unique(&mut out, checked, &device)?;
    }
    for node in &resolved.device.spec_nodes {
        push_unique(
            &mut out,
            check_node(node, &device, live, &caps_now)?,
            &device,
        )?;
    }
    check_structure(&device_nodes, &device)?;
    Ok(out)
}

fn push_unique(
    out: &mut Vec<CheckedNode>,
    node: CheckedNode,
    device: &str,
) -> Result<(), HookError> {
    match out.iter().find(|n| n.path == node.path) {
        Some(same) if (same.major, same.minor) == (node.major, node.minor) => Ok(()),
        Some(other) => Err(HookError::Stale(format!(
            "spec gives {} of {device} twice, as {}:{} and {}:{}; {REGENERATE}",
            node.path, other.major, other.minor, node.major, node.minor
        ))),
        None => {
            out.push(node);
            Ok(())
        }
    }
}

fn check_structure(nodes: &[CheckedNode], device: &str) -> Result<(), HookError> {
    let bad = |why: String| {
        Err(HookError::Stale(format!(
            "spec device {device} {why}; {REGENERATE}"
        )))
    };
    let Some(gpu) = nodes
        .iter()
        .find(|n| n.role == Some(NodeRole::Gpu))
        .map(|n| n.minor)
    else {
        return bad("names no GPU node".into());
    };
    let caps: Vec<CapKey> = nodes.iter().filter_map(|n| n.cap).collect();
    if caps.is_empty() {
        // A whole GPU (MIG disabled).
        return Ok(());
    }
    let gis: Vec<(u32, u32)> = caps
        .iter()
        .filter_map(|k| match *k {
            CapKey::Gi { gpu, gi } => Some((gpu, gi)),
            _ => None,
        })
        .collect();
    let cis: Vec<(u32, u32)> = caps
        .iter()
        .filter_map(|k| match *k {
            CapKey::Ci { gpu, gi, .. } => Some((gpu, gi)),
            _ => None,
        })
        .collect();
    match (&gis[..], &cis[..]) {
        ([g], [c]) if caps.len() == 2 && g.0 == gpu && c == g => Ok(()),
        _ => bad(format!(
            "must name the GPU-instance and compute-instance access capabilities of one \
             instance of GPU minor {gpu}, but names {}",
            caps.iter().map(|k| k.rel()).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// The `mig/config` or `mig/monitor` capability node, checked like any
/// other node.
pub fn management_node(which: NodeRole, live: &dyn Live) -> Result<CheckedNode, HookError> {
    let (key, var) = match which {
        NodeRole::MigConfig => (CapKey::Config, "NVIDIA_MIG_CONFIG_DEVICES"),
        _ => (CapKey::Monitor, "NVIDIA_MIG_MONITOR_DEVICES"),
    };
    let capability = live.management(key)?.ok_or_else(|| {
        HookError::Stale(format!(
            "{var}=all asks for the MIG {} capability, which the driver does not have \
             (/proc/driver/nvidia/capabilities/{}); check the driver version",
            key.rel(),
            key.rel()
        ))
    })?;
    let node = SpecNode {
        path: cap_node_path(capability.minor),
        host_path: None,
        major: None,
        minor: Some(capability.minor),
        access: Access::RW,
    };
    check_node(&node, var, live, &[(key, capability)])
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::spec::SpecDevice;

    /// An in-memory driver: the H200 majors, GPU 0 with GI 1/CI 0 (caps
    /// 12, 13) and GI 2/CI 0 (caps 21, 22).
    pub struct FakeLive {
        pub majors: BTreeMap<&'static str, u32>,
        pub caps: Vec<(CapKey, Capability)>,
        pub management: BTreeMap<&'static str, Capability>,
        pub host: BTreeMap<String, HostNode>,
    }

    pub fn cap(minor: u32, mode: u32) -> Capability {
        Capability {
            minor,
            mode,
            modify: true,
        }
    }

    impl FakeLive {
        pub fn h200() -> Self {
            let caps = vec![
                (CapKey::Gi { gpu: 0, gi: 1 }, cap(12, 0o444)),
                (
                    CapKey::Ci {
                        gpu: 0,
                        gi: 1,
                        ci: 0,
                    },
                    cap(13, 0o444),
                ),
                (CapKey::Gi { gpu: 0, gi: 2 }, cap(21, 0o444)),
                (
                    CapKey::Ci {
                        gpu: 0,
                        gi: 2,
                        ci: 0,
                    },
                    cap(22, 0o444),
                ),
            ];
            let management = [
                ("mig/config", cap(1, 0o400)),
                ("mig/monitor", cap(2, 0o444)),
            ]
            .into_iter()
            .collect();
            let mut host = BTreeMap::new();
            let c = |major, minor| HostNode::Char {
                major,
                minor,
                mode: 0o666,
            };
            host.insert("/dev/nvidia0".to_string(), c(195, 0));
            host.insert("/dev/nvidiactl".to_string(), c(195, 255));
            host.insert("/dev/nvidia-uvm".to_string(), c(238, 0));
            host.insert("/dev/nvidia-uvm-tools".to_string(), c(238, 1));
            for m in [1, 2, 12, 13, 21, 22] {
                host.insert(cap_node_path(m), c(241, m));
            }
            let majors = [
                ("nvidia", 195),
                ("nvidiactl", 195),
                ("nvidia-uvm", 238),
                ("nvidia-caps", 241),
            ]
            .into_iter()
            .collect();
            Self {
                majors,
                caps,
                management,
                host,
            }
        }

        pub fn set_minor(&mut self, key: CapKey, minor: u32) {
            for (k, c) in &mut self.caps {
                if *k == key {
                    c.minor = minor;
                }
            }
        }
    }

    impl Live for FakeLive {
        fn major(&self, name: &str) -> Option<u32> {
            self.majors.get(name).copied()
        }
        fn device_file_mode(&self) -> u32 {
            0o666
        }
        fn gpu_capabilities(&self, gpu: u32) -> Result<Vec<(CapKey, Capability)>, HookError> {
            Ok(self
                .caps
                .iter()
                .filter(|(k, _)| matches!(k, CapKey::Gi { gpu: g, .. } | CapKey::Ci { gpu: g, .. } if *g == gpu))
                .copied()
                .collect())
        }
        fn management(&self, key: CapKey) -> Result<Option<Capability>, HookError> {
            Ok(self.management.get(key.rel().as_str()).copied())
        }
        fn host_node(&self, path: &str) -> HostNode {
            self.host.get(path).cloned().unwrap_or(HostNode::Missing)
        }
        fn host_display(&self, path: &str) -> String {
            path.to_string()
        }
    }

    pub fn node(path: &str, major: u32, minor: u32) -> SpecNode {
        SpecNode {
            path: path.into(),
            host_path: None,
            major: Some(major),
            minor: Some(minor),
            access: Access::RW,
        }
    }

    pub fn mig_device(gi_cap: u32, ci_cap: u32) -> Resolved {
        let device = SpecDevice {
            kind: "nvidia.com/gpu".into(),
            name: "0:0".into(),
            nodes: vec![
                node("/dev/nvidia0", 195, 0),
                node(&cap_node_path(gi_cap), 241, gi_cap),
                node(&cap_node_path(ci_cap), 241, ci_cap),
            ],
            spec_nodes: vec![
                node("/dev/nvidiactl", 195, 255),
                node("/dev/nvidia-uvm", 238, 0),
                node("/dev/nvidia-uvm-tools", 238, 1),
            ],
            file: "/etc/cdi/nvidia.com-gpu.json".into(),
        };
        Resolved::new(vec!["0:0".into()], device)
    }

    fn stale(resolved: &Resolved, live: &FakeLive) -> String {
        let err = check_device(resolved, live).unwrap_err();
        assert!(matches!(err, HookError::Stale(_)), "{err}");
        let text = err.to_string();
        assert!(text.contains("mig-cdi-gen generate"), "{text}");
        text
    }

    #[test]
    fn fresh_device_gives_all_nodes_with_driver_modes() {
        let nodes = check_device(&mig_device(12, 13), &FakeLive::h200()).unwrap();
        let got: Vec<_> = nodes
            .iter()
            .map(|n| (n.path.as_str(), n.major, n.minor, n.mode))
            .collect();
        assert_eq!(
            got,
            [
                ("/dev/nvidia0", 195, 0, 0o666),
                ("/dev/nvidia-caps/nvidia-cap12", 241, 12, 0o444),
                ("/dev/nvidia-caps/nvidia-cap13", 241, 13, 0o444),
                ("/dev/nvidiactl", 195, 255, 0o666),
                ("/dev/nvidia-uvm", 238, 0, 0o666),
                ("/dev/nvidia-uvm-tools", 238, 1, 0o666),
            ]
        );
    }

    #[test]
    fn changed_minor_in_driver_table_is_stale() {
        let mut live = FakeLive::h200();
        live.set_minor(CapKey::Gi { gpu: 0, gi: 1 }, 99);
        let text = stale(&mig_device(12, 13), &live);
        assert!(
            text.contains(
                "no MIG capability of this GPU has minor 12 now (it has gpu0/mig/gi1/access = 99"
            ),
            "{text}"
        );
    }

    #[test]
    fn vanished_instance_is_stale() {
        let mut live = FakeLive::h200();
        live.caps.retain(|(k, _)| {
            *k != CapKey::Ci {
                gpu: 0,
                gi: 1,
                ci: 0,
            }
        });
        let text = stale(&mig_device(12, 13), &live);
        assert!(text.contains("has minor 13 now"), "{text}");
        live.caps.clear();
        let text = stale(&mig_device(12, 13), &live);
        assert!(text.contains("it has no MIG instances"), "{text}");
    }

    #[test]
    fn moved_major_is_stale() {
        let mut live = FakeLive::h200();
        live.majors.insert("nvidia-caps", 240);
        stale(&mig_device(12, 13), &live);
    }

    #[test]
    fn host_node_with_other_number_or_missing_is_stale() {
        let mut live = FakeLive::h200();
        live.host.insert(
            cap_node_path(13),
            HostNode::Char {
                major: 241,
                minor: 14,
                mode: 0o444,
            },
        );
        let text = stale(&mig_device(12, 13), &live);
        assert!(text.contains("241:14"), "{text}");
        let mut live = FakeLive::h200();
        live.host.remove("/dev/nvidia-uvm");
        stale(&mig_device(12, 13), &live);
    }

    #[test]
    fn caps_of_two_instances_are_refused() {
        stale(&mig_device(12, 22), &FakeLive::h200());
        stale(&mig_device(12, 1), &FakeLive::h200());
    }

    #[test]
    fn node_paths_outside_dev_are_refused() {
        let mut device = mig_device(12, 13);
        device
            .device
            .spec_nodes
            .push(node("/dev/../etc/x", 195, 255));
        stale(&device, &FakeLive::h200());
        let mut device = mig_device(12, 13);
        device.device.spec_nodes[0].path = "/etc/nvidiactl".into();
        stale(&device, &FakeLive::h200());
    }

    #[test]
    fn numbers_may_come_from_the_host() {
        let mut device = mig_device(12, 13);
        device.device.nodes[0].major = None;
        device.device.nodes[0].minor = None;
        assert!(check_device(&device, &FakeLive::h200()).is_ok());
    }

    #[test]
    fn management_nodes_come_from_the_driver() {
        let live = FakeLive::h200();
        let config = management_node(NodeRole::MigConfig, &live).unwrap();
        assert_eq!(
            (config.path.as_str(), config.minor, config.mode),
            ("/dev/nvidia-caps/nvidia-cap1", 1, 0o400)
        );
        let monitor = management_node(NodeRole::MigMonitor, &live).unwrap();
        assert_eq!((monitor.minor, monitor.mode), (2, 0o444));
    }

    #[test]
    fn live_driver_reads_only_the_gpu_capabilities() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let snapshot = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/driver/h200-580.159.04/proc");
        let caps = root.join(CAPABILITIES);
        std::fs::create_dir_all(caps.join("gpu0/mig/gi7/ci0")).unwrap();
        std::fs::create_dir_all(caps.join("mig")).unwrap();
        std::fs::create_dir_all(caps.join("gpu0/mig/gi7/not-a-ci")).unwrap();
        for rel in ["devices", "driver/nvidia/params"] {
            std::fs::create_dir_all(root.join("proc").join(rel).parent().unwrap()).unwrap();
            std::fs::copy(snapshot.join(rel), root.join("proc").join(rel)).unwrap();
        }
        std::fs::copy(
            snapshot.join("driver/nvidia/capabilities/mig/config"),
            caps.join("mig/config"),
        )
        .unwrap();
        let write = |rel: &str, minor: u32| {
            std::fs::write(
                caps.join(rel),
                format!("DeviceFileMinor: {minor}\nDeviceFileMode: 292\n"),
            )
            .unwrap()
        };
        write("gpu0/mig/gi7/access", 66);
        write("gpu0/mig/gi7/ci0/access", 67);
        let live = LiveDriver::load(root).unwrap();
        assert_eq!(
            (live.major("nvidia-caps"), live.device_file_mode()),
            (Some(241), 0o666)
        );
        let found = live.gpu_capabilities(0).unwrap();
        assert_eq!(
            found,
            [
                (
                    CapKey::Gi { gpu: 0, gi: 7 },
                    Capability {
                        minor: 66,
                        mode: 0o444,
                        modify: false
                    }
                ),
                (
                    CapKey::Ci {
                        gpu: 0,
                        gi: 7,
                        ci: 0
                    },
                    Capability {
                        minor: 67,
                        mode: 0o444,
                        modify: false
                    }
                ),
            ]
        );
        assert!(live.gpu_capabilities(1).unwrap().is_empty());
        assert_eq!(
            live.management(CapKey::Config)
                .unwrap()
                .map(|c| (c.minor, c.mode)),
            Some((1, 0o400))
        );
        assert_eq!(live.management(CapKey::Monitor).unwrap(), None);
        std::fs::remove_file(root.join("proc/devices")).unwrap();
        assert!(LiveDriver::load(root).is_err());
    }

    #[test]
    fn number_is_strict() {
        assert_eq!(number("12"), Some(12));
        assert_eq!(number("012"), None);
        assert_eq!(number("1a"), None);
        assert_eq!(number(""), None);
        assert_eq!(number("-1"), None);
    }
}
