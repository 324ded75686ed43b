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
}
