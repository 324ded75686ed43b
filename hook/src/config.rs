//! The parts of the bundle's `config.json` the hook reads.
//!
//! Runtimes and engines add fields all the time, and oci-spec's full `Spec`
//! rejects a whole file for one capability name it does not know. The hook
//! needs five things — `root.path`, `process.env`, the bounding set,
//! `linux.resources.devices` and the id mappings — so it decodes a lenient
//! view of exactly those (absent or `null` is empty) and ignores the rest.
//! oci-spec's own types are used for the two leaves whose shape is fixed by
//! the spec: device cgroup rules and id mappings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mig_cdi_core::cgroup::{Access, DeviceRule, DeviceType};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxIdMapping};
use serde::Deserialize;

use crate::error::HookError;

#[derive(Debug, Default, Deserialize)]
pub struct Config {
    #[serde(default)]
    root: Option<Root>,
    #[serde(default)]
    process: Option<Process>,
    #[serde(default)]
    linux: Option<Linux>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
struct Root {
    #[serde(default)]
    path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
struct Process {
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    capabilities: Option<Capabilities>,
}

#[derive(Debug, Default, Deserialize)]
struct Capabilities {
    #[serde(default)]
    bounding: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Linux {
    #[serde(default)]
    resources: Option<Resources>,
    #[serde(default)]
    uid_mappings: Option<Vec<LinuxIdMapping>>,
    #[serde(default)]
    gid_mappings: Option<Vec<LinuxIdMapping>>,
}

#[derive(Debug, Default, Deserialize)]
struct Resources {
    #[serde(default)]
    devices: Option<Vec<LinuxDeviceCgroup>>,
}

impl Config {
    /// Read `<bundle>/config.json`.
    pub fn load(bundle: &Path) -> Result<Self, HookError> {
        let path = bundle.join("config.json");
        let bytes = std::fs::read(&path).map_err(|source| HookError::Io {
            op: "read",
            path: path.clone(),
            source,
        })?;
        Self::parse(&bytes, &path)
    }

    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, HookError> {
        serde_json::from_slice(bytes).map_err(|source| HookError::Config {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The container's root filesystem, absolute (a relative `root.path`
    /// is relative to the bundle).
    pub fn root_path(&self, bundle: &Path) -> Result<PathBuf, HookError> {
        let path = self
            .root
            .as_ref()
            .and_then(|r| r.path.clone())
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or_else(|| HookError::BadConfig("config.json has no root.path".to_string()))?;
        Ok(if path.is_absolute() {
            path
        } else {
            bundle.join(path)
        })
    }

    /// Every value of `name` in `process.env`, in order.
    pub fn env(&self, name: &str) -> Vec<&str> {
        let env = self.process.as_ref().and_then(|p| p.env.as_deref());
        env.unwrap_or_default()
            .iter()
            .filter_map(|entry| entry.split_once('='))
            .filter(|(key, _)| *key == name)
            .map(|(_, value)| value)
            .collect()
    }

    /// Does the container's bounding set hold `cap` (e.g. `CAP_SYS_ADMIN`)?
    /// Names are compared as text, so a name we do not know is harmless.
    pub fn bounding_has(&self, cap: &str) -> bool {
        self.process
            .as_ref()
            .and_then(|p| p.capabilities.as_ref())
            .and_then(|c| c.bounding.as_deref())
            .unwrap_or_default()
            .iter()
            .any(|name| name.eq_ignore_ascii_case(cap))
    }

    /// `linux.resources.devices`, as rules the evaluator understands.
    pub fn device_rules(&self) -> Result<Vec<DeviceRule>, HookError> {
        let rules = self
            .linux
            .as_ref()
            .and_then(|l| l.resources.as_ref())
            .and_then(|r| r.devices.as_deref())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(rules.len());
        for (index, rule) in rules.iter().enumerate() {
            let bad = |what: String| {
                HookError::BadConfig(format!(
                    "config.json linux.resources.devices[{index}] ({rule}): {what}"
                ))
            };
            let kind = match rule.typ() {
                None | Some(LinuxDeviceType::A) => DeviceType::All,
                Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => DeviceType::Char,
                Some(LinuxDeviceType::B) => DeviceType::Block,
                // The device cgroup has no FIFO type; runtimes skip these.
                Some(LinuxDeviceType::P) => continue,
            };
            let number = |n: Option<i64>| -> Result<Option<u32>, HookError> {
                match n {
                    None => Ok(None),
                    Some(n) if n < 0 => Ok(None),
                    Some(n) => u32::try_from(n)
                        .map(Some)
                        .map_err(|_| bad(format!("device number {n} is out of range"))),
                }
            };
            let access = rule.access().as_deref().unwrap_or("");
            let access = Access::parse(access)
                .ok_or_else(|| bad(format!("access {access:?} is not a subset of rwm")))?;
            out.push(DeviceRule {
                allow: rule.allow(),
                kind,
                major: number(rule.major())?,
                minor: number(rule.minor())?,
                access,
            });
        }
        Ok(out)
    }

    /// Host uid and gid of the container's root (0 when there is no user
    /// namespace mapping).
    pub fn root_owner(&self) -> Result<(u32, u32), HookError> {
        let linux = self.linux.as_ref();
        let uid = map_root(linux.and_then(|l| l.uid_mappings.as_deref()), "uidMappings")?;
        let gid = map_root(linux.and_then(|l| l.gid_mappings.as_deref()), "gidMappings")?;
        Ok((uid, gid))
    }
}

fn map_root(mappings: Option<&[LinuxIdMapping]>, what: &str) -> Result<u32, HookError> {
    let Some(mappings) = mappings.filter(|m| !m.is_empty()) else {
        return Ok(0);
    };
    mappings
        .iter()
        .find(|m| m.container_id() == 0 && m.size() > 0)
        .map(|m| m.host_id())
        .ok_or_else(|| {
            HookError::BadConfig(format!(
                "config.json linux.{what} maps no host id to the container's root (id 0)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Config {
        Config::parse(json.as_bytes(), Path::new("/b/config.json")).unwrap()
    }

    #[test]
    fn unknown_fields_and_capabilities_do_not_matter() {
        let c = parse(
            r#"{"ociVersion":"1.2.0","root":{"path":"rootfs","readonly":true},
                "process":{"env":["A=1","NVIDIA_VISIBLE_DEVICES=0:1"],"capabilities":{
                  "bounding":["CAP_SYS_ADMIN","CAP_FROM_THE_FUTURE"],"effective":["CAP_NEW"]},
                  "execCPUAffinity":{"initial":"nonsense"},"rlimits":[{"type":"RLIMIT_X"}]},
                "linux":{"seccomp":{"defaultAction":"SCMP_ACT_WHATEVER"},"intelRdt":{"x":1}},
                "somethingNew":{"a":[1,2]}}"#,
        );
        assert_eq!(c.env("NVIDIA_VISIBLE_DEVICES"), ["0:1"]);
        assert!(c.bounding_has("CAP_SYS_ADMIN"));
        assert!(!c.bounding_has("CAP_MKNOD"));
        assert_eq!(
            c.root_path(Path::new("/b")).unwrap(),
            PathBuf::from("/b/rootfs")
        );
        assert!(c.device_rules().unwrap().is_empty());
    }

    #[test]
    fn nulls_are_empty() {
        let c = parse(
            r#"{"root":{"path":"/abs/root"},"process":{"env":null,"capabilities":null},
                "linux":{"resources":{"devices":null},"uidMappings":null},"annotations":null}"#,
        );
        assert!(c.env("X").is_empty());
        assert_eq!(c.root_owner().unwrap(), (0, 0));
        assert_eq!(
            c.root_path(Path::new("/b")).unwrap(),
            PathBuf::from("/abs/root")
        );
    }

    #[test]
    fn env_values_keep_equals_signs_and_order() {
        let c = parse(r#"{"process":{"env":["X=a=b","Y","X=c"]}}"#);
        assert_eq!(c.env("X"), ["a=b", "c"]);
        assert!(c.env("Y").is_empty());
    }

    #[test]
    fn device_rules_follow_runtime_conventions() {
        let c = parse(
            r#"{"linux":{"resources":{"devices":[
                {"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":241,"minor":-1,"access":"rw"},
                {"allow":true,"type":"p","access":"rwm"},
                {"allow":true,"type":"c","major":195,"minor":0}]}}}"#,
        );
        let rules = c.device_rules().unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].to_string(), "deny a *:* rwm");
        assert_eq!(rules[1].to_string(), "allow c 241:* rw");
        assert_eq!(rules[2].to_string(), "allow c 195:0 rwm");
    }

    #[test]
    fn bad_device_rule_names_its_index() {
        let c = parse(
            r#"{"linux":{"resources":{"devices":[{"allow":true,"type":"c","access":"rx"}]}}}"#,
        );
        let err = c.device_rules().unwrap_err().to_string();
        assert!(err.contains("devices[0]"), "{err}");
    }

    #[test]
    fn user_namespace_root_is_mapped() {
        let c = parse(
            r#"{"linux":{"uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
                "gidMappings":[{"containerID":0,"hostID":200000,"size":1}]}}"#,
        );
        assert_eq!(c.root_owner().unwrap(), (100000, 200000));
        let c = parse(r#"{"linux":{"uidMappings":[{"containerID":1,"hostID":5,"size":1}]}}"#);
        assert!(c.root_owner().is_err());
    }

    #[test]
    fn missing_root_path_is_an_error() {
        assert!(parse("{}").root_path(Path::new("/b")).is_err());
    }
}
