//! Stage 3, verify: is the spec still true, and may this container have
//! what it asked for?
//!
//! The spec was written by the generator at some point; since then the
//! driver may have been reloaded (majors move), MIG reconfigured (index
//! names shift, instances vanish), or the spec edited by hand — or written
//! by someone hostile. So the spec is a claim, checked against the live
//! driver: a MIG device gets exactly its parent `/dev/nvidiaN`, the
//! GPU-instance and compute-instance capability nodes of *one* instance of
//! that GPU (from the GPU's live capability files), and the control nodes;
//! any other node in the spec — `/dev/mem`, another instance's capability
//! under another name, a capability node in the spec-level edits — is
//! refused, naming it. Each host node must be a character device with the
//! number the driver gives its path.
//!
//! The live view reads only what one device needs: `/proc/devices`, the
//! driver's `params` and the capability files of the device's own GPU
//! (core's `driver::LiveDriver`, through [`Host`]); never the 4322-line
//! `mig-minors`, which costs ~5 ms per read on a real driver.
//!
//! Every finding is data ([`VerifyError`]); the sentence is its `Display`.

use std::fmt;
use std::path::{Component, Path};

use mig_cdi_core::cdi::view::SpecNode;
use mig_cdi_core::cgroup::Access;
use mig_cdi_core::driver::{Capability, DriverError};
use mig_cdi_core::nodes::{HostEntry, NodeRole};
use mig_cdi_core::paths::{
    cap_node_path, classify, CapKey, NodePath, CAPS_MAJOR_NAME, NVIDIA_MAJOR_NAME,
};

use crate::alloc;
use crate::cgroupfs;
use crate::config::CapSpelling;
use crate::host::{DriverView, Host};
use crate::input::Container;
use crate::plan::CgroupMode;
use crate::request::{Request, MIG_CONFIG_DEVICES, MIG_MONITOR_DEVICES};
use crate::resolve::Resolved;

const REGENERATE: &str = "the spec is stale: regenerate it with `mig-cdi-gen generate` \
     (and check the device with `mig-cdi-gen list`)";

/// A node the hook will give the container, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedNode {
    /// Path inside the container, `/dev/...`.
    pub path: String,
    pub major: u32,
    pub minor: u32,
    /// Permission bits, from the driver.
    pub mode: u32,
    pub role: NodeRole,
    /// Device cgroup access the container needs.
    pub access: Access,
    /// For a capability node: which capability it is.
    pub cap: Option<CapKey>,
}

/// What is wrong with one node of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeProblem {
    /// The container path is not a plain path under `/dev`.
    NotUnderDev,
    /// The path is no NVIDIA node the driver knows.
    NotNvidia,
    /// A capability or GPU node among the spec-level (every device's) nodes.
    SpecLevel,
    HostMissing {
        host: String,
    },
    HostNotChar {
        host: String,
        what: &'static str,
    },
    HostUnreadable {
        host: String,
        error: String,
    },
    /// The spec's number is not the host node's.
    HostNumber {
        spec: (u32, u32),
        host: String,
        found: (u32, u32),
    },
    /// No such major in `/proc/devices`.
    NoMajor {
        name: &'static str,
    },
    /// The driver gives this path another number (`want`), or (for a
    /// capability) no capability of this GPU has the minor now.
    DriverSays {
        spec: (u32, u32),
        want: String,
    },
    /// The same path twice with different numbers.
    Twice {
        first: (u32, u32),
        second: (u32, u32),
    },
}

/// Why the device's node set is not one MIG device or one GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    NoNodes,
    NotOneGpu,
    NoGpu,
    /// Capabilities that are not one GI and one CI of the same instance.
    Caps {
        gpu: u32,
        named: Vec<String>,
    },
}

/// Why the device may not be injected.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Driver(#[from] DriverError),
    #[error("{}", node_text(device, node, problem))]
    Node {
        device: String,
        node: String,
        problem: NodeProblem,
    },
    #[error("spec device {device} {}; {REGENERATE}", shape_text(shape))]
    Shape { device: String, shape: Shape },
    #[error(
        "{var}=all asks for the MIG {file} capability, which the driver does not have \
         (/proc/driver/nvidia/capabilities/{file}); check the driver version"
    )]
    NoManagement { var: &'static str, file: String },
    #[error(
        "{} gives MIG management/monitoring of whole GPUs and needs CAP_SYS_ADMIN in the \
         container's bounding set (process.capabilities.bounding), which it lacks{}; add it \
         (e.g. --cap-add SYS_ADMIN) or unset the variable",
        asked.join(" and "),
        spelling_note(spelling)
    )]
    Management {
        asked: Vec<&'static str>,
        spelling: CapSpelling,
    },
    #[error(
        "the spec of {device} also gives {what}, which a prestart or createRuntime hook cannot \
         put into a container; use mig-cdi-runtime (it writes them into config.json for the \
         runtime), or CDI (podman --device {device}), or a spec without them \
         (`mig-cdi-gen generate --no-driver-files`)"
    )]
    OtherEdits { device: String, what: String },
    #[error("{0}")]
    Cgroup(String),
    #[error("{0}")]
    Read(#[from] mig_cdi_core::fsread::ReadError),
}

/// Why `cap_sys_admin` in another case does not count.
pub fn spelling_note(spelling: &CapSpelling) -> String {
    match spelling {
        CapSpelling::OtherCase(name) => format!(
            " (it names {:?}: runc ignores capability names that are not upper case, crun \
             accepts them, so mig-cdi-hook takes the safe side and treats the container as \
             unprivileged; write CAP_SYS_ADMIN)",
            crate::request::printable(name)
        ),
        _ => String::new(),
    }
}

fn numbers((major, minor): (u32, u32)) -> String {
    format!("{major}:{minor}")
}

fn node_text(device: &str, node: &str, problem: &NodeProblem) -> String {
    match problem {
        NodeProblem::NotUnderDev => format!(
            "spec device {device} has node path {node:?}, which is not a plain path under \
             /dev; mig-cdi-hook creates nodes only under /dev: {REGENERATE}"
        ),
        NodeProblem::NotNvidia => format!(
            "spec device {device} lists {node:?}, which is not an NVIDIA device node \
             (/dev/nvidiaN, /dev/nvidia-caps/nvidia-capM or a control node); mig-cdi-hook \
             injects nothing else — remove it from the spec, or {REGENERATE}"
        ),
        NodeProblem::SpecLevel => format!(
            "the spec of {device} lists {node} in its spec-level containerEdits, which every \
             device of the spec would get; GPU and capability nodes belong to one device — \
             {REGENERATE}"
        ),
        NodeProblem::HostMissing { host } => format!(
            "{host} (node {node} of {device}) does not exist on the host: the driver is not \
             loaded or the instance is gone; {REGENERATE}"
        ),
        NodeProblem::HostNotChar { host, what } => format!(
            "{host} (node {node} of {device}) is {what}, not a character device; {REGENERATE}"
        ),
        NodeProblem::HostUnreadable { host, error } => {
            format!("cannot examine {host} (node {node} of {device}): {error}")
        }
        NodeProblem::HostNumber { spec, host, found } => format!(
            "spec says {node} of {device} is char {}, but the host's {host} is {}; {REGENERATE}",
            numbers(*spec),
            numbers(*found)
        ),
        NodeProblem::NoMajor { name } => format!(
            "no \"{name}\" major in /proc/devices, but {device} needs {node}: is the driver \
             loaded? {REGENERATE}"
        ),
        NodeProblem::DriverSays { spec, want } => format!(
            "{node} of {device} is char {} in the spec, but the driver says {want}; {REGENERATE}",
            numbers(*spec)
        ),
        NodeProblem::Twice { first, second } => format!(
            "spec gives {node} of {device} twice, as {} and {}; {REGENERATE}",
            numbers(*first),
            numbers(*second)
        ),
    }
}

fn shape_text(shape: &Shape) -> String {
    match shape {
        Shape::NoNodes => "has no device nodes".into(),
        Shape::NotOneGpu => "must name exactly one GPU node (/dev/nvidiaN)".into(),
        Shape::NoGpu => "names no GPU node".into(),
        Shape::Caps { gpu, named } => format!(
            "must name the GPU-instance and compute-instance access capabilities of one \
             instance of GPU minor {gpu}, but names {}",
            named.join(", ")
        ),
    }
}

impl fmt::Display for CheckedNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}:{}", self.path, self.major, self.minor)
    }
}

/// What stage 3 hands to the plan.
#[derive(Debug)]
pub struct Verified {
    pub nodes: Vec<CheckedNode>,
    pub caps_major: Option<u32>,
    pub nvidia_major: u32,
    /// Minors of the `config` and `monitor` capabilities, when present.
    pub management_minors: Vec<u32>,
}

/// Check the device against the live driver and the container's
/// privileges for what it asked.
pub fn verify(
    host: &dyn Host,
    container: &Container,
    device: &Resolved,
) -> Result<Verified, VerifyError> {
    let request = &container.request;
    check_management(request, &container.sys_admin)?;
    let driver = host.driver()?;
    let mut nodes = check_device(device, host, &driver)?;
    for (wanted, key, var) in [
        (request.mig_config, CapKey::Config, MIG_CONFIG_DEVICES),
        (request.mig_monitor, CapKey::Monitor, MIG_MONITOR_DEVICES),
    ] {
        if wanted {
            nodes.push(management_node(key, var, host, &driver)?);
        }
    }
    let mut management_minors = Vec::new();
    for key in [CapKey::Config, CapKey::Monitor] {
        management_minors.extend(host.capability(key)?.map(|c| c.minor));
    }
    Ok(Verified {
        nodes,
        caps_major: driver.major(CAPS_MAJOR_NAME),
        nvidia_major: driver
            .major(NVIDIA_MAJOR_NAME)
            .expect("checked by check_device"),
        management_minors,
    })
}

/// The hook makes device nodes only: a device whose spec also gives
/// mounts, hooks or environment is refused, naming them (the runtime
/// wrapper and CDI runtimes apply those). The generator's own
/// `MIG_CDI_PROFILE` on a device and its verify/poststop hooks do not
/// count: the profile is for allocation (the container can do without),
/// and the hook records the lease itself.
pub fn nodes_only(device: &Resolved) -> Result<(), VerifyError> {
    let spec = &device.device;
    let mut what = Vec::new();
    // The device's profile and our own lease hooks are for the hook
    // itself (which records the lease), not edits to apply.
    let hooks = spec
        .edits
        .hooks
        .iter()
        .chain(&spec.spec_edits.hooks)
        .filter(|h| !alloc::is_lease_hook(h))
        .count();
    let env = spec
        .edits
        .env
        .iter()
        .filter(|e| !alloc::is_profile_env(e))
        .count()
        + spec.spec_edits.env.len();
    for (count, name) in [
        (
            spec.edits.mounts.len() + spec.spec_edits.mounts.len(),
            "mounts",
        ),
        (hooks, "hooks"),
        (env, "environment variables"),
    ] {
        if count > 0 {
            what.push(format!("{count} {name}"));
        }
    }
    if what.is_empty() {
        return Ok(());
    }
    Err(VerifyError::OtherEdits {
        device: device.qualified(),
        what: what.join(", "),
    })
}

/// Where the container's device access is enforced (for the hook, which
/// must act on it; a runtime wrapper leaves that to the runtime).
pub fn cgroup_mode(host: &dyn Host, pid: i32) -> Result<CgroupMode, VerifyError> {
    let proc_cgroup = host.proc_cgroup(pid)?;
    if cgroupfs::devices_path(&proc_cgroup).is_none() {
        return Ok(CgroupMode::Unified);
    }
    let mountinfo = host.mountinfo()?;
    cgroupfs::mode(&proc_cgroup, &mountinfo).map_err(VerifyError::Cgroup)
}

/// The container may get the MIG config/monitor capability only with
/// CAP_SYS_ADMIN in its bounding set, spelled as every runtime reads it.
pub fn check_management(request: &Request, spelling: &CapSpelling) -> Result<(), VerifyError> {
    let asked: Vec<&'static str> = [
        (request.mig_config, "NVIDIA_MIG_CONFIG_DEVICES=all"),
        (request.mig_monitor, "NVIDIA_MIG_MONITOR_DEVICES=all"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if asked.is_empty() || *spelling == CapSpelling::Exact {
        return Ok(());
    }
    Err(VerifyError::Management {
        asked,
        spelling: spelling.clone(),
    })
}

/// A container path must be a plain absolute path under `/dev/`.
fn plain_dev_path(path: &str) -> bool {
    let p = Path::new(path);
    p.is_absolute()
        && p.starts_with("/dev")
        && p.components().count() >= 3
        && p.components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)))
        && !path.ends_with('/')
        && !path.contains("//")
}

/// Check one node; `caps_now` are the capabilities that exist now for the
/// device's GPU (or the management one asked for).
fn check_node(
    node: &SpecNode,
    device: &str,
    host: &dyn Host,
    driver: &DriverView,
    caps_now: &[(CapKey, Capability)],
) -> Result<CheckedNode, VerifyError> {
    let fail = |problem| VerifyError::Node {
        device: device.to_string(),
        node: node.path.clone(),
        problem,
    };
    if !plain_dev_path(&node.path) {
        return Err(fail(NodeProblem::NotUnderDev));
    }
    let meaning = classify(&node.path);
    if meaning == NodePath::Other {
        return Err(fail(NodeProblem::NotNvidia));
    }
    let host_path = node.host_path();
    let host_text = || host.host_display(host_path);
    let (host_major, host_minor) = match host.host_node(host_path) {
        HostEntry::Char { major, minor, .. } => (major, minor),
        HostEntry::Missing => return Err(fail(NodeProblem::HostMissing { host: host_text() })),
        HostEntry::Other(what) => {
            return Err(fail(NodeProblem::HostNotChar {
                host: host_text(),
                what,
            }))
        }
        HostEntry::Unreadable(error) => {
            return Err(fail(NodeProblem::HostUnreadable {
                host: host_text(),
                error,
            }))
        }
    };
    let major = node.major.unwrap_or(host_major);
    let minor = node.minor.unwrap_or(host_minor);
    if (major, minor) != (host_major, host_minor) {
        return Err(fail(NodeProblem::HostNumber {
            spec: (major, minor),
            host: host_text(),
            found: (host_major, host_minor),
        }));
    }
    let want_major = |name: &'static str| {
        driver
            .major(name)
            .ok_or_else(|| fail(NodeProblem::NoMajor { name }))
    };
    let mismatch = |want: String| {
        fail(NodeProblem::DriverSays {
            spec: (major, minor),
            want,
        })
    };
    let checked = |mode: u32, role: NodeRole, cap: Option<CapKey>| CheckedNode {
        path: node.path.clone(),
        major,
        minor,
        mode,
        role,
        access: node.access,
        cap,
    };
    match meaning {
        NodePath::Gpu(gpu) => {
            let nvidia = want_major(NVIDIA_MAJOR_NAME)?;
            if (major, minor) != (nvidia, gpu) {
                return Err(mismatch(format!("{nvidia}:{gpu}")));
            }
            Ok(checked(driver.device_file_mode, NodeRole::Gpu, None))
        }
        NodePath::Control(control) => {
            let want = control.major(|name| driver.major(name)).ok_or_else(|| {
                fail(NodeProblem::NoMajor {
                    name: control.major_name,
                })
            })?;
            if (major, minor) != (want, control.minor) {
                return Err(mismatch(format!("{want}:{}", control.minor)));
            }
            Ok(checked(
                control.mode(driver.device_file_mode),
                NodeRole::Control,
                None,
            ))
        }
        NodePath::Cap(cap_minor) => {
            let caps = want_major(CAPS_MAJOR_NAME)?;
            if (major, minor) != (caps, cap_minor) {
                return Err(mismatch(format!("{caps}:{cap_minor}")));
            }
            let Some((key, capability)) = caps_now.iter().find(|(_, c)| c.minor == cap_minor)
            else {
                let now = caps_now
                    .iter()
                    .map(|(k, c)| format!("{} = {}", k.file(), c.minor))
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
            Ok(checked(capability.mode, key.role(), Some(*key)))
        }
        NodePath::Other => unreachable!("refused above"),
    }
}

/// Check every node of the resolved device and its spec's control nodes.
/// A MIG device must be exactly one GPU node plus the GPU-instance and
/// compute-instance capabilities of one instance of that GPU; the
/// spec-level nodes must be control nodes.
pub fn check_device(
    resolved: &Resolved,
    host: &dyn Host,
    driver: &DriverView,
) -> Result<Vec<CheckedNode>, VerifyError> {
    let device = resolved.qualified();
    let shape = |shape| VerifyError::Shape {
        device: device.clone(),
        shape,
    };
    let nodes = &resolved.device.nodes;
    if nodes.is_empty() {
        return Err(shape(Shape::NoNodes));
    }
    let gpus: Vec<u32> = nodes
        .iter()
        .filter_map(|n| match classify(&n.path) {
            NodePath::Gpu(minor) => Some(minor),
            _ => None,
        })
        .collect();
    let has_caps = nodes
        .iter()
        .any(|n| matches!(classify(&n.path), NodePath::Cap(_)));
    let caps_now = match (&gpus[..], has_caps) {
        ([gpu], true) => host.gpu_capabilities(*gpu)?,
        ([_], false) => Vec::new(),
        _ => return Err(shape(Shape::NotOneGpu)),
    };
    let mut out: Vec<CheckedNode> = Vec::new();
    let mut device_nodes = Vec::new();
    for node in nodes {
        let checked = check_node(node, &device, host, driver, &caps_now)?;
        device_nodes.push(checked.clone());
        push_unique(&mut out, checked, &device)?;
    }
    for node in &resolved.device.spec_nodes {
        if matches!(classify(&node.path), NodePath::Gpu(_) | NodePath::Cap(_)) {
            return Err(VerifyError::Node {
                device: device.clone(),
                node: node.path.clone(),
                problem: NodeProblem::SpecLevel,
            });
        }
        let checked = check_node(node, &device, host, driver, &caps_now)?;
        push_unique(&mut out, checked, &device)?;
    }
    check_shape(&device_nodes).map_err(shape)?;
    Ok(out)
}

fn push_unique(
    out: &mut Vec<CheckedNode>,
    node: CheckedNode,
    device: &str,
) -> Result<(), VerifyError> {
    match out.iter().find(|n| n.path == node.path) {
        Some(same) if (same.major, same.minor) == (node.major, node.minor) => Ok(()),
        Some(other) => Err(VerifyError::Node {
            device: device.to_string(),
            node: node.path.clone(),
            problem: NodeProblem::Twice {
                first: (other.major, other.minor),
                second: (node.major, node.minor),
            },
        }),
        None => {
            out.push(node);
            Ok(())
        }
    }
}

fn check_shape(nodes: &[CheckedNode]) -> Result<(), Shape> {
    let Some(gpu) = nodes
        .iter()
        .find(|n| n.role == NodeRole::Gpu)
        .map(|n| n.minor)
    else {
        return Err(Shape::NoGpu);
    };
    let caps: Vec<CapKey> = nodes.iter().filter_map(|n| n.cap).collect();
    if caps.is_empty() {
        // A whole GPU (MIG disabled).
        return Ok(());
    }
    let gi = caps.iter().find_map(|k| match *k {
        CapKey::Gi { gpu, gi } => Some((gpu, gi)),
        _ => None,
    });
    let ci = caps.iter().find_map(|k| match *k {
        CapKey::Ci { gpu, gi, .. } => Some((gpu, gi)),
        _ => None,
    });
    match (gi, ci) {
        (Some(g), Some(c)) if caps.len() == 2 && g.0 == gpu && c == g => Ok(()),
        _ => Err(Shape::Caps {
            gpu,
            named: caps.iter().map(|k| k.file()).collect(),
        }),
    }
}

/// The `mig/config` or `mig/monitor` capability node, checked like any
/// other node.
fn management_node(
    key: CapKey,
    var: &'static str,
    host: &dyn Host,
    driver: &DriverView,
) -> Result<CheckedNode, VerifyError> {
    let capability = host
        .capability(key)?
        .ok_or_else(|| VerifyError::NoManagement {
            var,
            file: key.file(),
        })?;
    let node = SpecNode {
        path: cap_node_path(capability.minor),
        host_path: None,
        major: None,
        minor: Some(capability.minor),
        access: Access::RW,
    };
    check_node(&node, var, host, driver, &[(key, capability)])
}

#[cfg(test)]
pub(crate) mod tests {
    use mig_cdi_core::cdi::view::SpecDevice;

    use super::*;
    use crate::host::fake::{char_dev, FakeHost};

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
            edits: Default::default(),
            spec_edits: Default::default(),
            file: "/etc/cdi/nvidia.com-gpu.json".into(),
        };
        Resolved::new(vec!["0:0".into()], device)
    }

    pub fn check(resolved: &Resolved, host: &FakeHost) -> Result<Vec<CheckedNode>, VerifyError> {
        check_device(resolved, host, &host.driver().unwrap())
    }

    fn stale(resolved: &Resolved, host: &FakeHost) -> String {
        let err = check(resolved, host).unwrap_err();
        assert!(
            matches!(err, VerifyError::Node { .. } | VerifyError::Shape { .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("mig-cdi-gen generate"), "{text}");
        text
    }

    #[test]
    fn fresh_device_gives_all_nodes_with_driver_modes() {
        let nodes = check(&mig_device(12, 13), &FakeHost::h200()).unwrap();
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
        let mut host = FakeHost::h200();
        host.set_minor(CapKey::Gi { gpu: 0, gi: 1 }, 99);
        let text = stale(&mig_device(12, 13), &host);
        assert!(
            text.contains(
                "no MIG capability of this GPU has minor 12 now (it has gpu0/mig/gi1/access = 99"
            ),
            "{text}"
        );
    }

    #[test]
    fn vanished_instance_is_stale() {
        let mut host = FakeHost::h200();
        host.caps.retain(|(k, _)| {
            *k != CapKey::Ci {
                gpu: 0,
                gi: 1,
                ci: 0,
            }
        });
        let text = stale(&mig_device(12, 13), &host);
        assert!(text.contains("has minor 13 now"), "{text}");
        host.caps.clear();
        let text = stale(&mig_device(12, 13), &host);
        assert!(text.contains("it has no MIG instances"), "{text}");
    }

    #[test]
    fn moved_major_is_stale() {
        let mut host = FakeHost::h200();
        let driver = host.driver.as_mut().unwrap();
        for (name, major) in &mut driver.majors {
            if name == "nvidia-caps" {
                *major = 240;
            }
        }
        stale(&mig_device(12, 13), &host);
    }

    #[test]
    fn host_node_with_other_number_or_missing_is_stale() {
        let mut host = FakeHost::h200();
        host.dev.insert(cap_node_path(13), char_dev(241, 14, 0o444));
        let text = stale(&mig_device(12, 13), &host);
        assert!(text.contains("241:14"), "{text}");
        let mut host = FakeHost::h200();
        host.dev.remove("/dev/nvidia-uvm");
        stale(&mig_device(12, 13), &host);
    }

    #[test]
    fn caps_of_two_instances_are_refused() {
        stale(&mig_device(12, 22), &FakeHost::h200());
        stale(&mig_device(12, 1), &FakeHost::h200());
    }

    #[test]
    fn node_paths_outside_dev_are_refused() {
        let mut device = mig_device(12, 13);
        device
            .device
            .spec_nodes
            .push(node("/dev/../etc/x", 195, 255));
        stale(&device, &FakeHost::h200());
        let mut device = mig_device(12, 13);
        device.device.spec_nodes[0].path = "/etc/nvidiactl".into();
        stale(&device, &FakeHost::h200());
    }

    #[test]
    fn nodes_that_are_not_the_devices_own_are_refused_by_name() {
        let mut host = FakeHost::h200();
        host.dev.insert("/dev/mem".into(), char_dev(1, 1, 0o640));
        host.dev.insert("/dev/foo".into(), char_dev(241, 21, 0o444));
        host.dev.insert(
            "/dev/nvidia-caps/nvidia-cap021".into(),
            char_dev(241, 21, 0o444),
        );
        for extra in [
            node("/dev/mem", 1, 1),
            node("/dev/foo", 241, 21),
            node("/dev/nvidia-caps/nvidia-cap021", 241, 21),
        ] {
            let mut device = mig_device(12, 13);
            let path = extra.path.clone();
            device.device.nodes.push(extra);
            let text = stale(&device, &host);
            assert!(text.contains(&format!("lists {path:?}")), "{text}");
        }
        // Another instance's capability under its own name: two instances.
        let mut device = mig_device(12, 13);
        device.device.nodes.push(node(&cap_node_path(21), 241, 21));
        stale(&device, &host);
        // Capability or GPU nodes in the spec-level edits.
        for extra in [
            node(&cap_node_path(12), 241, 12),
            node("/dev/nvidia0", 195, 0),
        ] {
            let mut device = mig_device(12, 13);
            device.device.spec_nodes.push(extra);
            let text = stale(&device, &host);
            assert!(text.contains("spec-level containerEdits"), "{text}");
        }
        // A host path that points at another device than the path names.
        let mut device = mig_device(12, 13);
        device.device.nodes[1].host_path = Some(cap_node_path(21));
        stale(&device, &host);
    }

    #[test]
    fn numbers_may_come_from_the_host() {
        let mut device = mig_device(12, 13);
        device.device.nodes[0].major = None;
        device.device.nodes[0].minor = None;
        assert!(check(&device, &FakeHost::h200()).is_ok());
    }

    #[test]
    fn management_nodes_come_from_the_driver() {
        let host = FakeHost::h200();
        let driver = host.driver().unwrap();
        let config = management_node(CapKey::Config, "X", &host, &driver).unwrap();
        assert_eq!(
            (config.path.as_str(), config.minor, config.mode),
            ("/dev/nvidia-caps/nvidia-cap1", 1, 0o400)
        );
        let monitor = management_node(CapKey::Monitor, "X", &host, &driver).unwrap();
        assert_eq!((monitor.minor, monitor.mode), (2, 0o444));
    }

    #[test]
    fn management_needs_sys_admin_spelled_exactly() {
        let mut r = Request {
            wanted: crate::request::Wanted::All,
            source: "x".into(),
            mig_config: false,
            mig_monitor: false,
        };
        assert!(check_management(&r, &CapSpelling::Absent).is_ok());
        r.mig_monitor = true;
        let err = check_management(&r, &CapSpelling::Absent)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("NVIDIA_MIG_MONITOR_DEVICES=all") && err.contains("CAP_SYS_ADMIN"),
            "{err}"
        );
        assert!(check_management(&r, &CapSpelling::Exact).is_ok());
        let err = check_management(&r, &CapSpelling::OtherCase("cap_sys_admin".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("runc ignores"), "{err}");
    }

    #[test]
    fn the_generators_profile_env_is_no_edit_a_hook_must_refuse() {
        let mut resolved = mig_device(12, 13);
        resolved.device.edits.env = vec!["MIG_CDI_PROFILE=1g.18gb".into()];
        assert!(nodes_only(&resolved).is_ok());
        resolved.device.edits.env.push("LD_PRELOAD=/x.so".into());
        let err = nodes_only(&resolved).unwrap_err().to_string();
        assert!(err.contains("1 environment variables"), "{err}");
        resolved.device.edits.env.truncate(1);
        resolved.device.spec_edits.env = vec!["MIG_CDI_PROFILE=1g.18gb".into()];
        assert!(nodes_only(&resolved).is_err(), "only a device's own counts");
    }
}
