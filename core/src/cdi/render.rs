//! [`Inventory`] -> [`Spec`]: a pure function, so the same hardware always
//! gives the same spec.
//!
//! What goes in, and why:
//! - One device per MIG device and per GPU with MIG disabled, under each
//!   naming strategy asked for; a GPU in MIG mode gets no device of its
//!   own, and there is no `all` device (CUDA uses only the first of several
//!   MIG devices, so `all` would silently give one).
//! - Each device carries its exact nodes with `type`, `major`, `minor`, so
//!   a runtime never has to stat the host (a missing or replaced host node
//!   cannot change what the container gets), and `fileMode` from the driver
//!   so a non-root user in the container has exactly the access it has on
//!   the host (runc would otherwise create every node 0666).
//! - `permissions` (the device-cgroup access): `rw` for `/dev/nvidiaN` and
//!   the control nodes, which CUDA opens read-write; `r` for the MIG
//!   capability nodes. The driver grants a capability to whoever can *read*
//!   its node (modes 0444/0400; a non-root CUDA process works with 0444, so
//!   it opens them read-only), and `m` (mknod) is never given.
//! - The control nodes go once into the spec-level edits.
//! - `hostPath` only when the driver's /dev is under another root.
//! - One environment variable per MIG device, [`PROFILE_ENV`]`=<profile>`
//!   (`MIG_CDI_PROFILE=1g.18gb`, the profile as NVML and `list` name it).
//!   It names the device's profile, so the hook can allocate "any free MIG
//!   device of profile P" from the spec alone, and the program inside can
//!   see what it got. Env in device edits is a 0.3.0 feature: the declared
//!   version stays the lowest that fits (0.5.0 for names like `0:1`). A
//!   GPU with MIG disabled gets no env: its nodes are the whole interface.
//! - With a verify hook ([`VerifyHook`], `generate --hook-path`), each MIG
//!   device also gets two hooks of `mig-cdi-hook`, with an absolute path
//!   and an explicit environment: `createRuntime` `verify` (the container
//!   got exactly one MIG device and nothing it may not have; it records a
//!   lease) and `poststop` `poststop` (it releases the lease). In the
//!   device's edits, so only a container given a MIG device runs them;
//!   hooks too are a 0.3.0 feature.
//! - With the driver's files ([`DriverEdits`]): read-only bind mounts
//!   (`ro`, `nosuid`, `nodev`, `bind`) of the libraries, utilities,
//!   sockets and firmware at their paths under the driver root, and two
//!   `createContainer` hooks of `mig-cdi-hook` — `create-symlinks` (the
//!   soname links) and `update-ldcache` (the container's loader cache) —
//!   each with an absolute path and an explicit environment, never the
//!   container's. All in the spec-level edits: every device needs them.
//!
//! Devices are sorted by GPU index then MIG index, whatever order the
//! inventory lists them in; each device's names follow in strategy order
//! (index, uuid, type-index). The declared `cdiVersion` is the lowest that
//! fits ([`super::version::min_version`]).

use serde::Serialize;

use super::spec::{ContainerEdits, Device, DeviceNode, Hook, Mount, Spec};
use super::version::min_version;
use crate::driver_files::{DriverFiles, Kind};
use crate::nodes::{self, DeviceKind, Inventory, InventoryDevice, NodeRole};

/// How devices are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameStrategy {
    /// NVIDIA's index names: `0` for a GPU, `0:1` for a MIG device. Short,
    /// but they shift when MIG is reconfigured. Need cdiVersion 0.5.0.
    Index,
    /// `GPU-…` / `MIG-…`: stable across reconfiguration of other devices.
    Uuid,
    /// `gpu0`, `mig0:1`: index names that start with a letter.
    TypeIndex,
}

impl NameStrategy {
    /// Every strategy, in the order names are written.
    pub const ALL: [NameStrategy; 3] = [
        NameStrategy::Index,
        NameStrategy::Uuid,
        NameStrategy::TypeIndex,
    ];

    /// The strategies used when none is asked for.
    pub const DEFAULT: [NameStrategy; 2] = [NameStrategy::Index, NameStrategy::Uuid];

    pub fn as_str(self) -> &'static str {
        match self {
            NameStrategy::Index => "index",
            NameStrategy::Uuid => "uuid",
            NameStrategy::TypeIndex => "type-index",
        }
    }

    /// The name of `device` under this strategy.
    pub fn name(self, device: &InventoryDevice) -> String {
        match self {
            NameStrategy::Index => device.index_name(),
            NameStrategy::Uuid => device.uuid.clone(),
            NameStrategy::TypeIndex => match &device.kind {
                DeviceKind::Gpu => format!("gpu{}", device.gpu_index),
                DeviceKind::Mig { mig_index, .. } => {
                    format!("mig{}:{}", device.gpu_index, mig_index)
                }
            },
        }
    }
}

/// What the spec is called and where the host's nodes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    pub vendor: String,
    pub class: String,
    /// Any order, repeats allowed: names are written in
    /// [`NameStrategy::ALL`] order, once each.
    pub strategies: Vec<NameStrategy>,
    /// The root the driver's `/dev` lives under on the host, when not `/`
    /// (an absolute path such as `/run/nvidia/driver`): nodes then get a
    /// `hostPath` under it.
    pub dev_root: Option<String>,
    /// The driver's user-space files, when the spec carries them.
    pub driver: Option<DriverEdits>,
    /// The verify and release hooks every MIG device gets, when asked for.
    pub verify_hook: Option<VerifyHook>,
}

/// `mig-cdi-hook` as each MIG device's `createRuntime` verify hook and
/// `poststop` release hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyHook {
    /// Absolute path of `mig-cdi-hook` on the host.
    pub path: String,
    /// Where the hook keeps its leases (`--state-dir DIR`), when not its
    /// default.
    pub state_dir: Option<String>,
    /// Further arguments of both hooks, after `--state-dir` (none from the
    /// generator; mig-cdi-runtime passes its `--root` and `--share`).
    pub extra: Vec<String>,
}

impl VerifyHook {
    /// `createRuntime` `verify`, then `poststop` `poststop`: the stage
    /// word first, then `--state-dir DIR` when given, then `extra`;
    /// [`HOOK_ENV`] as the whole environment.
    pub fn hooks(&self) -> Vec<Hook> {
        [("createRuntime", "verify"), ("poststop", "poststop")]
            .into_iter()
            .map(|(stage, word)| {
                let mut args = vec!["mig-cdi-hook".to_string(), word.to_string()];
                if let Some(dir) = &self.state_dir {
                    args.push("--state-dir".into());
                    args.push(dir.clone());
                }
                args.extend(self.extra.iter().cloned());
                Hook {
                    hook_name: stage.into(),
                    path: self.path.clone(),
                    args,
                    env: vec![HOOK_ENV.into()],
                    timeout: None,
                }
            })
            .collect()
    }
}

/// The driver's files, for the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverEdits {
    pub files: DriverFiles,
    /// Where the files are on the host, when not `/` (`/run/nvidia/driver`).
    pub driver_root: Option<String>,
    /// Absolute path of `mig-cdi-hook` on the host.
    pub hook_path: String,
}

/// The variable each MIG device's edits set to its profile
/// (`MIG_CDI_PROFILE=1g.18gb`).
pub const PROFILE_ENV: &str = "MIG_CDI_PROFILE";
/// The environment every hook we write runs with (never the container's).
pub const HOOK_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Mount options of every driver file.
pub const MOUNT_OPTIONS: [&str; 4] = ["ro", "nosuid", "nodev", "bind"];

impl DriverEdits {
    /// The read-only bind mounts, sorted by container path.
    pub fn mounts(&self) -> Vec<Mount> {
        self.files
            .files
            .iter()
            .map(|file| Mount {
                host_path: host_path(self.driver_root.as_deref(), &file.path)
                    .unwrap_or_else(|| file.path.clone()),
                container_path: file.path.clone(),
                options: MOUNT_OPTIONS.iter().map(|o| o.to_string()).collect(),
                mount_type: None,
            })
            .collect()
    }

    /// The `createContainer` hooks: soname links, then the loader cache.
    pub fn hooks(&self) -> Vec<Hook> {
        let hook = |args: Vec<String>| Hook {
            hook_name: "createContainer".into(),
            path: self.hook_path.clone(),
            args,
            env: vec![HOOK_ENV.into()],
            timeout: None,
        };
        let mut hooks = Vec::new();
        let links = self.files.links();
        if !links.is_empty() {
            let mut args = vec!["mig-cdi-hook".to_string(), "create-symlinks".to_string()];
            for (link, target) in links {
                args.push("--link".into());
                args.push(format!("{link}={target}"));
            }
            hooks.push(hook(args));
        }
        let mut entries = Vec::new();
        for file in &self.files.files {
            let Kind::Library { soname } = &file.kind else {
                continue;
            };
            let path = std::path::Path::new(&file.path);
            let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                continue;
            };
            let key = soname
                .clone()
                .unwrap_or_else(|| name.to_string_lossy().into_owned());
            entries.push(format!("{key}={}", dir.join(&key).display()));
        }
        if !entries.is_empty() {
            let mut args = vec!["mig-cdi-hook".to_string(), "update-ldcache".to_string()];
            for entry in entries {
                args.push("--entry".into());
                args.push(entry);
            }
            hooks.push(hook(args));
        }
        hooks
    }
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            vendor: "nvidia.com".into(),
            class: "gpu".into(),
            strategies: NameStrategy::DEFAULT.to_vec(),
            dev_root: None,
            driver: None,
            verify_hook: None,
        }
    }
}

impl RenderOptions {
    /// `vendor/class`.
    pub fn kind(&self) -> String {
        format!("{}/{}", self.vendor, self.class)
    }

    fn strategies(&self) -> Vec<NameStrategy> {
        NameStrategy::ALL
            .into_iter()
            .filter(|s| self.strategies.contains(s))
            .collect()
    }
}

/// Device-cgroup access for a node (see the module comment).
pub fn permissions(role: NodeRole) -> &'static str {
    match role {
        NodeRole::Control | NodeRole::Gpu => "rw",
        NodeRole::GiAccess | NodeRole::CiAccess | NodeRole::MigConfig | NodeRole::MigMonitor => "r",
    }
}

/// The host path of `path` under `dev_root` (`None` for `/`).
pub fn host_path(dev_root: Option<&str>, path: &str) -> Option<String> {
    let root = dev_root?.trim_end_matches('/');
    if root.is_empty() {
        return None;
    }
    Some(format!("{root}/{}", path.trim_start_matches('/')))
}

fn spec_node(node: &nodes::DeviceNode, dev_root: Option<&str>) -> DeviceNode {
    DeviceNode {
        path: node.path.clone(),
        host_path: host_path(dev_root, &node.path),
        node_type: Some("c".into()),
        major: Some(i64::from(node.major)),
        minor: Some(i64::from(node.minor)),
        file_mode: Some(node.mode & 0o7777),
        permissions: Some(permissions(node.role).into()),
        uid: None,
        gid: None,
    }
}

/// Sort key of a device: GPU index, then the GPU itself before its MIG
/// devices, then MIG index.
fn device_order(device: &InventoryDevice) -> (u32, u64) {
    match device.kind {
        DeviceKind::Gpu => (device.gpu_index, 0),
        DeviceKind::Mig { mig_index, .. } => (device.gpu_index, 1 + u64::from(mig_index)),
    }
}

/// The spec for `inventory`. Check it with [`super::check`] before
/// writing: an inventory with no devices gives a spec without devices,
/// which no runtime accepts.
pub fn render(inventory: &Inventory, options: &RenderOptions) -> Spec {
    let dev_root = options.dev_root.as_deref();
    let strategies = options.strategies();

    let mut inventory_devices: Vec<&InventoryDevice> = inventory.devices.iter().collect();
    inventory_devices.sort_by_key(|d| (device_order(d), d.uuid.clone()));

    let mut devices = Vec::new();
    for device in inventory_devices {
        let mut node_list: Vec<&nodes::DeviceNode> = device.nodes.iter().collect();
        node_list.sort_by(|a, b| (a.role, &a.path).cmp(&(b.role, &b.path)));
        node_list.dedup_by(|a, b| a.path == b.path);
        let mut edits = ContainerEdits {
            device_nodes: node_list.iter().map(|n| spec_node(n, dev_root)).collect(),
            ..ContainerEdits::default()
        };
        if let DeviceKind::Mig { profile, .. } = &device.kind {
            edits.env.push(format!("{PROFILE_ENV}={profile}"));
            if let Some(hook) = &options.verify_hook {
                edits.hooks = hook.hooks();
            }
        }
        for strategy in &strategies {
            devices.push(Device {
                name: strategy.name(device),
                annotations: None,
                container_edits: edits.clone(),
            });
        }
    }

    let mut control: Vec<&nodes::DeviceNode> = inventory.control_nodes.iter().collect();
    control.sort_by(|a, b| a.path.cmp(&b.path));
    control.dedup_by(|a, b| a.path == b.path);

    let mut spec = Spec {
        cdi_version: String::new(),
        kind: options.kind(),
        annotations: None,
        devices,
        container_edits: ContainerEdits {
            device_nodes: control.iter().map(|n| spec_node(n, dev_root)).collect(),
            mounts: options
                .driver
                .as_ref()
                .map(DriverEdits::mounts)
                .unwrap_or_default(),
            hooks: options
                .driver
                .as_ref()
                .map(DriverEdits::hooks)
                .unwrap_or_default(),
            ..ContainerEdits::default()
        },
    };
    spec.cdi_version = min_version(&spec).to_string();
    spec
}
