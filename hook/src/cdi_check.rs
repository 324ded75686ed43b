//! `mig-cdi-hook verify`: the same rules for containers whose devices a
//! CDI runtime (podman, containerd, CRI-O, docker 25+) or mig-cdi-runtime
//! has already put in `config.json`.
//!
//! It runs as a `createRuntime` hook that `mig-cdi-gen generate
//! --hook-path` adds to each MIG device. Nothing in the container is
//! changed: from `linux.devices` (the nodes the runtime will create) it
//! tells which MIG devices the container got — each capability node's
//! minor looked up in the live capability files of the container's GPUs —
//! and refuses more than one, the MIG config/monitor nodes without
//! CAP_SYS_ADMIN in the bounding set, a capability node that belongs to no
//! GPU of the container, and device rules that open other instances'
//! nodes. Then the device is leased like any other, so two containers are
//! not given one device by two paths.
//!
//! A container without NVIDIA nodes passes without reading anything of
//! the driver.

use std::collections::BTreeMap;

use mig_cdi_core::cgroup::Access;
use mig_cdi_core::nodes::NodeRole;
use mig_cdi_core::paths::{
    cap_node_path, classify, CapKey, NodePath, CAPS_MAJOR_NAME, MODESET_MINOR, NVIDIACTL_MINOR,
    NVIDIA_MAJOR_NAME,
};

use crate::alloc::{Wanted, PROFILE_ENV};
use crate::config::{CapSpelling, Config};
use crate::error::HookError;
use crate::host::Host;
use crate::lease::DeviceKey;
use crate::plan::{self, Rules};
use crate::verify::{spelling_note, CheckedNode};

/// What the check refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error(
        "the container was given {count} MIG devices ({listed}); CUDA enumerates only one MIG \
         device per process, so a container gets exactly one — request one device"
    )]
    SeveralMig { count: usize, listed: String },
    #[error(
        "the container was given {path} (the MIG {what} capability) but CAP_SYS_ADMIN is not in \
         its bounding set{}; run it privileged or with --cap-add SYS_ADMIN, or leave that node \
         out",
        spelling_note(spelling)
    )]
    Management {
        path: String,
        what: &'static str,
        spelling: CapSpelling,
    },
    #[error(
        "the container was given {path} (241-major node {minor}), which is no capability of its \
         GPUs ({gpus}) in the live driver; the spec is stale or was edited: regenerate it with \
         `mig-cdi-gen generate`"
    )]
    UnknownCap {
        path: String,
        minor: u32,
        gpus: String,
    },
    #[error("cannot read the live driver for the container's NVIDIA nodes: {0}")]
    Driver(String),
}

/// The container's one MIG device, as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub wanted: Wanted,
    /// `gpu 0 gi 2 ci 0`.
    pub instance: CapKey,
}

/// Check `config`; `Ok(None)` when it holds no MIG device.
pub fn check(host: &dyn Host, config: &Config) -> Result<Option<Found>, HookError> {
    let devices: Vec<(String, u32, u32)> = config
        .devices()
        .iter()
        .filter(|d| d.typ == "c")
        .filter_map(|d| {
            let major = u32::try_from(d.major?).ok()?;
            let minor = u32::try_from(d.minor?).ok()?;
            Some((d.path.clone(), major, minor))
        })
        .collect();
    let named_nvidia = devices
        .iter()
        .any(|(path, _, _)| !matches!(classify(path), NodePath::Other));
    let driver = match host.driver() {
        Ok(driver) => driver,
        Err(_) if !named_nvidia => return Ok(None),
        Err(err) => return Err(CheckError::Driver(err.to_string()).into()),
    };
    let (Some(nvidia), Some(caps_major)) = (
        driver.major(NVIDIA_MAJOR_NAME),
        driver.major(CAPS_MAJOR_NAME),
    ) else {
        return Ok(None);
    };
    let gpus: Vec<u32> = devices
        .iter()
        .filter(|(_, major, minor)| {
            *major == nvidia && *minor != NVIDIACTL_MINOR && *minor != MODESET_MINOR
        })
        .map(|(_, _, minor)| *minor)
        .collect();
    let caps: Vec<&(String, u32, u32)> = devices
        .iter()
        .filter(|(_, major, _)| *major == caps_major)
        .collect();
    if caps.is_empty() {
        return Ok(None);
    }

    let mut table: BTreeMap<u32, CapKey> = BTreeMap::new();
    for gpu in &gpus {
        for (key, cap) in host
            .gpu_capabilities(*gpu)
            .map_err(|e| CheckError::Driver(e.to_string()))?
        {
            table.insert(cap.minor, key);
        }
    }
    let mut management_minors = Vec::new();
    for key in [CapKey::Config, CapKey::Monitor] {
        if let Some(cap) = host
            .capability(key)
            .map_err(|e| CheckError::Driver(e.to_string()))?
        {
            table.insert(cap.minor, key);
            management_minors.push(cap.minor);
        }
    }

    let sys_admin = config.bounding("CAP_SYS_ADMIN");
    let mut nodes: Vec<CheckedNode> = Vec::new();
    let mut gis: BTreeMap<(u32, u32), Vec<u32>> = BTreeMap::new();
    let mut cis: BTreeMap<(u32, u32, u32), Vec<u32>> = BTreeMap::new();
    for (path, _, minor) in &caps {
        let Some(key) = table.get(minor).copied() else {
            return Err(CheckError::UnknownCap {
                path: path.clone(),
                minor: *minor,
                gpus: if gpus.is_empty() {
                    "none".into()
                } else {
                    gpus.iter()
                        .map(|g| format!("/dev/nvidia{g}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            }
            .into());
        };
        match key {
            CapKey::Config | CapKey::Monitor => {
                if sys_admin != CapSpelling::Exact {
                    return Err(CheckError::Management {
                        path: path.clone(),
                        what: if key == CapKey::Config {
                            "config"
                        } else {
                            "monitor"
                        },
                        spelling: sys_admin,
                    }
                    .into());
                }
            }
            CapKey::Gi { gpu, gi } => gis.entry((gpu, gi)).or_default().push(*minor),
            CapKey::Ci { gpu, gi, ci } => cis.entry((gpu, gi, ci)).or_default().push(*minor),
        }
        nodes.push(CheckedNode {
            path: path.clone(),
            major: caps_major,
            minor: *minor,
            mode: 0o444,
            role: key.role(),
            access: Access::READ,
            cap: Some(key),
        });
    }
    for (path, major, minor) in &devices {
        if *major == nvidia {
            nodes.push(CheckedNode {
                path: path.clone(),
                major: nvidia,
                minor: *minor,
                mode: 0o666,
                role: NodeRole::Gpu,
                access: Access::RW,
                cap: None,
            });
        }
    }

    // Each CI is one MIG device (with its GI's node); a GI given without
    // any CI counts as one too.
    let mut found: Vec<(CapKey, Vec<u32>)> = Vec::new();
    for (&(gpu, gi, ci), minors) in &cis {
        let mut all: Vec<u32> = gis
            .get(&(gpu, gi))
            .into_iter()
            .flatten()
            .chain(minors)
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        found.push((CapKey::Ci { gpu, gi, ci }, all));
    }
    for (&(gpu, gi), minors) in &gis {
        if !cis.keys().any(|&(g, i, _)| (g, i) == (gpu, gi)) {
            found.push((CapKey::Gi { gpu, gi }, minors.clone()));
        }
    }
    if found.len() > 1 {
        let listed = found
            .iter()
            .map(|(key, minors)| {
                format!(
                    "{} ({})",
                    describe(*key),
                    minors
                        .iter()
                        .map(|m| cap_node_path(*m))
                        .collect::<Vec<_>>()
                        .join(" + ")
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Err(CheckError::SeveralMig {
            count: found.len(),
            listed,
        }
        .into());
    }

    plan::check_rules(&Rules {
        nodes: &nodes,
        rules: &config.device_rules()?,
        sys_admin: &sys_admin,
        caps_major: Some(caps_major),
        nvidia_major: nvidia,
        management_minors: &management_minors,
    })?;

    let Some((instance, minors)) = found.pop() else {
        return Ok(None);
    };
    let gpu = instance.gpu().expect("a GI or CI key");
    let profile = match config.env(PROFILE_ENV).as_slice() {
        [one] => Some(one.to_string()),
        _ => None,
    };
    Ok(Some(Found {
        wanted: Wanted {
            key: DeviceKey { gpu, caps: minors },
            name: describe(instance),
            profile,
        },
        instance,
    }))
}

/// `MIG GPU 0 GI 2 CI 0`.
fn describe(key: CapKey) -> String {
    match key {
        CapKey::Ci { gpu, gi, ci } => format!("MIG GPU {gpu} GI {gi} CI {ci}"),
        CapKey::Gi { gpu, gi } => format!("MIG GPU {gpu} GI {gi}"),
        CapKey::Config => "MIG config".into(),
        CapKey::Monitor => "MIG monitor".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::FakeHost;
    use std::path::Path;

    fn config(nodes: &[(&str, u32, u32)], bounding: &[&str], rules: &str) -> Config {
        let devices: Vec<String> = nodes
            .iter()
            .map(|(p, ma, mi)| format!(r#"{{"path":"{p}","type":"c","major":{ma},"minor":{mi}}}"#))
            .collect();
        let json = format!(
            r#"{{"process":{{"env":["MIG_CDI_PROFILE=1g.18gb"],"capabilities":{{"bounding":{}}}}},
            "linux":{{"devices":[{}],"resources":{{"devices":{rules}}}}}}}"#,
            serde_json::to_string(bounding).unwrap(),
            devices.join(",")
        );
        Config::parse(json.as_bytes(), Path::new("config.json")).unwrap()
    }

    const DENY: &str = r#"[{"allow":false,"access":"rwm"}]"#;

    #[test]
    fn one_device_is_found_and_keyed_by_its_nodes() {
        let c = config(
            &[
                ("/dev/nvidiactl", 195, 255),
                ("/dev/nvidia0", 195, 0),
                ("/dev/nvidia-caps/nvidia-cap21", 241, 21),
                ("/dev/nvidia-caps/nvidia-cap22", 241, 22),
            ],
            &[],
            DENY,
        );
        let found = check(&FakeHost::h200(), &c).unwrap().unwrap();
        assert_eq!(
            found.wanted.key,
            DeviceKey {
                gpu: 0,
                caps: vec![21, 22]
            }
        );
        assert_eq!(found.wanted.name, "MIG GPU 0 GI 2 CI 0");
        assert_eq!(found.wanted.profile.as_deref(), Some("1g.18gb"));
    }

    #[test]
    fn nothing_nvidia_passes_even_without_a_driver() {
        let mut host = FakeHost::h200();
        host.driver = None;
        let c = config(&[("/dev/fuse", 10, 229)], &[], DENY);
        assert_eq!(check(&host, &c).unwrap(), None);
        let c = config(&[("/dev/nvidia0", 195, 0)], &[], DENY);
        assert!(check(&host, &c).is_err());
        // A whole GPU (no capability node) is not a MIG device.
        assert_eq!(check(&FakeHost::h200(), &c).unwrap(), None);
    }

    #[test]
    fn two_devices_are_refused_naming_both() {
        let c = config(
            &[
                ("/dev/nvidia0", 195, 0),
                ("/dev/nvidia-caps/nvidia-cap12", 241, 12),
                ("/dev/nvidia-caps/nvidia-cap13", 241, 13),
                ("/dev/nvidia-caps/nvidia-cap21", 241, 21),
                ("/dev/nvidia-caps/nvidia-cap22", 241, 22),
            ],
            &[],
            DENY,
        );
        let err = check(&FakeHost::h200(), &c).unwrap_err().to_string();
        assert!(err.contains("given 2 MIG devices"), "{err}");
        assert!(err.contains("MIG GPU 0 GI 1 CI 0"), "{err}");
        assert!(err.contains("only one MIG device per process"), "{err}");
    }

    #[test]
    fn management_nodes_need_sys_admin() {
        let nodes = [
            ("/dev/nvidia0", 195, 0),
            ("/dev/nvidia-caps/nvidia-cap21", 241, 21),
            ("/dev/nvidia-caps/nvidia-cap22", 241, 22),
            ("/dev/nvidia-caps/nvidia-cap2", 241, 2),
        ];
        let err = check(&FakeHost::h200(), &config(&nodes, &["CAP_CHOWN"], DENY))
            .unwrap_err()
            .to_string();
        assert!(err.contains("MIG monitor capability"), "{err}");
        assert!(
            err.contains("CAP_SYS_ADMIN is not in its bounding set"),
            "{err}"
        );
        let ok = check(&FakeHost::h200(), &config(&nodes, &["CAP_SYS_ADMIN"], DENY)).unwrap();
        assert!(ok.is_some());
    }

    #[test]
    fn unknown_caps_and_leaking_rules_are_refused() {
        let err = check(
            &FakeHost::h200(),
            &config(&[("/dev/nvidia-caps/nvidia-cap99", 241, 99)], &[], DENY),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no capability of its GPUs (none)"), "{err}");
        let rules = r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":241,"access":"r"}]"#;
        let err = check(
            &FakeHost::h200(),
            &config(
                &[
                    ("/dev/nvidia0", 195, 0),
                    ("/dev/nvidia-caps/nvidia-cap21", 241, 21),
                    ("/dev/nvidia-caps/nvidia-cap22", 241, 22),
                ],
                &[],
                rules,
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("241:*"), "{err}");
    }
}
