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

use std::path::{Component, Path, PathBuf};

use mig_cdi_core::cgroup::Access;
use mig_cdi_core::driver::{Capability, DriverError, DriverTables, MigMinors};
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
    fn mig_minors(&self) -> &MigMinors;
    /// `proc/driver/nvidia/capabilities/<rel>`.
    fn capability(&self, rel: &str) -> Result<Capability, DriverError>;
    /// `DeviceFileMode` of the nvidia nodes.
    fn device_file_mode(&self) -> u32;
    /// The host's node at `path` (absolute, under the host root).
    fn host_node(&self, path: &str) -> HostNode;
    /// How to name `path` on the host in messages.
    fn host_display(&self, path: &str) -> String;
}

/// The real driver: tables read once under `--root`, `/dev` under it.
pub struct LiveDriver {
    pub tables: DriverTables,
    pub root: PathBuf,
}

impl LiveDriver {
    fn under_root(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }
}

impl Live for LiveDriver {
    fn major(&self, name: &str) -> Option<u32> {
        self.tables.char_devices.major(name)
    }
    fn mig_minors(&self) -> &MigMinors {
        &self.tables.mig_minors
    }
    fn capability(&self, rel: &str) -> Result<Capability, DriverError> {
        self.tables.capability(rel)
    }
    fn device_file_mode(&self) -> u32 {
        self.tables.device_file_mode
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

/// A capability minor's place in the driver's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CapKey {
    Config,
    Monitor,
    Gi { gpu: u32, gi: u32 },
    Ci { gpu: u32, gi: u32, ci: u32 },
}

impl CapKey {
    fn find(minors: &MigMinors, minor: u32) -> Option<Self> {
        if minors.config == Some(minor) {
            return Some(Self::Config);
        }
        if minors.monitor == Some(minor) {
            return Some(Self::Monitor);
        }
        if let Some((&(gpu, gi), _)) = minors.gi_access.iter().find(|(_, &m)| m == minor) {
            return Some(Self::Gi { gpu, gi });
        }
        minors
            .ci_access
            .iter()
            .find(|(_, &m)| m == minor)
            .map(|(&(gpu, gi, ci), _)| Self::Ci { gpu, gi, ci })
    }

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
fn check_node(node: &SpecNode, device: &str, live: &dyn Live) -> Result<CheckedNode, HookError> {
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
    let checked = |mode: u32, role: Option<NodeRole>| CheckedNode {
        path: node.path.clone(),
        major,
        minor,
        mode,
        role,
        access: node.access,
    };
    match meaning(&node.path) {
        Meaning::Gpu(gpu) => {
            let nvidia = want_major(NVIDIA_MAJOR_NAME)?;
            if (major, minor) != (nvidia, gpu) {
                return Err(mismatch(format!("{nvidia}:{gpu}")));
            }
            Ok(checked(live.device_file_mode(), Some(NodeRole::Gpu)))
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
            ))
        }
        Meaning::Cap(cap_minor) => {
            let caps = want_major(CAPS_MAJOR_NAME)?;
            if (major, minor) != (caps, cap_minor) {
                return Err(mismatch(format!("{caps}:{cap_minor}")));
            }
            let key = CapKey::find(live.mig_minors(), cap_minor).ok_or_else(|| {
                mismatch(format!(
                    "minor {cap_minor} is no MIG capability (not in \
                     /proc/driver/nvidia-caps/mig-minors)"
                ))
            })?;
            let rel = key.rel();
            let capability = live.capability(&rel).map_err(|err| {
                HookError::Stale(format!(
                    "{} of {device} is capability {rel}, which the driver does not have now \
                     ({err}); {REGENERATE}",
                    node.path
                ))
            })?;
            if capability.minor != cap_minor {
                return Err(mismatch(format!(
                    "capability {rel} is minor {}",
                    capability.minor
                )));
            }
            Ok(checked(capability.mode, Some(key.role())))
        }
        Meaning::Unknown => Ok(checked(host_mode, None)),
    }
}

/// Check every node of the resolved device and its spec's control nodes.
/// A MIG device must be exactly one GPU node plus the GPU-instance and
/// compute-instance capabilities of one instance of that GPU.
pub fn check_device(resolved: &Resolved, live: &dyn Live) -> Result<Vec<CheckedNode>, HookError> {
    let device = format!("{}={}", resolved.device.kind, resolved.device.name);
    let mut out: Vec<CheckedNode> = Vec::new();
    let mut device_nodes = Vec::new();
    for node in &resolved.device.nodes {
        let checked = check_node(node, &device, live)?;
        device_nodes.push(checked.clone());
        push_unique(&mut out, checked, &device)?;
    }
    for node in &resolved.device.spec_nodes {
        push_unique(&mut out, check_node(node, &device, live)?, &device)?;
    }
    if device_nodes.is_empty() {
        return Err(HookError::Stale(format!(
            "spec device {device} has no device nodes; {REGENERATE}"
        )));
    }
    check_structure(&device_nodes, &device, live.mig_minors())?;
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

fn check_structure(
    nodes: &[CheckedNode],
    device: &str,
    minors: &MigMinors,
) -> Result<(), HookError> {
    let gpus: Vec<u32> = nodes
        .iter()
        .filter(|n| n.role == Some(NodeRole::Gpu))
        .map(|n| n.minor)
        .collect();
    let caps: Vec<CapKey> = nodes
        .iter()
        .filter_map(|n| match n.role {
            Some(
                NodeRole::GiAccess
                | NodeRole::CiAccess
                | NodeRole::MigConfig
                | NodeRole::MigMonitor,
            ) => CapKey::find(minors, n.minor),
            _ => None,
        })
        .collect();
    let bad = |why: &str| {
        Err(HookError::Stale(format!(
            "spec device {device} {why}; {REGENERATE}"
        )))
    };
    if caps.is_empty() {
        // A whole GPU (MIG disabled): one GPU node.
        return if gpus.len() == 1 {
            Ok(())
        } else {
            bad("names no single GPU node")
        };
    }
    let [gpu] = gpus[..] else {
        return bad("must name exactly one parent GPU node (/dev/nvidiaN)");
    };
    let gis: Vec<(u32, u32)> = caps
        .iter()
        .filter_map(|k| match *k {
            CapKey::Gi { gpu, gi } => Some((gpu, gi)),
            _ => None,
        })
        .collect();
    let cis: Vec<(u32, u32, u32)> = caps
        .iter()
        .filter_map(|k| match *k {
            CapKey::Ci { gpu, gi, ci } => Some((gpu, gi, ci)),
            _ => None,
        })
        .collect();
    if caps
        .iter()
        .any(|k| matches!(k, CapKey::Config | CapKey::Monitor))
    {
        return bad("includes the MIG config/monitor capability, which only \
                    NVIDIA_MIG_CONFIG_DEVICES / NVIDIA_MIG_MONITOR_DEVICES may add");
    }
    match (&gis[..], &cis[..]) {
        ([(g_gpu, gi)], [(c_gpu, c_gi, _)]) if *g_gpu == gpu && *c_gpu == gpu && c_gi == gi => {
            Ok(())
        }
        _ => bad(&format!(
            "must name the GPU-instance and compute-instance access capabilities of one \
             instance of GPU minor {gpu}, but names {}",
            caps.iter().map(|k| k.rel()).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// The `mig/config` or `mig/monitor` capability node, checked like any
/// other node.
pub fn management_node(which: NodeRole, live: &dyn Live) -> Result<CheckedNode, HookError> {
    let (minor, key, var) = match which {
        NodeRole::MigConfig => (
            live.mig_minors().config,
            CapKey::Config,
            "NVIDIA_MIG_CONFIG_DEVICES",
        ),
        _ => (
            live.mig_minors().monitor,
            CapKey::Monitor,
            "NVIDIA_MIG_MONITOR_DEVICES",
        ),
    };
    let minor = minor.ok_or_else(|| {
        HookError::Stale(format!(
            "{var}=all asks for the MIG {} capability, but the driver's mig-minors table has \
             none; check the driver version",
            key.rel()
        ))
    })?;
    let node = SpecNode {
        path: cap_node_path(minor),
        host_path: None,
        major: None,
        minor: Some(minor),
        access: Access::RW,
    };
    check_node(&node, var, live)
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
        pub minors: MigMinors,
        pub caps: BTreeMap<String, Capability>,
        pub host: BTreeMap<String, HostNode>,
    }

    impl FakeLive {
        pub fn h200() -> Self {
            let mut minors = MigMinors {
                config: Some(1),
                monitor: Some(2),
                ..MigMinors::default()
            };
            for gi in 0..15 {
                minors.gi_access.insert((0, gi), 3 + gi * 9);
                for ci in 0..8 {
                    minors.ci_access.insert((0, gi, ci), 4 + gi * 9 + ci);
                }
            }
            let cap = |minor, mode| Capability {
                minor,
                mode,
                modify: true,
            };
            let mut caps = BTreeMap::new();
            caps.insert("mig/config".to_string(), cap(1, 0o400));
            caps.insert("mig/monitor".to_string(), cap(2, 0o444));
            caps.insert("gpu0/mig/gi1/access".to_string(), cap(12, 0o444));
            caps.insert("gpu0/mig/gi1/ci0/access".to_string(), cap(13, 0o444));
            caps.insert("gpu0/mig/gi2/access".to_string(), cap(21, 0o444));
            caps.insert("gpu0/mig/gi2/ci0/access".to_string(), cap(22, 0o444));
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
                minors,
                caps,
                host,
            }
        }
    }

    impl Live for FakeLive {
        fn major(&self, name: &str) -> Option<u32> {
            self.majors.get(name).copied()
        }
        fn mig_minors(&self) -> &MigMinors {
            &self.minors
        }
        fn capability(&self, rel: &str) -> Result<Capability, DriverError> {
            self.caps
                .get(rel)
                .copied()
                .ok_or_else(|| DriverError::Missing {
                    path: PathBuf::from(rel),
                    what: "such file".into(),
                    hint: "test",
                })
        }
        fn device_file_mode(&self) -> u32 {
            0o666
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
        live.caps.get_mut("gpu0/mig/gi1/access").unwrap().minor = 99;
        let text = stale(&mig_device(12, 13), &live);
        assert!(
            text.contains("capability gpu0/mig/gi1/access is minor 99"),
            "{text}"
        );
    }

    #[test]
    fn vanished_instance_is_stale() {
        let mut live = FakeLive::h200();
        live.caps.remove("gpu0/mig/gi1/ci0/access");
        let text = stale(&mig_device(12, 13), &live);
        assert!(text.contains("does not have now"), "{text}");
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
    fn number_is_strict() {
        assert_eq!(number("12"), Some(12));
        assert_eq!(number("012"), None);
        assert_eq!(number("1a"), None);
        assert_eq!(number(""), None);
        assert_eq!(number("-1"), None);
    }
}
