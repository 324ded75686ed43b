//! What changed between a spec on disk and the one the hardware gives now,
//! device by device: for `generate --check` after MIG was reconfigured.

use std::collections::BTreeMap;

use serde::Serialize;

use super::spec::{ContainerEdits, DeviceNode, Spec};

/// A device whose edits differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceChange {
    pub name: String,
    /// What the old spec has and the new one lacks, one line each.
    pub removed: Vec<String>,
    /// What the new spec has and the old one lacks.
    pub added: Vec<String>,
}

/// The difference between two specs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecDiff {
    /// Device names only in the new spec, in its order.
    pub added: Vec<String>,
    /// Device names only in the old spec, in its order.
    pub removed: Vec<String>,
    /// Devices in both whose edits differ, in the new spec's order.
    pub changed: Vec<DeviceChange>,
    /// Differences outside the devices: cdiVersion, kind, annotations,
    /// spec-level edits (control nodes).
    pub spec: Vec<String>,
}

impl SpecDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.spec.is_empty()
    }
}

/// One line per edit, for showing what differs.
pub fn edit_lines(edits: &ContainerEdits) -> Vec<String> {
    let mut lines: Vec<String> = edits.device_nodes.iter().map(node_line).collect();
    lines.extend(edits.env.iter().map(|e| format!("env {e}")));
    lines.extend(
        edits
            .mounts
            .iter()
            .map(|m| format!("mount {} -> {}", m.host_path, m.container_path)),
    );
    lines.extend(
        edits
            .hooks
            .iter()
            .map(|h| format!("hook {} {} {}", h.hook_name, h.path, h.args.join(" "))),
    );
    if let Some(gids) = &edits.additional_gids {
        lines.push(format!("additionalGids {gids:?}"));
    }
    if let Some(rdt) = &edits.intel_rdt {
        lines.push(format!("intelRdt {rdt:?}"));
    }
    for net in edits.net_devices.iter().flatten() {
        lines.push(format!(
            "netDevice {} -> {}",
            net.host_interface_name, net.name
        ));
    }
    lines
}

fn node_line(node: &DeviceNode) -> String {
    let mut line = node.path.clone();
    if let Some(host) = &node.host_path {
        line.push_str(&format!(" (host {host})"));
    }
    if let (Some(major), Some(minor)) = (node.major, node.minor) {
        line.push_str(&format!(" {major}:{minor}"));
    }
    if let Some(mode) = node.file_mode {
        line.push_str(&format!(" mode {mode:o}"));
    }
    if let Some(p) = &node.permissions {
        line.push_str(&format!(" {p}"));
    }
    line
}

fn line_diff(old: &ContainerEdits, new: &ContainerEdits) -> (Vec<String>, Vec<String>) {
    let old_lines = edit_lines(old);
    let new_lines = edit_lines(new);
    let removed = old_lines
        .iter()
        .filter(|l| !new_lines.contains(l))
        .cloned()
        .collect();
    let added = new_lines
        .iter()
        .filter(|l| !old_lines.contains(l))
        .cloned()
        .collect();
    (removed, added)
}

/// Compare `old` (on disk) with `new` (generated now).
pub fn diff(old: &Spec, new: &Spec) -> SpecDiff {
    let old_devices: BTreeMap<&str, &ContainerEdits> = old
        .devices
        .iter()
        .map(|d| (d.name.as_str(), &d.container_edits))
        .collect();
    let new_devices: BTreeMap<&str, &ContainerEdits> = new
        .devices
        .iter()
        .map(|d| (d.name.as_str(), &d.container_edits))
        .collect();
    let mut result = SpecDiff::default();
    for device in &new.devices {
        match old_devices.get(device.name.as_str()) {
            None => result.added.push(device.name.clone()),
            Some(old_edits) if **old_edits != device.container_edits => {
                let (removed, added) = line_diff(old_edits, &device.container_edits);
                result.changed.push(DeviceChange {
                    name: device.name.clone(),
                    removed,
                    added,
                });
            }
            Some(_) => {}
        }
    }
    for device in &old.devices {
        if !new_devices.contains_key(device.name.as_str()) {
            result.removed.push(device.name.clone());
        }
    }
    if old.cdi_version != new.cdi_version {
        result.spec.push(format!(
            "cdiVersion {} -> {}",
            old.cdi_version, new.cdi_version
        ));
    }
    if old.kind != new.kind {
        result
            .spec
            .push(format!("kind {} -> {}", old.kind, new.kind));
    }
    if old.annotations != new.annotations {
        result.spec.push("annotations differ".into());
    }
    if old.container_edits != new.container_edits {
        let (removed, added) = line_diff(&old.container_edits, &new.container_edits);
        if removed.is_empty() && added.is_empty() {
            result.spec.push("spec-level edits differ in order".into());
        }
        for line in removed {
            result.spec.push(format!("spec-level edit removed: {line}"));
        }
        for line in added {
            result.spec.push(format!("spec-level edit added: {line}"));
        }
    }
    result
}
