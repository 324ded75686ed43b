//! CDI versions and the version each feature of a spec needs.
//!
//! Runtimes parse strictly: one built with an older CDI library rejects a
//! field it does not know, and every runtime rejects a spec whose
//! `cdiVersion` is lower than what its features need. So a generator
//! declares the *lowest* version its spec needs ([`min_version`]), and a
//! validator names each feature that pushes the version up
//! ([`features`]). The table follows the CDI reference library
//! (`specs-go/version.go`), except that a version-gated field counts as used
//! as soon as it is present, even empty: an older strict parser rejects the
//! field itself, whatever its value.

use std::fmt;

use serde::Serialize;

use super::spec::{ContainerEdits, Spec};

/// A released CDI spec version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CdiVersion {
    V0_1_0,
    V0_2_0,
    V0_3_0,
    V0_4_0,
    V0_5_0,
    V0_6_0,
    V0_7_0,
    V0_8_0,
    V1_0_0,
    V1_1_0,
}

impl CdiVersion {
    /// Every released version, oldest first.
    pub const ALL: [CdiVersion; 10] = [
        CdiVersion::V0_1_0,
        CdiVersion::V0_2_0,
        CdiVersion::V0_3_0,
        CdiVersion::V0_4_0,
        CdiVersion::V0_5_0,
        CdiVersion::V0_6_0,
        CdiVersion::V0_7_0,
        CdiVersion::V0_8_0,
        CdiVersion::V1_0_0,
        CdiVersion::V1_1_0,
    ];

    /// The earliest version runtimes accept; a spec that uses no later
    /// feature declares it.
    pub const EARLIEST: CdiVersion = CdiVersion::V0_3_0;

    /// The newest version this code knows.
    pub const LATEST: CdiVersion = CdiVersion::V1_1_0;

    /// The newest version Podman 4.3 (Debian 12) reads; newer specs make
    /// it fail with only "unresolvable CDI devices".
    pub const PODMAN_4_3_MAX: CdiVersion = CdiVersion::V0_5_0;

    pub fn as_str(self) -> &'static str {
        match self {
            CdiVersion::V0_1_0 => "0.1.0",
            CdiVersion::V0_2_0 => "0.2.0",
            CdiVersion::V0_3_0 => "0.3.0",
            CdiVersion::V0_4_0 => "0.4.0",
            CdiVersion::V0_5_0 => "0.5.0",
            CdiVersion::V0_6_0 => "0.6.0",
            CdiVersion::V0_7_0 => "0.7.0",
            CdiVersion::V0_8_0 => "0.8.0",
            CdiVersion::V1_0_0 => "1.0.0",
            CdiVersion::V1_1_0 => "1.1.0",
        }
    }

    /// Parse a `cdiVersion` value. Like the reference library, a leading
    /// `v` is accepted.
    pub fn parse(text: &str) -> Option<CdiVersion> {
        let bare = text.strip_prefix('v').unwrap_or(text);
        Self::ALL.into_iter().find(|v| v.as_str() == bare)
    }
}

impl fmt::Display for CdiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CdiVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One use of a version-gated feature in a spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureUse {
    /// Where in the document, e.g. `devices[0].name`.
    pub at: String,
    /// What is used, e.g. `device name "0:1" starts with a digit`.
    pub what: String,
    /// The first version with the feature.
    pub since: CdiVersion,
    /// The first version without it, for a field a later version dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<CdiVersion>,
}

impl FeatureUse {
    fn new(at: String, what: impl Into<String>, since: CdiVersion) -> Self {
        Self {
            at,
            what: what.into(),
            since,
            until: None,
        }
    }

    /// Whether a document declaring `version` may use this feature.
    pub fn allowed_in(&self, version: CdiVersion) -> bool {
        version >= self.since && self.until.is_none_or(|until| version < until)
    }
}

/// Every use of a feature that needs more than [`CdiVersion::EARLIEST`],
/// in document order.
pub fn features(spec: &Spec) -> Vec<FeatureUse> {
    let mut uses = Vec::new();
    if spec.annotations.is_some() {
        uses.push(FeatureUse::new(
            "annotations".into(),
            "spec annotations",
            CdiVersion::V0_6_0,
        ));
    }
    if let Some((_, class)) = spec.kind.split_once('/') {
        if class.contains('.') {
            uses.push(FeatureUse::new(
                "kind".into(),
                format!("class \"{class}\" contains a dot"),
                CdiVersion::V0_6_0,
            ));
        }
    }
    for (i, device) in spec.devices.iter().enumerate() {
        let at = format!("devices[{i}]");
        if device.name.starts_with(|c: char| c.is_ascii_digit()) {
            uses.push(FeatureUse::new(
                format!("{at}.name"),
                format!("device name \"{}\" starts with a digit", device.name),
                CdiVersion::V0_5_0,
            ));
        }
        if device.annotations.is_some() {
            uses.push(FeatureUse::new(
                format!("{at}.annotations"),
                "device annotations",
                CdiVersion::V0_6_0,
            ));
        }
        edit_features(
            &device.container_edits,
            &format!("{at}.containerEdits"),
            &mut uses,
        );
    }
    edit_features(&spec.container_edits, "containerEdits", &mut uses);
    uses
}

fn edit_features(edits: &ContainerEdits, at: &str, uses: &mut Vec<FeatureUse>) {
    for (i, node) in edits.device_nodes.iter().enumerate() {
        if node.host_path.is_some() {
            uses.push(FeatureUse::new(
                format!("{at}.deviceNodes[{i}].hostPath"),
                "device node hostPath",
                CdiVersion::V0_5_0,
            ));
        }
    }
    for (i, mount) in edits.mounts.iter().enumerate() {
        if mount.mount_type.is_some() {
            uses.push(FeatureUse::new(
                format!("{at}.mounts[{i}].type"),
                "mount type",
                CdiVersion::V0_4_0,
            ));
        }
    }
    if let Some(rdt) = &edits.intel_rdt {
        let at = format!("{at}.intelRdt");
        uses.push(FeatureUse::new(at.clone(), "intelRdt", CdiVersion::V0_7_0));
        for (field, present) in [
            ("enableCMT", rdt.enable_cmt.is_some()),
            ("enableMBM", rdt.enable_mbm.is_some()),
        ] {
            if present {
                uses.push(FeatureUse {
                    at: format!("{at}.{field}"),
                    what: format!("intelRdt {field}"),
                    since: CdiVersion::V0_7_0,
                    until: Some(CdiVersion::V1_1_0),
                });
            }
        }
        for (field, present) in [
            ("schemata", rdt.schemata.is_some()),
            ("enableMonitoring", rdt.enable_monitoring.is_some()),
        ] {
            if present {
                uses.push(FeatureUse::new(
                    format!("{at}.{field}"),
                    format!("intelRdt {field}"),
                    CdiVersion::V1_1_0,
                ));
            }
        }
    }
    if edits.additional_gids.is_some() {
        uses.push(FeatureUse::new(
            format!("{at}.additionalGids"),
            "additionalGids",
            CdiVersion::V0_7_0,
        ));
    }
    if edits.net_devices.is_some() {
        uses.push(FeatureUse::new(
            format!("{at}.netDevices"),
            "netDevices",
            CdiVersion::V1_1_0,
        ));
    }
}

/// The lowest version whose documents may carry everything `spec` uses.
pub fn min_version(spec: &Spec) -> CdiVersion {
    features(spec)
        .iter()
        .map(|f| f.since)
        .fold(CdiVersion::EARLIEST, CdiVersion::max)
}

/// A container runtime that reads CDI specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Podman,
    Containerd,
    CriO,
    Docker,
}

impl Runtime {
    /// Every runtime of the matrix, in the order messages list them.
    pub const ALL: [Runtime; 4] = [
        Runtime::Podman,
        Runtime::Containerd,
        Runtime::CriO,
        Runtime::Docker,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Runtime::Podman => "podman",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "CRI-O",
            Runtime::Docker => "docker",
        }
    }
}

/// The oldest release of `runtime` known to read specs of `version`;
/// `None` when no release is known to (not measured, or none yet).
///
/// From the runtimes' release notes and CDI library versions
/// (`shared/notes/anchors.md`): CDI up to 0.5.0 came with podman 4.1,
/// containerd 1.7 (`enable_cdi`), CRI-O 1.24 and docker 25 (`features.cdi`);
/// 0.7.0 (`additionalGids`, `intelRdt`) with podman 5.1, containerd 1.7.16,
/// CRI-O 1.30 and docker 26.1 — 0.6.0 is listed with the same releases, the
/// first known to read a newer version; 1.1.0 (`netDevices`) with
/// containerd 2.2 and docker 29. Podman 4.3 (Debian 12) reads up to 0.5.0.
/// Versions 0.8.0 and 1.0.0 changed no field but are unknown to older
/// parsers; no release is pinned for them here.
pub fn oldest_reader(runtime: Runtime, version: CdiVersion) -> Option<&'static str> {
    use CdiVersion::*;
    let row: [Option<&'static str>; 4] = match version {
        V0_1_0 | V0_2_0 | V0_3_0 | V0_4_0 | V0_5_0 => {
            [Some("4.1"), Some("1.7"), Some("1.24"), Some("25")]
        }
        V0_6_0 | V0_7_0 => [Some("5.1"), Some("1.7.16"), Some("1.30"), Some("26.1")],
        V0_8_0 | V1_0_0 => [None, None, None, None],
        V1_1_0 => [None, Some("2.2"), None, Some("29")],
    };
    let column = Runtime::ALL
        .iter()
        .position(|&r| r == runtime)
        .unwrap_or_default();
    row[column]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_ordered_and_parse_back() {
        for pair in CdiVersion::ALL.windows(2) {
            assert!(pair[0] < pair[1]);
        }
        for v in CdiVersion::ALL {
            assert_eq!(CdiVersion::parse(v.as_str()), Some(v));
            assert_eq!(CdiVersion::parse(&format!("v{v}")), Some(v));
        }
        assert_eq!(CdiVersion::parse("0.5"), None);
        assert_eq!(CdiVersion::parse("0.9.0"), None);
    }

    #[test]
    fn env_and_hooks_in_device_edits_need_no_more_than_the_names_do() {
        use crate::cdi::spec::{ContainerEdits, Device, DeviceNode, Hook};
        let hook = |stage: &str, word: &str| Hook {
            hook_name: stage.into(),
            path: "/opt/x/mig-cdi-hook".into(),
            args: vec!["mig-cdi-hook".into(), word.into()],
            env: vec!["PATH=/usr/bin:/bin".into()],
            timeout: None,
        };
        let device = |name: &str| Device {
            name: name.into(),
            annotations: None,
            container_edits: ContainerEdits {
                env: vec!["MIG_CDI_PROFILE=1g.18gb".into()],
                device_nodes: vec![DeviceNode {
                    path: "/dev/nvidia0".into(),
                    ..DeviceNode::default()
                }],
                hooks: vec![
                    hook("createRuntime", "verify"),
                    hook("poststop", "poststop"),
                ],
                ..ContainerEdits::default()
            },
        };
        let mut spec = Spec {
            cdi_version: String::new(),
            kind: "nvidia.com/gpu".into(),
            annotations: None,
            devices: vec![device("MIG-aaaaaaaa-0000-0000-0000-000000000001")],
            container_edits: ContainerEdits::default(),
        };
        assert!(features(&spec).is_empty(), "{:?}", features(&spec));
        assert_eq!(min_version(&spec), CdiVersion::V0_3_0);
        spec.devices.push(device("0:1"));
        let uses = features(&spec);
        assert_eq!(uses.len(), 1, "{uses:?}");
        assert_eq!(uses[0].at, "devices[1].name");
        assert_eq!(min_version(&spec), CdiVersion::V0_5_0);
    }

    #[test]
    fn runtime_matrix_follows_the_notes() {
        assert_eq!(
            Runtime::ALL.map(|r| oldest_reader(r, CdiVersion::V0_5_0)),
            [Some("4.1"), Some("1.7"), Some("1.24"), Some("25")]
        );
        assert_eq!(
            oldest_reader(Runtime::Containerd, CdiVersion::V0_7_0),
            Some("1.7.16")
        );
        assert_eq!(
            oldest_reader(Runtime::Docker, CdiVersion::V1_1_0),
            Some("29")
        );
        assert_eq!(oldest_reader(Runtime::Podman, CdiVersion::V1_1_0), None);
    }
}
