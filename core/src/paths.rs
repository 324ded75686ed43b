//! Where the driver keeps each fact, and what each device path means: the
//! one table the generator, the hook and their tests all read.
//!
//! - The driver's files under a host root ([`PROC_DEVICES`], [`PARAMS`],
//!   [`CAPABILITIES`], ...).
//! - The control nodes every GPU container needs ([`CONTROL_NODES`]): their
//!   path, the `/proc/devices` name of their major, their minor and mode.
//! - The MIG capabilities ([`CapKey`]): the access file under
//!   `capabilities/`, the name in `mig-minors`, and the node's role.
//! - The reverse: what a path under `/dev` stands for ([`classify`]).

use std::path::{Path, PathBuf};

use crate::nodes::NodeRole;

/// Character majors, `name major` per line.
pub const PROC_DEVICES: &str = "proc/devices";
/// The kernel module's version line.
pub const VERSION: &str = "proc/driver/nvidia/version";
/// Module parameters (`DeviceFileMode`, ...).
pub const PARAMS: &str = "proc/driver/nvidia/params";
/// One folder per bound GPU, each with an `information` file.
pub const GPUS: &str = "proc/driver/nvidia/gpus";
/// The static table of every possible capability minor.
pub const MIG_MINORS: &str = "proc/driver/nvidia-caps/mig-minors";
/// One access file per MIG capability that exists now.
pub const CAPABILITIES: &str = "proc/driver/nvidia/capabilities";

/// Name of the GPU major in `/proc/devices`.
pub const NVIDIA_MAJOR_NAME: &str = "nvidia";
/// Name of the control-device major in `/proc/devices`.
pub const NVIDIACTL_MAJOR_NAME: &str = "nvidiactl";
/// Name of the unified-memory major in `/proc/devices`.
pub const UVM_MAJOR_NAME: &str = "nvidia-uvm";
/// Name of the MIG capability major in `/proc/devices` (devfs model).
pub const CAPS_MAJOR_NAME: &str = "nvidia-caps";

/// Minor number of `/dev/nvidiactl`.
pub const NVIDIACTL_MINOR: u32 = 255;
/// Minor number of `/dev/nvidia-modeset`.
pub const MODESET_MINOR: u32 = 254;
/// Optional control node: present only where nvidia-modeset is loaded.
pub const MODESET_PATH: &str = "/dev/nvidia-modeset";
/// Mode nvidia-modprobe gives the UVM nodes.
pub const UVM_MODE: u32 = 0o666;
/// Folder of the capability nodes inside a container and on the host.
pub const CAPS_DIR: &str = "/dev/nvidia-caps";

/// `<root>/<rel>`, for a driver file named relative to the host root.
pub fn under(root: &Path, rel: &str) -> PathBuf {
    root.join(rel.trim_start_matches('/'))
}

/// Path of GPU minor `minor`'s node.
pub fn gpu_node_path(minor: u32) -> String {
    format!("/dev/nvidia{minor}")
}

/// Path of capability node `minor`.
pub fn cap_node_path(minor: u32) -> String {
    format!("{CAPS_DIR}/nvidia-cap{minor}")
}

/// Where a node's mode comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeSource {
    /// The driver's `DeviceFileMode` parameter.
    Driver,
    /// A fixed mode (nvidia-modprobe's for the UVM nodes).
    Fixed(u32),
}

/// A control node: every GPU container gets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlNode {
    pub path: &'static str,
    /// `/proc/devices` name of its major.
    pub major_name: &'static str,
    /// Name to fall back on when `major_name` is absent (older drivers
    /// list `/dev/nvidiactl` under `nvidia`).
    pub fallback_major_name: Option<&'static str>,
    pub minor: u32,
    pub mode: ModeSource,
    /// Present only where its module is loaded; absent is fine.
    pub optional: bool,
}

impl ControlNode {
    /// Its major in a `/proc/devices` lookup.
    pub fn major(&self, lookup: impl Fn(&str) -> Option<u32>) -> Option<u32> {
        lookup(self.major_name).or_else(|| self.fallback_major_name.and_then(lookup))
    }

    /// Its mode, given the driver's `DeviceFileMode`.
    pub fn mode(&self, device_file_mode: u32) -> u32 {
        match self.mode {
            ModeSource::Driver => device_file_mode,
            ModeSource::Fixed(mode) => mode,
        }
    }
}

/// Every control node, sorted by path.
pub const CONTROL_NODES: [ControlNode; 4] = [
    ControlNode {
        path: MODESET_PATH,
        major_name: NVIDIA_MAJOR_NAME,
        fallback_major_name: None,
        minor: MODESET_MINOR,
        mode: ModeSource::Driver,
        optional: true,
    },
    ControlNode {
        path: "/dev/nvidia-uvm",
        major_name: UVM_MAJOR_NAME,
        fallback_major_name: None,
        minor: 0,
        mode: ModeSource::Fixed(UVM_MODE),
        optional: false,
    },
    ControlNode {
        path: "/dev/nvidia-uvm-tools",
        major_name: UVM_MAJOR_NAME,
        fallback_major_name: None,
        minor: 1,
        mode: ModeSource::Fixed(UVM_MODE),
        optional: false,
    },
    ControlNode {
        path: "/dev/nvidiactl",
        major_name: NVIDIACTL_MAJOR_NAME,
        fallback_major_name: Some(NVIDIA_MAJOR_NAME),
        minor: NVIDIACTL_MINOR,
        mode: ModeSource::Driver,
        optional: false,
    },
];

/// The control node at `path`, if it is one.
pub fn control_node(path: &str) -> Option<&'static ControlNode> {
    CONTROL_NODES.iter().find(|node| node.path == path)
}

/// Which MIG capability a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CapKey {
    /// MIG management of every GPU (`mig/config`).
    Config,
    /// MIG monitoring of every GPU (`mig/monitor`).
    Monitor,
    /// GPU instance `gi` of GPU minor `gpu`.
    Gi { gpu: u32, gi: u32 },
    /// Compute instance `ci` of that GPU instance.
    Ci { gpu: u32, gi: u32, ci: u32 },
}

impl CapKey {
    /// Its access file, relative to [`CAPABILITIES`].
    pub fn file(self) -> String {
        match self {
            Self::Config => "mig/config".into(),
            Self::Monitor => "mig/monitor".into(),
            Self::Gi { gpu, gi } => format!("gpu{gpu}/mig/gi{gi}/access"),
            Self::Ci { gpu, gi, ci } => format!("gpu{gpu}/mig/gi{gi}/ci{ci}/access"),
        }
    }

    /// Its access file under a host root.
    pub fn path(self, root: &Path) -> PathBuf {
        under(root, CAPABILITIES).join(self.file())
    }

    /// Its name in `mig-minors` (`gpu0/gi1/ci0/access`, `config`).
    pub fn mig_minors_name(self) -> String {
        match self {
            Self::Config => "config".into(),
            Self::Monitor => "monitor".into(),
            Self::Gi { gpu, gi } => format!("gpu{gpu}/gi{gi}/access"),
            Self::Ci { gpu, gi, ci } => format!("gpu{gpu}/gi{gi}/ci{ci}/access"),
        }
    }

    pub fn role(self) -> NodeRole {
        match self {
            Self::Config => NodeRole::MigConfig,
            Self::Monitor => NodeRole::MigMonitor,
            Self::Gi { .. } => NodeRole::GiAccess,
            Self::Ci { .. } => NodeRole::CiAccess,
        }
    }

    /// The GPU minor of a GI or CI capability.
    pub fn gpu(self) -> Option<u32> {
        match self {
            Self::Gi { gpu, .. } | Self::Ci { gpu, .. } => Some(gpu),
            Self::Config | Self::Monitor => None,
        }
    }
}

/// What a device path stands for, by its name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodePath {
    /// `/dev/nvidiaN`.
    Gpu(u32),
    /// `/dev/nvidia-caps/nvidia-capM`.
    Cap(u32),
    /// One of [`CONTROL_NODES`].
    Control(&'static ControlNode),
    /// Anything else.
    Other,
}

/// Classify a path. Numbers are plain decimals: `/dev/nvidia01` is not
/// GPU 1.
pub fn classify(path: &str) -> NodePath {
    if let Some(minor) = path
        .strip_prefix(CAPS_DIR)
        .and_then(|rest| rest.strip_prefix("/nvidia-cap"))
        .and_then(plain_number)
    {
        return NodePath::Cap(minor);
    }
    if let Some(node) = control_node(path) {
        return NodePath::Control(node);
    }
    match path.strip_prefix("/dev/nvidia").and_then(plain_number) {
        Some(minor) => NodePath::Gpu(minor),
        None => NodePath::Other,
    }
}

/// A plain decimal without sign or leading zeros.
pub fn plain_number(text: &str) -> Option<u32> {
    if text.is_empty() || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_key_names_in_both_tables() {
        let ci = CapKey::Ci {
            gpu: 3,
            gi: 1,
            ci: 0,
        };
        assert_eq!(ci.file(), "gpu3/mig/gi1/ci0/access");
        assert_eq!(ci.mig_minors_name(), "gpu3/gi1/ci0/access");
        assert_eq!(
            ci.path(Path::new("/r")),
            PathBuf::from("/r/proc/driver/nvidia/capabilities/gpu3/mig/gi1/ci0/access")
        );
        assert_eq!(CapKey::Config.file(), "mig/config");
        assert_eq!(CapKey::Monitor.mig_minors_name(), "monitor");
        assert_eq!(CapKey::Gi { gpu: 0, gi: 7 }.role(), NodeRole::GiAccess);
    }

    #[test]
    fn paths_are_classified_strictly() {
        assert_eq!(classify("/dev/nvidia3"), NodePath::Gpu(3));
        assert_eq!(classify("/dev/nvidia-caps/nvidia-cap12"), NodePath::Cap(12));
        assert!(matches!(classify("/dev/nvidiactl"), NodePath::Control(n) if n.minor == 255));
        for other in [
            "/dev/nvidia03",
            "/dev/nvidia-caps/nvidia-cap012",
            "/dev/nvidia-cap1",
            "/dev/foo",
            "/dev/nvidia-caps/../nvidia0",
            "/dev/nvidia+1",
        ] {
            assert_eq!(classify(other), NodePath::Other, "{other}");
        }
    }

    #[test]
    fn control_table_is_sorted_and_knows_fallbacks() {
        let paths: Vec<_> = CONTROL_NODES.iter().map(|n| n.path).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
        let ctl = control_node("/dev/nvidiactl").unwrap();
        let lookup = |name: &str| (name == "nvidia").then_some(195);
        assert_eq!(ctl.major(lookup), Some(195));
        assert_eq!(ctl.mode(0o660), 0o660);
        assert_eq!(control_node("/dev/nvidia-uvm").unwrap().mode(0o660), 0o666);
    }
}
