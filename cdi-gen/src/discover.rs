//! Discovery: NVML + the driver's tables + the host's /dev, read and
//! checked, never changed.
//!
//! One pass: take the NVML snapshot, read the tables, plan the nodes and
//! examine every node on the host. What is wrong with the host comes back
//! as data beside the inventory ([`Discovery::host_issues`]); each command
//! decides what it can live with ([`Discovery::require_host_nodes`]), and
//! only `generate --create-device-nodes` acts on it, after every check
//! has passed (`crate::mknod`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use mig_cdi_core::driver::DriverTables;
use mig_cdi_core::nodes::{self, HostNodeIssue, HostProblem, Inventory, NodeRole};
use mig_cdi_core::snapshot::Snapshot;

use crate::nvml;

/// Where to look, and what to read beyond what every command needs.
#[derive(Debug, Clone)]
pub struct DiscoverOptions {
    pub root: PathBuf,
    pub dev_root: PathBuf,
    pub nvml_lib: OsString,
    pub reads: nvml::Reads,
}

/// Everything known about the node, checked against the host.
#[derive(Debug)]
pub struct Discovery {
    pub snapshot: Snapshot,
    /// Missing MIG management nodes are left out of it (see
    /// [`Self::dropped_management`]); every other node is in it, as the
    /// driver describes it, whatever the host has.
    pub inventory: Inventory,
    pub driver_version: String,
    /// Nodes the host does not have as the driver says, in node order
    /// (the missing management nodes aside).
    pub host_issues: Vec<HostNodeIssue>,
    /// Missing `mig/config` / `mig/monitor` nodes, dropped from the
    /// inventory: they only give privileged containers MIG management.
    pub dropped_management: Vec<HostNodeIssue>,
}

pub fn discover(options: &DiscoverOptions) -> Result<Discovery> {
    let snapshot = nvml::take_snapshot(&options.nvml_lib, options.reads)?;
    crate::info!(
        "NVML {}: driver {}, {} GPU(s), {} in MIG mode",
        options.nvml_lib.to_string_lossy(),
        snapshot.driver_version,
        snapshot.gpus.len(),
        snapshot.gpus.iter().filter(|g| g.mig_enabled()).count()
    );
    for gpu in &snapshot.gpus {
        crate::debug!(
            "GPU {} minor {} {} {}: {} MIG device(s)",
            gpu.index,
            gpu.minor,
            gpu.pci_bus_id,
            gpu.uuid,
            gpu.mig_devices.len()
        );
    }
    let found = examine_host(snapshot, &options.root, &options.dev_root)?;
    crate::info!(
        "driver tables under {}: {} device(s), {} control node(s), {} host node problem(s)",
        options.root.display(),
        found.inventory.devices.len(),
        found.inventory.control_nodes.len(),
        found.host_issues.len()
    );
    Ok(found)
}

/// Discovery from a snapshot already taken: the driver's tables under
/// `root`, the node plan, and every node examined on the host (`doctor`
/// takes its own snapshot, with more in it, and asks this of it).
pub fn examine_host(snapshot: Snapshot, root: &Path, dev_root: &Path) -> Result<Discovery> {
    // Capability minors matter only where some GPU is in MIG mode, and
    // only those of such GPUs.
    let mig_gpus: Vec<u32> = snapshot
        .gpus
        .iter()
        .filter(|g| g.mig_enabled())
        .map(|g| g.minor)
        .collect();
    let tables = if !mig_gpus.is_empty() {
        DriverTables::load_for_gpus(root, &mig_gpus)?
    } else {
        DriverTables::load_without_mig_minors(root)?
    };
    let mut inventory = nodes::plan(&snapshot, &tables)?;
    let issues = nodes::check_host(&mut inventory, root, dev_root);
    let (dropped_management, host_issues): (Vec<_>, Vec<_>) = issues
        .into_iter()
        .partition(|i| i.problem == HostProblem::Missing && is_management(i.node.role));
    for issue in &dropped_management {
        for (_, nodes) in &mut inventory.mig_management {
            nodes.retain(|n| n.path != issue.node.path);
        }
    }
    inventory
        .mig_management
        .retain(|(_, nodes)| !nodes.is_empty());
    Ok(Discovery {
        driver_version: tables.version.clone(),
        snapshot,
        inventory,
        host_issues,
        dropped_management,
    })
}

fn is_instance_cap(role: NodeRole) -> bool {
    matches!(role, NodeRole::GiAccess | NodeRole::CiAccess)
}

fn is_management(role: NodeRole) -> bool {
    matches!(role, NodeRole::MigConfig | NodeRole::MigMonitor)
}

/// A missing GPU-instance or compute-instance capability node: the one
/// problem `generate --create-device-nodes` may mend.
pub fn is_creatable(issue: &HostNodeIssue) -> bool {
    issue.problem == HostProblem::Missing && is_instance_cap(issue.node.role)
}

impl Discovery {
    /// What to tell the user even when nothing fails.
    pub fn warnings(&self) -> Vec<String> {
        self.dropped_management
            .iter()
            .map(|issue| {
                format!(
                    "{issue}; privileged containers will not get MIG {} rights",
                    if issue.node.role == NodeRole::MigConfig {
                        "config"
                    } else {
                        "monitor"
                    }
                )
            })
            .collect()
    }

    /// Every node must be on the host as the driver says, except, when
    /// `may_create`, missing instance capability nodes: those are returned,
    /// to be created. Otherwise an error listing every offending node and
    /// what to do about it.
    pub fn require_host_nodes(&self, may_create: bool) -> Result<Vec<&HostNodeIssue>> {
        let (creatable, fatal): (Vec<&HostNodeIssue>, Vec<&HostNodeIssue>) = self
            .host_issues
            .iter()
            .partition(|i| may_create && is_creatable(i));
        if fatal.is_empty() {
            return Ok(creatable);
        }
        let mut message = format!(
            "{} device node(s) on the host are not as the driver says:",
            fatal.len()
        );
        for issue in &fatal {
            message.push_str(&format!("\n  {issue}{}", self.who_needs(issue)));
        }
        if fatal.iter().any(|i| is_creatable(i)) {
            message.push_str(
                "\nmissing MIG capability nodes: run `mig-cdi-gen generate --create-device-nodes` \
                 to create them (or create them with nvidia-modprobe -f <capability file>)",
            );
        }
        if fatal.iter().any(|i| i.problem != HostProblem::Missing) {
            message.push_str(
                "\na node with the wrong type or number is never replaced: remove it, reload the \
                 driver or recreate the node, then run again",
            );
        }
        bail!(message)
    }

    fn who_needs(&self, issue: &HostNodeIssue) -> String {
        let users: Vec<String> = self
            .inventory
            .devices
            .iter()
            .filter(|d| d.nodes.iter().any(|n| n.path == issue.node.path))
            .map(|d| format!("{} ({})", d.index_name(), d.uuid))
            .collect();
        match (issue.node.role, users.is_empty()) {
            (NodeRole::Control, _) => " — needed by every GPU container".to_string(),
            (_, true) => String::new(),
            (_, false) => format!(" — needed by {}", users.join(", ")),
        }
    }
}
