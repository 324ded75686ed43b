//! Stage 4, plan: from a verified device to an [`InjectionPlan`], with the
//! checks that need the container's configuration, all pure.
//!
//! - Device cgroup rules: a non-privileged container whose rules already
//!   let it open another MIG instance's capability node, or another GPU's
//!   `/dev/nvidiaN`, is refused (MIG and GPU isolation would be void); on
//!   cgroup v1 the plan adds `c M:m rw` for each node the rules do not
//!   allow yet (`r` only where the spec's `permissions` ask for no more, as
//!   mig-cdi-gen writes for capability nodes); on cgroup v2 the runtime's
//!   eBPF filter is built from `config.json` alone, so the rules must allow
//!   every node already and the refusal prints the `--device-cgroup-rule`
//!   values.
//! - The hook's own capabilities: it says which ones it lacks, up front.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use caps::Capability;
use mig_cdi_core::cgroup::{self, DeviceRule};
use mig_cdi_core::paths::{cap_node_path, gpu_node_path};

use crate::config::CapSpelling;
use crate::host::Privileges;
use crate::verify::{spelling_note, CheckedNode};

/// Why no plan can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "config.json linux.resources.devices[{index}] ({rule}) lets this non-privileged \
         container open {what} (e.g. {path} = {major}:{minor}), which voids {isolation} \
         isolation; narrow the rule to the requested device's nodes, or give the container \
         CAP_SYS_ADMIN if it is meant to be privileged{}",
        spelling_note(spelling)
    )]
    Leak {
        index: usize,
        rule: String,
        what: &'static str,
        isolation: &'static str,
        path: String,
        major: u32,
        minor: u32,
        spelling: CapSpelling,
    },
    #[error(
        "cgroup v2: the runtime builds the device filter from config.json, whose \
         linux.resources.devices does not allow {}; the container could not open them — add {} \
         (or the same rules to linux.resources.devices)",
        paths.join(", "),
        lines.iter().map(|l| format!("--device-cgroup-rule='{l}'")).collect::<Vec<_>>().join(" ")
    )]
    Unified {
        paths: Vec<String>,
        lines: Vec<String>,
    },
    #[error(
        "mig-cdi-hook lacks {} in its effective capability set; the container runtime must run \
         it as root with full capabilities (it runs on the host, never inside the container)",
        missing.join(", ")
    )]
    OwnCaps { missing: Vec<String> },
}

pub use crate::cgroupfs::CgroupMode;

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

/// Inputs of [`build`].
pub struct PlanInput<'a> {
    pub pid: i32,
    pub root: PathBuf,
    pub owner: (u32, u32),
    pub nodes: Vec<CheckedNode>,
    pub rules: &'a [DeviceRule],
    /// CAP_SYS_ADMIN in the container's bounding set, as spelled there.
    pub sys_admin: CapSpelling,
    /// The `nvidia-caps` major, when the driver has one.
    pub caps_major: Option<u32>,
    /// The `nvidia` major.
    pub nvidia_major: u32,
    /// Minors of the `config` and `monitor` capabilities, when present.
    pub management_minors: Vec<u32>,
    pub cgroup: CgroupMode,
}

pub fn build(input: PlanInput<'_>) -> Result<InjectionPlan, PlanError> {
    check_rules(&Rules {
        nodes: &input.nodes,
        rules: input.rules,
        sys_admin: &input.sys_admin,
        caps_major: input.caps_major,
        nvidia_major: input.nvidia_major,
        management_minors: &input.management_minors,
    })?;
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
            return Err(PlanError::Unified {
                paths: missing.iter().map(|n| n.path.clone()).collect(),
                lines,
            });
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

/// What the device-rule check looks at.
pub struct Rules<'a> {
    pub nodes: &'a [CheckedNode],
    pub rules: &'a [DeviceRule],
    pub sys_admin: &'a CapSpelling,
    pub caps_major: Option<u32>,
    pub nvidia_major: u32,
    pub management_minors: &'a [u32],
}

/// A non-privileged container's rules must not already open another MIG
/// instance's capability node or another GPU's node.
pub fn check_rules(r: &Rules<'_>) -> Result<(), PlanError> {
    if *r.sys_admin == CapSpelling::Exact {
        return Ok(());
    }
    let mut guards = Vec::new();
    if let Some(caps_major) = r.caps_major {
        guards.push(Guard {
            what: "MIG capability nodes of other instances",
            isolation: "MIG",
            major: caps_major,
            extra: r.management_minors.to_vec(),
            path: cap_node_path,
        });
    }
    guards.push(Guard {
        what: "other GPUs' device nodes",
        isolation: "GPU",
        major: r.nvidia_major,
        extra: Vec::new(),
        path: gpu_node_path,
    });
    for guard in &guards {
        check_no_leak(r.nodes, r.rules, guard, r.sys_admin)?;
    }
    Ok(())
}

/// One major whose other minors the container must not reach.
struct Guard {
    what: &'static str,
    isolation: &'static str,
    major: u32,
    /// Minors to try besides those the rules name (config, monitor).
    extra: Vec<u32>,
    path: fn(u32) -> String,
}

/// Refuse rules that already open a node of `guard.major` that is not one
/// of the container's own.
///
/// Exact without the driver's table of every minor: a minor no rule names
/// is matched only by wildcard rules, so all such minors get the same
/// verdict and one of them stands for the rest; minors that rules name
/// explicitly, and the extra ones, are tried one by one.
fn check_no_leak(
    nodes: &[CheckedNode],
    rules: &[DeviceRule],
    guard: &Guard,
    spelling: &CapSpelling,
) -> Result<(), PlanError> {
    let ours: BTreeSet<u32> = nodes
        .iter()
        .filter(|n| n.major == guard.major)
        .map(|n| n.minor)
        .collect();
    let named: BTreeSet<u32> = rules
        .iter()
        .filter(|r| r.major.is_none() || r.major == Some(guard.major))
        .filter_map(|r| r.minor)
        .chain(guard.extra.iter().copied())
        .collect();
    let stand_in = (0..)
        .find(|m| !ours.contains(m) && !named.contains(m))
        .expect("a free minor");
    for minor in named.into_iter().chain([stand_in]) {
        if ours.contains(&minor) {
            continue;
        }
        if let Some(index) = cgroup::opens(rules, guard.major, minor) {
            return Err(PlanError::Leak {
                index,
                rule: rules[index].to_string(),
                what: guard.what,
                isolation: guard.isolation,
                path: (guard.path)(minor),
                major: guard.major,
                minor,
                spelling: spelling.clone(),
            });
        }
    }
    Ok(())
}

/// What the hook's own effective set lacks for this plan, with why.
pub fn missing_own_caps(plan: &InjectionPlan, own: &Privileges) -> Result<(), PlanError> {
    let mut need = vec![(Capability::CAP_MKNOD, "create device nodes")];
    if plan.owner != (own.euid, own.egid) {
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
        .filter(|(cap, _)| !own.effective.contains(cap))
        .map(|(cap, why)| format!("{cap} (to {why})"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(PlanError::OwnCaps { missing })
}

#[cfg(test)]
mod tests {
    use mig_cdi_core::cgroup::{Access, DeviceType};

    use super::*;
    use crate::host::fake::FakeHost;
    use crate::verify::tests::{check, mig_device};

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

    fn input<'a>(rules: &'a [DeviceRule], live: &'a FakeHost, cgroup: CgroupMode) -> PlanInput<'a> {
        PlanInput {
            pid: 42,
            root: "/run/c/rootfs".into(),
            owner: (0, 0),
            nodes: check(&mig_device(12, 13), live).unwrap(),
            rules,
            sys_admin: CapSpelling::Absent,
            caps_major: Some(241),
            nvidia_major: 195,
            management_minors: vec![1, 2],
            cgroup,
        }
    }

    #[test]
    fn v1_plan_adds_missing_rules_dirs_and_nodes() {
        let live = FakeHost::h200();
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
        let live = FakeHost::h200();
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
        privileged.sys_admin = CapSpelling::Exact;
        assert!(build(privileged).is_ok());
        // Spelled in lower case, it does not count (runc ignores it).
        let mut lower = input(&rules, &live, CgroupMode::Unified);
        lower.sys_admin = CapSpelling::OtherCase("cap_sys_admin".into());
        let err = build(lower).unwrap_err().to_string();
        assert!(
            err.contains("voids MIG isolation") && err.contains("runc ignores"),
            "{err}"
        );
    }

    #[test]
    fn unified_needs_the_rules_in_config_and_prints_them() {
        let live = FakeHost::h200();
        // (195:* would open other GPUs: the GPU's own nodes, one by one.)
        let rules = [
            deny_all(),
            allow(DeviceType::Char, Some(195), Some(0)),
            allow(DeviceType::Char, Some(195), Some(255)),
        ];
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
        let live = FakeHost::h200();
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
        let live = FakeHost::h200();
        let rules = [deny_all()];
        let plan = build(input(&rules, &live, CgroupMode::V1 { dir: "/x".into() })).unwrap();
        let own = |effective, euid| Privileges {
            effective,
            euid,
            egid: 0,
        };
        let all = caps::all();
        assert!(missing_own_caps(&plan, &own(all.clone(), 0)).is_ok());
        let mut some = all.clone();
        some.remove(&Capability::CAP_MKNOD);
        some.remove(&Capability::CAP_SYS_ADMIN);
        let err = missing_own_caps(&plan, &own(some.clone(), 0))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CAP_MKNOD (to create device nodes), CAP_SYS_ADMIN"),
            "{err}"
        );
        let err = missing_own_caps(&plan, &own(some.clone(), 5))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("CAP_CHOWN"), "{err}");
        some.remove(&Capability::CAP_CHOWN);
        assert!(missing_own_caps(&plan, &own(some, 5))
            .unwrap_err()
            .to_string()
            .contains("CAP_CHOWN"));
    }

    #[test]
    fn rules_opening_other_gpus_are_a_leak() {
        let live = FakeHost::h200();
        for rules in [
            vec![deny_all(), allow(DeviceType::Char, Some(195), None)],
            vec![deny_all(), allow(DeviceType::Char, Some(195), Some(1))],
        ] {
            let err = build(input(&rules, &live, CgroupMode::V1 { dir: "/x".into() }))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("other GPUs' device nodes (e.g. /dev/nvidia1 = 195:1)")
                    && err.contains("voids GPU isolation"),
                "{err}"
            );
        }
        // Its own GPU and the control nodes are fine.
        let own = [
            deny_all(),
            allow(DeviceType::Char, Some(195), Some(0)),
            allow(DeviceType::Char, Some(195), Some(255)),
        ];
        assert!(build(input(&own, &live, CgroupMode::V1 { dir: "/x".into() })).is_ok());
    }
}
