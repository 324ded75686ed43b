//! The CDI document, as runtimes read it.
//!
//! Field names and order follow the CDI JSON (`cdiVersion`, `kind`,
//! `annotations`, `devices`, `containerEdits`), so serialising a [`Spec`]
//! gives the same bytes for the same value every time. Every field that a
//! CDI version added after 0.3.0 is an `Option`, and `Some` means the field
//! is *present* in the document: a strict parser of an older version rejects
//! a field it does not know even when its value is empty, so presence, not
//! content, decides the version a document needs (see [`super::version`]).
//!
//! Unknown fields are not rejected here: [`super::rules`] reports them with
//! their place in the document, which serde's error would not give.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A CDI spec file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// "The version of the Container Device Interface Specification that
    /// the document complies with."
    pub cdi_version: String,
    /// `vendor/class`, e.g. `nvidia.com/gpu`.
    pub kind: String,
    /// Since 0.6.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The devices a container can ask for by `kind=name`.
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Edits applied once whenever any device of this spec is requested.
    #[serde(default, skip_serializing_if = "ContainerEdits::is_empty")]
    pub container_edits: ContainerEdits,
}

/// One device of a spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// The name after `=` in `vendor/class=name`.
    pub name: String,
    /// Since 0.6.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// What requesting this device does to the container; must not be empty.
    #[serde(default)]
    pub container_edits: ContainerEdits,
}

/// Edits a runtime makes to the container's OCI spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerEdits {
    /// `NAME=value` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_nodes: Vec<DeviceNode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// Since 0.7.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<IntelRdt>,
    /// Since 0.7.0.
    #[serde(
        default,
        rename = "additionalGids",
        skip_serializing_if = "Option::is_none"
    )]
    pub additional_gids: Option<Vec<u32>>,
    /// Since 1.1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_devices: Option<Vec<NetDevice>>,
}

impl ContainerEdits {
    /// No edit at all (what the CDI library calls empty: a device whose
    /// edits are empty is invalid).
    pub fn is_empty(&self) -> bool {
        self.env.is_empty()
            && self.device_nodes.is_empty()
            && self.hooks.is_empty()
            && self.mounts.is_empty()
            && self.intel_rdt.is_none()
            && self.additional_gids.as_ref().is_none_or(Vec::is_empty)
            && self.net_devices.as_ref().is_none_or(Vec::is_empty)
    }
}

/// A device node to create in the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceNode {
    /// Path inside the container.
    pub path: String,
    /// Path on the host when it differs from `path`. Since 0.5.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    /// `b`, `c`, `u` or `p`; a runtime fills it from the host node when
    /// absent.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub node_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    /// Permission bits of the node in the container (Go `os.FileMode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    /// Device-cgroup access: a subset of `rwm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// A mount to add to the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    pub host_path: String,
    pub container_path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Since 0.4.0.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub mount_type: Option<String>,
}

/// An OCI hook to add to the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    /// prestart, createRuntime, createContainer, startContainer, poststart
    /// or poststop.
    pub hook_name: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

/// Intel RDT settings. The whole object is since 0.7.0; `enableCMT` and
/// `enableMBM` were dropped in 1.1.0, which added `schemata` and
/// `enableMonitoring`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntelRdt {
    #[serde(rename = "closID", default, skip_serializing_if = "Option::is_none")]
    pub clos_id: Option<String>,
    #[serde(
        rename = "l3CacheSchema",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub l3_cache_schema: Option<String>,
    #[serde(
        rename = "memBwSchema",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mem_bw_schema: Option<String>,
    #[serde(rename = "enableCMT", default, skip_serializing_if = "Option::is_none")]
    pub enable_cmt: Option<bool>,
    #[serde(rename = "enableMBM", default, skip_serializing_if = "Option::is_none")]
    pub enable_mbm: Option<bool>,
    #[serde(rename = "schemata", default, skip_serializing_if = "Option::is_none")]
    pub schemata: Option<Vec<String>>,
    #[serde(
        rename = "enableMonitoring",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_monitoring: Option<bool>,
}

/// A host network interface moved into the container. Since 1.1.0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetDevice {
    pub host_interface_name: String,
    pub name: String,
}

/// The fields each object of a CDI document may have, for reporting
/// unknown ones (runtimes parse strictly and reject them).
pub(crate) mod known_fields {
    pub const SPEC: &[&str] = &[
        "cdiVersion",
        "kind",
        "annotations",
        "devices",
        "containerEdits",
    ];
    pub const DEVICE: &[&str] = &["name", "annotations", "containerEdits"];
    pub const EDITS: &[&str] = &[
        "env",
        "deviceNodes",
        "hooks",
        "mounts",
        "intelRdt",
        "additionalGids",
        "netDevices",
    ];
    pub const DEVICE_NODE: &[&str] = &[
        "path",
        "hostPath",
        "type",
        "major",
        "minor",
        "fileMode",
        "permissions",
        "uid",
        "gid",
    ];
    pub const MOUNT: &[&str] = &["hostPath", "containerPath", "options", "type"];
    pub const HOOK: &[&str] = &["hookName", "path", "args", "env", "timeout"];
    pub const INTEL_RDT: &[&str] = &[
        "closID",
        "l3CacheSchema",
        "memBwSchema",
        "enableCMT",
        "enableMBM",
        "schemata",
        "enableMonitoring",
    ];
    pub const NET_DEVICE: &[&str] = &["hostInterfaceName", "name"];
}
