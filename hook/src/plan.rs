//! From a resolved, fresh device to an [`InjectionPlan`]: the checks that
//! need the container's configuration, all pure.
//!
//! - CUDA's one-device rule: exactly one distinct device.
//! - `NVIDIA_MIG_CONFIG_DEVICES` / `NVIDIA_MIG_MONITOR_DEVICES` only for a
//!   container whose bounding set holds CAP_SYS_ADMIN (NVIDIA's notion of
//!   privileged).
//! - Device cgroup rules: a non-privileged container whose rules already
//!   let it open another MIG instance's capability node is refused (MIG
//!   isolation would be void); on cgroup v1 the plan adds `c M:m rw` for
//!   each node the rules do not allow yet (`r` only where the spec's
//!   `permissions` ask for no more, as mig-cdi-gen writes for capability
//!   nodes); on cgroup v2 the runtime's eBPF
//!   filter is built from `config.json` alone, so the rules must allow every
//!   node already and the refusal prints the `--device-cgroup-rule` values.
//! - The hook's own capabilities: it says which ones it lacks, up front.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use caps::Capability;
use mig_cdi_core::cgroup::{self, DeviceRule};
use mig_cdi_core::nodes::cap_node_path;

use crate::error::HookError;
use crate::fresh::CheckedNode;
use crate::request::Request;
use crate::spec::Resolved;

/// How the container's device access is enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupMode {
    /// cgroup v1 `devices` controller; the container's cgroup folder.
    V1 { dir: PathBuf },
    /// cgroup v2 (eBPF from config.json), or no devices controller.
    Unified,
}

/// Lines to append to the container's v1 devices cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupWrite {
    pub allow: PathBuf,
    pub deny: PathBuf,
    /// `c 195:0 rw`, one per node the rules do not allow yet (with the
    /// node's access).
    pub lines: Vec<String>,
}

/// One node to create, relative to the container root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedNode {
    /// `dev/nvidia-caps/nvidia-cap12`.
    pub rel: String,
    pub major: u32,
    pub minor: u32,
    pub mode: u32,
}

/// Everything the kernel step does, decided in advance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectionPlan {
    /// The container's init process (its mount namespace holds the root).
    pub pid: i32,
    /// The container's root filesystem, as that mount namespace sees it.
    pub root: PathBuf,
    /// Host uid and gid of the container's root user.
    pub owner: (u32, u32),
    /// Directories to make if missing, parents first (`dev`,
    /// `dev/nvidia-caps`), mode 0755.
    pub dirs: Vec<String>,
    pub nodes: Vec<PlannedNode>,
    pub cgroup: Option<CgroupWrite>,
}

/// CUDA's rule: one MIG device per container. Several names of one device
/// count once.
pub fn one_device(groups: Vec<Resolved>, request: &Request) -> Result<Resolved, HookError> {
    if groups.len() == 1 {
        return Ok(groups.into_iter().next().expect("one group"));
    }
    let any_mig = groups.iter().any(Resolved::is_mig);
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
    let rule = if any_mig {
        "CUDA enumerates only one MIG device per process, so a container gets exactly one"
    } else {
        "mig-cdi-hook gives a container exactly one device (use CDI for several whole GPUs)"
    };
    Err(HookError::OneDevice(format!(
        "{} asks for {} {}devices: {listed}; {rule} — request one of them",
        request.source,
        groups.len(),
        if any_mig { "MIG " } else { "" }
    )))
}

/// Inputs of [`build`].
pub struct PlanInput<'a> {
    pub pid: i32,
    pub root: PathBuf,
    pub owner: (u32, u32),
    pub nodes: Vec<CheckedNode>,
    pub rules: &'a [DeviceRule],
    /// CAP_SYS_ADMIN in the container's bounding set.
    pub privileged: bool,
    /// The `nvidia-caps` major, when the driver has one.
    pub caps_major: Option<u32>,
    /// Minors of the `config` and `monitor` capabilities, when present.
    pub management_minors: Vec<u32>,
    pub cgroup: CgroupMode,
}

pub fn build(input: PlanInput<'_>) -> Result<InjectionPlan, HookError> {
    if !input.privileged {
        if let Some(caps_major) = input.caps_major {
            check_no_leak(
                &input.nodes,
                input.rules,
                caps_major,
                &input.management_minors,
            )?;
        }
    }
    let missing: Vec<&CheckedNode> = input
        .nodes
        .iter()
        .filter(|n| !cgroup::missing(input.rules, n.major, n.minor, n.access).is_empty())
        .collect();
    let lines: Vec<String> = missing
        .iter()
        .map(|n| DeviceRule::allow_char(n.major, n.minor, n.access).device_text())
        .collect();
    let cgroup = match input.cgroup {
        CgroupMode::V1 { dir } => (!lines.is_empty()).then(|| CgroupWrite {
            allow: dir.join("devices.allow"),
            deny: dir.join("devices.deny"),
            lines,
        }),
        CgroupMode::Unified if lines.is_empty() => None,
        CgroupMode::Unified => {
            let flags = lines
                .iter()
                .map(|l| format!("--device-cgroup-rule='{l}'"))
                .collect::<Vec<_>>()
                .join(" ");
            let paths = missing
                .iter()
                .map(|n| n.path.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(HookError::Cgroup(format!(
                "cgroup v2: the runtime builds the device filter from config.json, whose \
                 linux.resources.devices does not allow {paths}; the container could not open \
                 them — add {flags} (or the same rules to linux.resources.devices)"
            )));
        }
    };
    let mut dirs: Vec<String> = Vec::new();
    let mut nodes = Vec::new();
    for node in &input.nodes {
        let rel = node.path.trim_start_matches('/').to_string();
        let mut ancestors: Vec<&str> = Vec::new();
        let mut at = Path::new(&rel).parent();
        while let Some(dir) = at.filter(|d| !d.as_os_str().is_empty()) {
            ancestors.push(dir.to_str().expect("paths are UTF-8"));
            at = dir.parent();
        }
        for dir in ancestors.into_iter().rev() {
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_string());
            }
        }
        nodes.push(PlannedNode {
            rel,
            major: node.major,
            minor: node.minor,
            mode: node.mode,
        });
    }
    Ok(InjectionPlan {
        pid: input.pid,
        root: input.root,
        owner: input.owner,
        dirs,
        nodes,
        cgroup,
    })
}

/// Refuse rules that already open another instance's capability node.
///
/// Exact without the driver's table of every capability minor: a minor no
/// rule names is matched only by wildcard rules, so all such minors get the
/// same verdict and one of them stands for the rest; minors that rules
/// name explicitly, and the config/monitor capabilities, are tried one by
/// one.
fn check_no_leak(
    nodes: &[CheckedNode],
    rules: &[DeviceRule],
    caps_major: u32,
    management: &[u32],
) -> Result<(), HookError> {
    let ours: BTreeSet<u32> = nodes
        .iter()
        .filter(|n| n.major == caps_major)
        .map(|n| n.minor)
        .collect();
    let named: BTreeSet<u32> = rules
        .iter()
        .filter(|r| r.major.is_none() || r.major == Some(caps_major))
        .filter_map(|r| r.minor)
        .chain(management.iter().copied())
        .collect();
    let stand_in = (1..)
        .find(|m| !ours.contains(m) && !named.contains(m))
        .expect("a free minor");
    for minor in named.into_iter().chain([stand_in]) {
        if ours.contains(&minor) {
            continue;
        }
        if let Some(index) = cgroup::opens(rules, caps_major, minor) {
            return Err(HookError::Cgroup(format!(
                "config.json linux.resources.devices[{index}] ({}) lets this non-privileged \
                 container open MIG capability nodes of other instances (e.g. {} = \
                 {caps_major}:{minor}), which voids MIG isolation; narrow the rule to the \
                 requested device's nodes, or give the container CAP_SYS_ADMIN if it is meant \
                 to be privileged",
                rules[index],
                cap_node_path(minor)
            )));
        }
    }
    Ok(())
}

/// What the hook's own effective set lacks for this plan, with why.
pub fn missing_own_caps(
    plan: &InjectionPlan,
    effective: &HashSet<Capability>,
    euid: u32,
    egid: u32,
) -> Result<(), HookError> {
    let mut need = vec![(Capability::CAP_MKNOD, "create device nodes")];
    if plan.owner != (euid, egid) {
        need.push((
            Capability::CAP_CHOWN,
            "give the nodes to the container's root user",
        ));
    }
    if plan.cgroup.is_some() {
        need.push((
            Capability::CAP_SYS_ADMIN,
            "allow the nodes in the container's v1 devices cgroup",
        ));
    }
    let missing: Vec<String> = need
        .iter()
        .filter(|(cap, _)| !effective.contains(cap))
        .map(|(cap, why)| format!("{cap} (to {why})"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(HookError::Privilege(format!(
        "mig-cdi-hook lacks {} in its effective capability set; the container runtime must run \
         it as root with full capabilities (it runs on the host, never inside the container)",
        missing.join(", ")
    )))
}

/// The container may get the MIG config/monitor capability only with
/// CAP_SYS_ADMIN in its bounding set.
pub fn check_management(request: &Request, privileged: bool) -> Result<(), HookError> {
    let asked: Vec<&str> = [
        (request.mig_config, "NVIDIA_MIG_CONFIG_DEVICES=all"),
        (request.mig_monitor, "NVIDIA_MIG_MONITOR_DEVICES=all"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if asked.is_empty() || privileged {
        return Ok(());
    }
    Err(HookError::Privilege(format!(
        "{} gives MIG management/monitoring of whole GPUs and needs CAP_SYS_ADMIN in the \
         container's bounding set (process.capabilities.bounding), which it lacks; add it (e.g. \
         --cap-add SYS_ADMIN) or unset the variable",
        asked.join(" and ")
    )))
}

#[cfg(test)]
mod tests {
    use mig_cdi_core::cgroup::{Access, DeviceType};

    use super::*;
    use crate::fresh::check_device;
    use crate::fresh::tests::{mig_device, FakeLive};
    use crate::request::Wanted;

    fn request() -> Request {
        Request {
            wanted: Wanted::All,
            source: "NVIDIA_VISIBLE_DEVICES=x".into(),
            mig_config: false,
            mig_monitor: false,
        }
    }

    fn deny_all() -> DeviceRule {
        DeviceRule {
            allow: false,
            kind: DeviceType::All,
            major: None,
            minor: None,
            access: Access::ALL,
        }
    }

    fn allow(kind: DeviceType, major: Option<u32>, minor: Option<u32>) -> DeviceRule {
        DeviceRule {
            allow: true,
            kind,
            major,
            minor,
            access: Access::ALL,
        }
    }

    fn input<'a>(rules: &'a [DeviceRule], live: &'a FakeLive, cgroup: CgroupMode) -> PlanInput<'a> {
        PlanInput {
            pid: 42,
            root: "/run/c/rootfs".into(),
            owner: (0, 0),
            nodes: check_device(&mig_device(12, 13), live).unwrap(),
            rules,
            privileged: false,
            caps_major: Some(241),
            management_minors: vec![1, 2],
            cgroup,
        }
    }

    #[test]
    fn two_devices_are_refused_with_names_and_rule() {
        let a = mig_device(12, 13);
        let mut b = mig_device(21, 22);
        b.names = vec!["0:1".into(), "MIG-bbbb".into()];
        b.device.name = "0:1".into();
        let err = one_device(vec![a.clone(), b], &request())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("asks for 2 MIG devices: 0:0, 0:1 = MIG-bbbb"),
            "{err}"
        );
        assert!(err.contains("only one MIG device per process"), "{err}");
        assert_eq!(one_device(vec![a.clone()], &request()).unwrap(), a);
    }

    #[test]
    fn v1_plan_adds_missing_rules_dirs_and_nodes() {
        let live = FakeLive::h200();
        let rules = [deny_all(), allow(DeviceType::Char, Some(195), Some(255))];
        let plan = build(input(
            &rules,
            &live,
            CgroupMode::V1 {
                dir: "/sys/fs/cgroup/devices/c1".into(),
            },
        ))
        .unwrap();
        assert_eq!(plan.dirs, ["dev", "dev/nvidia-caps"]);
        assert_eq!(plan.nodes.len(), 6);
        assert_eq!(plan.nodes[1].rel, "dev/nvidia-caps/nvidia-cap12");
        let cg = plan.cgroup.unwrap();
        assert_eq!(
            cg.allow,
            PathBuf::from("/sys/fs/cgroup/devices/c1/devices.allow")
        );
        assert_eq!(
            cg.lines,
            [
                "c 195:0 rw",
                "c 241:12 rw",
                "c 241:13 rw",
                "c 238:0 rw",
                "c 238:1 rw"
            ]
        );
    }

    #[test]
    fn wildcard_on_caps_major_is_a_leak_naming_the_rule() {
        let live = FakeLive::h200();
        for rules in [
            vec![deny_all(), allow(DeviceType::Char, Some(241), None)],
            vec![deny_all(), allow(DeviceType::All, None, None)],
            vec![deny_all(), allow(DeviceType::Char, None, Some(21))],
            vec![allow(DeviceType::Char, None, None)],
        ] {
            let err = build(input(&rules, &live, CgroupMode::Unified))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("linux.resources.devices[") && err.contains("voids MIG isolation"),
                "{err}"
            );
        }
        // Rules naming only the device's own capability nodes are fine; one
        // naming another minor is not.
        let own = [
            deny_all(),
            allow(DeviceType::Char, Some(241), Some(12)),
            allow(DeviceType::Char, Some(241), Some(13)),
        ];
        assert!(
            build(input(&own, &live, CgroupMode::Unified)).is_err(),
            "v2: other nodes missing"
        );
        assert!(build(input(&own, &live, CgroupMode::V1 { dir: "/x".into() })).is_ok());
        let other = [deny_all(), allow(DeviceType::Char, Some(241), Some(5))];
        let err = build(input(&other, &live, CgroupMode::V1 { dir: "/x".into() })).unwrap_err();
        assert!(err.to_string().contains("nvidia-cap5 = 241:5"), "{err}");
        let config = [deny_all(), allow(DeviceType::Char, Some(241), Some(1))];
        let err = build(input(&config, &live, CgroupMode::V1 { dir: "/x".into() })).unwrap_err();
        assert!(err.to_string().contains("nvidia-cap1 = 241:1"), "{err}");
        // A later deny closes it again.
        let rules = [
            deny_all(),
            allow(DeviceType::Char, Some(241), None),
            DeviceRule {
                allow: false,
                ..allow(DeviceType::Char, Some(241), None)
            },
        ];
        assert!(build(input(&rules, &live, CgroupMode::V1 { dir: "/x".into() })).is_ok());
        // Privileged containers may.
        let rules = [allow(DeviceType::All, None, None)];
        let mut privileged = input(&rules, &live, CgroupMode::Unified);
        privileged.privileged = true;
        assert!(build(privileged).is_ok());
    }

    #[test]
    fn unified_needs_the_rules_in_config_and_prints_them() {
        let live = FakeLive::h200();
        let rules = [deny_all(), allow(DeviceType::Char, Some(195), None)];
        let err = build(input(&rules, &live, CgroupMode::Unified))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "--device-cgroup-rule='c 241:12 rw' --device-cgroup-rule='c 241:13 rw' \
                 --device-cgroup-rule='c 238:0 rw' --device-cgroup-rule='c 238:1 rw'"
            ),
            "{err}"
        );
        assert!(!err.contains("c 195:0"), "{err}");
        let mut rules = vec![deny_all()];
        for (major, minor) in [
            (195, 0),
            (241, 12),
            (241, 13),
            (195, 255),
            (238, 0),
            (238, 1),
        ] {
            rules.push(DeviceRule::allow_char(major, minor, Access::RW));
        }
        let plan = build(input(&rules, &live, CgroupMode::Unified)).unwrap();
        assert_eq!(plan.cgroup, None);
    }

    #[test]
    fn spec_permissions_set_the_access_asked_for() {
        let live = FakeLive::h200();
        let rules = [deny_all()];
        let mut inp = input(&rules, &live, CgroupMode::V1 { dir: "/x".into() });
        for n in inp.nodes.iter_mut().filter(|n| n.major == 241) {
            n.access = Access::READ;
        }
        let plan = build(inp).unwrap();
        let lines = plan.cgroup.unwrap().lines;
        assert!(lines.contains(&"c 241:12 r".to_string()), "{lines:?}");
        assert!(lines.contains(&"c 195:0 rw".to_string()), "{lines:?}");
        // On v2, read-only rules for read-only nodes are enough.
        let mut rules = vec![deny_all()];
        for (major, minor, access) in [
            (195, 0, Access::RW),
            (241, 12, Access::READ),
            (241, 13, Access::READ),
            (195, 255, Access::RW),
            (238, 0, Access::RW),
            (238, 1, Access::RW),
        ] {
            rules.push(DeviceRule::allow_char(major, minor, access));
        }
        let mut inp = input(&rules, &live, CgroupMode::Unified);
        for n in inp.nodes.iter_mut().filter(|n| n.major == 241) {
            n.access = Access::READ;
        }
        assert_eq!(build(inp).unwrap().cgroup, None);
    }

    #[test]
    fn own_caps_are_named_with_reasons() {
        let live = FakeLive::h200();
        let rules = [deny_all()];
        let plan = build(input(&rules, &live, CgroupMode::V1 { dir: "/x".into() })).unwrap();
        let all: HashSet<Capability> = caps::all();
        assert!(missing_own_caps(&plan, &all, 0, 0).is_ok());
        let mut some = all.clone();
        some.remove(&Capability::CAP_MKNOD);
        some.remove(&Capability::CAP_SYS_ADMIN);
        let err = missing_own_caps(&plan, &some, 0, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CAP_MKNOD (to create device nodes), CAP_SYS_ADMIN"),
            "{err}"
        );
        let err = missing_own_caps(&plan, &some, 5, 0)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("CAP_CHOWN"), "{err}");
        some.remove(&Capability::CAP_CHOWN);
        assert!(missing_own_caps(&plan, &some, 5, 0)
            .unwrap_err()
            .to_string()
            .contains("CAP_CHOWN"));
    }

    #[test]
    fn management_needs_sys_admin_in_bounding_set() {
        let mut r = request();
        assert!(check_management(&r, false).is_ok());
        r.mig_monitor = true;
        let err = check_management(&r, false).unwrap_err().to_string();
        assert!(
            err.contains("NVIDIA_MIG_MONITOR_DEVICES=all") && err.contains("CAP_SYS_ADMIN"),
            "{err}"
        );
        assert!(check_management(&r, true).is_ok());
    }
}
