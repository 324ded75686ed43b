//! The parts of the bundle's `config.json` the hook reads, read the way
//! the runtime reads them.
//!
//! Runtimes and engines add fields all the time, and oci-spec's full `Spec`
//! rejects a whole file for one capability name it does not know. The hook
//! needs `root.path`, `process.env`, the bounding set,
//! `linux.resources.devices`, the id mappings, the namespaces and one
//! annotation, so it decodes a lenient view of exactly those (absent or
//! `null` is empty) and ignores the rest. The view's leaves follow the OCI
//! runtime spec's field names and types (a test decodes the same configs
//! with oci-spec's own types and compares); oci-spec itself stays out of
//! the hook's build, which it would grow by a regex engine and a dozen
//! proc-macro crates.
//!
//! As runc does (Go's JSON decoder): bytes that are not UTF-8 inside a
//! string become U+FFFD instead of failing the file, and annotations other
//! than ours are skipped without being kept, so a megabyte of them costs
//! no memory beyond the file's bytes.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use mig_cdi_core::cgroup::{Access, DeviceRule, DeviceType};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::input::{position, InputError};
use crate::request::ANNOTATION;

/// `root.path`, `process.*`, `linux.*` and our annotation.
#[derive(Debug, Default, Deserialize)]
pub struct Config {
    #[serde(default)]
    root: Option<Root>,
    #[serde(default)]
    process: Option<Process>,
    #[serde(default)]
    linux: Option<Linux>,
    /// The annotations a request can come in: [`ANNOTATION`] and the
    /// `cdi.k8s.io/*` ones Kubernetes device plugins set; no other is kept.
    #[serde(default, rename = "annotations", deserialize_with = "annotations")]
    pub requests: Annotations,
}

/// The request annotations of a config.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Annotations {
    /// The value of [`ANNOTATION`].
    pub ours: Option<String>,
    /// `(key, value)` of each `cdi.k8s.io/*` annotation, in file order.
    pub cdi: Vec<(String, String)>,
}

/// Prefix of the annotations Kubernetes puts CDI device names in.
pub const CDI_ANNOTATION_PREFIX: &str = "cdi.k8s.io/";
/// At most this many `cdi.k8s.io/*` annotations are kept (a pod has one
/// per device plugin).
const MAX_CDI_ANNOTATIONS: usize = 64;

impl Config {
    /// The value of [`ANNOTATION`].
    pub fn annotation(&self) -> Option<&str> {
        self.requests.ours.as_deref()
    }
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
    uid_mappings: Option<Vec<IdMapping>>,
    #[serde(default)]
    gid_mappings: Option<Vec<IdMapping>>,
    #[serde(default)]
    namespaces: Option<Vec<Namespace>>,
    #[serde(default)]
    devices: Option<Vec<DeviceView>>,
}

/// One `linux.devices` entry (OCI `LinuxDevice`): a node the runtime
/// creates in the container (a CDI runtime puts the spec's nodes here).
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceView {
    #[serde(default)]
    pub path: String,
    #[serde(default, rename = "type")]
    pub typ: String,
    #[serde(default)]
    pub major: Option<i64>,
    #[serde(default)]
    pub minor: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct Resources {
    #[serde(default)]
    devices: Option<Vec<RuleView>>,
}

/// One `linux.resources.devices` entry (OCI `LinuxDeviceCgroup`).
#[derive(Debug, Clone, Deserialize)]
pub struct RuleView {
    #[serde(default)]
    pub allow: bool,
    #[serde(default, rename = "type")]
    pub typ: Option<String>,
    #[serde(default)]
    pub major: Option<i64>,
    #[serde(default)]
    pub minor: Option<i64>,
    #[serde(default)]
    pub access: Option<String>,
}

impl fmt::Display for RuleView {
    /// As runc prints a rule: `allow c 241:* rwm`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = |n: Option<i64>| match n {
            Some(n) if n >= 0 => n.to_string(),
            _ => "*".into(),
        };
        write!(
            f,
            "{} {} {}:{} {}",
            if self.allow { "allow" } else { "deny" },
            self.typ.as_deref().unwrap_or("a"),
            number(self.major),
            number(self.minor),
            self.access.as_deref().unwrap_or("")
        )
    }
}

/// One id mapping (OCI `LinuxIdMapping`).
#[derive(Debug, Clone, Deserialize)]
pub struct IdMapping {
    #[serde(rename = "containerID")]
    pub container_id: u32,
    #[serde(rename = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

#[derive(Debug, Clone, Deserialize)]
struct Namespace {
    #[serde(rename = "type")]
    typ: String,
}

/// How the bounding set names CAP_SYS_ADMIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapSpelling {
    /// `CAP_SYS_ADMIN`, as every runtime reads it.
    Exact,
    /// Another case (`cap_sys_admin`): runc 1.1 ignores it, crun accepts
    /// it. Treated as absent.
    OtherCase(String),
    Absent,
}

/// Why a device rule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleProblem {
    /// A type runtimes reject (`p`, or unknown).
    Type(String),
    NumberOutOfRange(i64),
    Access(String),
}

/// Of an annotations map, only the value of [`ANNOTATION`].
pub(crate) fn annotation<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    Ok(annotations(de)?.ours)
}

/// Of an annotations map, only the request annotations; every other value
/// is skipped unread.
fn annotations<'de, D: Deserializer<'de>>(de: D) -> Result<Annotations, D::Error> {
    struct Requests;
    impl<'de> Visitor<'de> for Requests {
        type Value = Annotations;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of annotations")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Annotations::default())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Annotations::default())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = Annotations::default();
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                let ours = key == ANNOTATION;
                let cdi =
                    key.starts_with(CDI_ANNOTATION_PREFIX) && found.cdi.len() < MAX_CDI_ANNOTATIONS;
                if !(ours || cdi) {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                // A value of another type is not ours to judge.
                let value = map.next_value::<serde_json::Value>()?;
                let Some(text) = value.as_str() else { continue };
                if ours {
                    found.ours = Some(text.to_string());
                } else {
                    found.cdi.push((key.into_owned(), text.to_string()));
                }
            }
            Ok(found)
        }
    }
    de.deserialize_any(Requests)
}

impl Config {
    /// Decode a config's bytes as runc would (see the module notes).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, InputError> {
        let text = String::from_utf8_lossy(bytes);
        serde_json::from_str(&text).map_err(|err| InputError::Config {
            path: path.to_path_buf(),
            at: position(&err),
        })
    }

    /// The container's root filesystem, absolute (a relative `root.path`
    /// is relative to the bundle).
    pub fn root_path(&self, bundle: &Path) -> Result<PathBuf, InputError> {
        let path = self
            .root
            .as_ref()
            .and_then(|r| r.path.clone())
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or(InputError::NoRootPath)?;
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

    /// How the bounding set names `cap` (e.g. `CAP_SYS_ADMIN`).
    pub fn bounding(&self, cap: &str) -> CapSpelling {
        let names = self
            .process
            .as_ref()
            .and_then(|p| p.capabilities.as_ref())
            .and_then(|c| c.bounding.as_deref())
            .unwrap_or_default();
        if names.iter().any(|name| name == cap) {
            return CapSpelling::Exact;
        }
        match names.iter().find(|name| name.eq_ignore_ascii_case(cap)) {
            Some(name) => CapSpelling::OtherCase(name.clone()),
            None => CapSpelling::Absent,
        }
    }

    /// `linux.devices`: the nodes the runtime creates.
    pub fn devices(&self) -> &[DeviceView] {
        self.linux
            .as_ref()
            .and_then(|l| l.devices.as_deref())
            .unwrap_or_default()
    }

    /// Is the container in a user namespace of its own?
    pub fn user_namespace(&self) -> bool {
        let linux = self.linux.as_ref();
        let declared = linux
            .and_then(|l| l.namespaces.as_deref())
            .unwrap_or_default()
            .iter()
            .any(|n| n.typ == "user");
        let mapped = linux.is_some_and(|l| {
            l.uid_mappings.as_ref().is_some_and(|m| !m.is_empty())
                || l.gid_mappings.as_ref().is_some_and(|m| !m.is_empty())
        });
        declared || mapped
    }

    /// `linux.resources.devices`, as rules the evaluator understands.
    pub fn device_rules(&self) -> Result<Vec<DeviceRule>, InputError> {
        let rules = self
            .linux
            .as_ref()
            .and_then(|l| l.resources.as_ref())
            .and_then(|r| r.devices.as_deref())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(rules.len());
        for (index, rule) in rules.iter().enumerate() {
            let bad = |problem| InputError::DeviceRule {
                index,
                rule: rule.to_string(),
                problem,
            };
            let kind = match rule.typ.as_deref() {
                None | Some("a") => DeviceType::All,
                Some("c" | "u") => DeviceType::Char,
                Some("b") => DeviceType::Block,
                // runc and crun refuse `p` (the device cgroup has no FIFO
                // type) and anything else.
                Some(other) => return Err(bad(RuleProblem::Type(other.into()))),
            };
            let number = |n: Option<i64>| -> Result<Option<u32>, InputError> {
                match n {
                    None => Ok(None),
                    Some(n) if n < 0 => Ok(None),
                    Some(n) => u32::try_from(n)
                        .map(Some)
                        .map_err(|_| bad(RuleProblem::NumberOutOfRange(n))),
                }
            };
            let text = rule.access.as_deref().unwrap_or("");
            let access =
                Access::parse(text).ok_or_else(|| bad(RuleProblem::Access(text.into())))?;
            out.push(DeviceRule {
                allow: rule.allow,
                kind,
                major: number(rule.major)?,
                minor: number(rule.minor)?,
                access,
            });
        }
        Ok(out)
    }

    /// Host uid and gid of the container's root (0 when there is no user
    /// namespace mapping).
    pub fn root_owner(&self) -> Result<(u32, u32), InputError> {
        let linux = self.linux.as_ref();
        let uid = map_root(linux.and_then(|l| l.uid_mappings.as_deref()), "uidMappings")?;
        let gid = map_root(linux.and_then(|l| l.gid_mappings.as_deref()), "gidMappings")?;
        Ok((uid, gid))
    }
}

fn map_root(mappings: Option<&[IdMapping]>, what: &'static str) -> Result<u32, InputError> {
    let Some(mappings) = mappings.filter(|m| !m.is_empty()) else {
        return Ok(0);
    };
    mappings
        .iter()
        .find(|m| m.container_id == 0 && m.size > 0)
        .map(|m| m.host_id)
        .ok_or(InputError::NoRootMapping { what })
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
        assert_eq!(c.bounding("CAP_SYS_ADMIN"), CapSpelling::Exact);
        assert_eq!(c.bounding("CAP_MKNOD"), CapSpelling::Absent);
        assert_eq!(
            c.root_path(Path::new("/b")).unwrap(),
            PathBuf::from("/b/rootfs")
        );
        assert!(c.device_rules().unwrap().is_empty());
        assert!(!c.user_namespace());
    }

    #[test]
    fn nulls_are_empty() {
        let c = parse(
            r#"{"root":{"path":"/abs/root"},"process":{"env":null,"capabilities":null},
                "linux":{"resources":{"devices":null},"uidMappings":null},"annotations":null}"#,
        );
        assert!(c.env("X").is_empty());
        assert_eq!(c.root_owner().unwrap(), (0, 0));
        assert_eq!(c.annotation(), None);
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
    fn lower_case_capability_is_not_the_capability() {
        let c = parse(r#"{"process":{"capabilities":{"bounding":["cap_sys_admin"]}}}"#);
        assert_eq!(
            c.bounding("CAP_SYS_ADMIN"),
            CapSpelling::OtherCase("cap_sys_admin".into())
        );
        let c = parse(r#"{"process":{"capabilities":{"bounding":["Cap_Sys_Admin"]}}}"#);
        assert!(matches!(
            c.bounding("CAP_SYS_ADMIN"),
            CapSpelling::OtherCase(_)
        ));
    }

    #[test]
    fn non_utf8_bytes_in_unrelated_env_are_tolerated() {
        let mut bytes = br#"{"process":{"env":["A="#.to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe, b'x']);
        bytes.extend_from_slice(br#"","NVIDIA_VISIBLE_DEVICES=0:1"]}}"#);
        let c = Config::parse(&bytes, Path::new("c")).unwrap();
        assert_eq!(c.env("NVIDIA_VISIBLE_DEVICES"), ["0:1"]);
        assert_eq!(c.env("A"), ["\u{fffd}\u{fffd}x"]);
    }

    #[test]
    fn only_our_annotation_is_kept() {
        let big = "v".repeat(100_000);
        let c = parse(&format!(
            r#"{{"annotations":{{"a":"{big}","mig-cdi/devices":"0:1","n":{{"x":[1]}}}}}}"#
        ));
        assert_eq!(c.annotation(), Some("0:1"));
        let c = parse(r#"{"annotations":{"mig-cdi/devices":7}}"#);
        assert_eq!(c.annotation(), None);
        let c = parse(
            r#"{"annotations":{"cdi.k8s.io/nvidia_a":"nvidia.com/gpu=0:1","x":"y",
                "cdi.k8s.io/other":"vendor.com/x=1"}}"#,
        );
        assert_eq!(
            c.requests.cdi,
            [
                ("cdi.k8s.io/nvidia_a".into(), "nvidia.com/gpu=0:1".into()),
                ("cdi.k8s.io/other".into(), "vendor.com/x=1".into())
            ]
        );
    }

    #[test]
    fn device_rules_follow_runtime_conventions() {
        let c = parse(
            r#"{"linux":{"resources":{"devices":[
                {"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":241,"minor":-1,"access":"rw"},
                {"allow":true,"type":"c","major":195,"minor":0}]}}}"#,
        );
        let rules = c.device_rules().unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].to_string(), "deny a *:* rwm");
        assert_eq!(rules[1].to_string(), "allow c 241:* rw");
        assert_eq!(rules[2].to_string(), "allow c 195:0 rwm");
    }

    #[test]
    fn rule_types_runtimes_reject_are_refused() {
        for typ in ["p", "x", "C"] {
            let c = parse(&format!(
                r#"{{"linux":{{"resources":{{"devices":[{{"allow":true,"type":"{typ}","access":"rwm"}}]}}}}}}"#
            ));
            let err = c.device_rules().unwrap_err().to_string();
            assert!(err.contains("devices[0]") && err.contains("type"), "{err}");
        }
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
        assert!(c.user_namespace());
        let c = parse(r#"{"linux":{"uidMappings":[{"containerID":1,"hostID":5,"size":1}]}}"#);
        assert!(c.root_owner().is_err());
        assert!(parse(r#"{"linux":{"namespaces":[{"type":"user"}]}}"#).user_namespace());
    }

    #[test]
    fn missing_root_path_is_an_error() {
        assert!(parse("{}").root_path(Path::new("/b")).is_err());
    }

    #[test]
    fn decode_errors_give_the_position_not_the_text() {
        let err = Config::parse(br#"{"process":{"env":"SECRET"}}"#, Path::new("/b/c.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/b/c.json") && err.contains("line 1"), "{err}");
        assert!(!err.contains("SECRET"), "{err}");
    }
}
