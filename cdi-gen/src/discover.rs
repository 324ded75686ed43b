//! Discovery: NVML + the driver's tables + the host's /dev, checked.
//!
//! One pass: take the NVML snapshot, read the tables, plan the nodes, check
//! every node on the host, and only then (with `--create-device-nodes`)
//! create the missing capability nodes. Any other problem stops discovery
//! with every offending node listed, before anything is created.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use mig_cdi_core::driver::DriverTables;
use mig_cdi_core::nodes::{self, HostNodeIssue, HostProblem, Inventory, NodeRole};
use mig_cdi_core::snapshot::Snapshot;

use crate::mknod;
use crate::nvml;

/// Where to look and what may be done.
#[derive(Debug, Clone)]
pub struct DiscoverOptions {
    pub root: PathBuf,
    pub dev_root: PathBuf,
    pub nvml_lib: OsString,
    pub create_device_nodes: bool,
}

/// Everything known about the node, checked against the host.
#[derive(Debug)]
pub struct Discovery {
    pub snapshot: Snapshot,
    pub inventory: Inventory,
    pub driver_version: String,
    /// Capability nodes created by `--create-device-nodes`.
    pub created: Vec<PathBuf>,
}

pub fn discover(options: &DiscoverOptions) -> Result<Discovery> {
    let snapshot = nvml::take_snapshot(&options.nvml_lib)?;
    // Capability minors matter only where some GPU is in MIG mode.
    let tables = if snapshot.gpus.iter().any(|g| g.mig_enabled()) {
        DriverTables::load(&options.root)?
    } else {
        DriverTables::load_without_mig_minors(&options.root)?
    };
    let mut inventory = nodes::plan(&snapshot, &tables)?;
    let issues = nodes::check_host(&mut inventory, &options.root, &options.dev_root);
    let creatable = resolve_issues(&mut inventory, issues, options.create_device_nodes)?;
    let mut created = Vec::new();
    for issue in &creatable {
        mknod::create_char_node(
            &issue.host_path,
            issue.node.major,
            issue.node.minor,
            issue.node.mode,
        )
        .with_context(|| {
            format!("while creating missing capability nodes (created so far: {created:?})")
        })?;
        created.push(issue.host_path.clone());
    }
    Ok(Discovery {
        driver_version: tables.version.clone(),
        snapshot,
        inventory,
        created,
    })
}

fn is_instance_cap(role: NodeRole) -> bool {
    matches!(role, NodeRole::GiAccess | NodeRole::CiAccess)
}

fn is_management(role: NodeRole) -> bool {
    matches!(role, NodeRole::MigConfig | NodeRole::MigMonitor)
}

/// Sort the host problems: missing instance capabilities may be created
/// (when asked), missing management capabilities are dropped with a warning
/// (they are only for privileged containers), anything else is an error.
fn resolve_issues(
    inventory: &mut Inventory,
    issues: Vec<HostNodeIssue>,
    create: bool,
) -> Result<Vec<HostNodeIssue>> {
    let mut creatable = Vec::new();
    let mut fatal = Vec::new();
    for issue in issues {
        let missing = issue.problem == HostProblem::Missing;
        if missing && is_management(issue.node.role) {
            eprintln!(
                "mig-cdi-gen: warning: {issue}; privileged containers will not get MIG {} rights",
                if issue.node.role == NodeRole::MigConfig {
                    "config"
                } else {
                    "monitor"
                }
            );
            for (_, nodes) in &mut inventory.mig_management {
                nodes.retain(|n| n.path != issue.node.path);
            }
        } else if missing && create && is_instance_cap(issue.node.role) {
            creatable.push(issue);
        } else {
            fatal.push(issue);
        }
    }
    inventory
        .mig_management
        .retain(|(_, nodes)| !nodes.is_empty());
    if fatal.is_empty() {
        return Ok(creatable);
    }
    let caps_missing = fatal
        .iter()
        .any(|i| i.problem == HostProblem::Missing && is_instance_cap(i.node.role));
    let mut message = format!(
        "{} device node(s) on the host are not as the driver says:",
        fatal.len()
    );
    for issue in &fatal {
        message.push_str(&format!("\n  {issue}{}", who_needs(inventory, issue)));
    }
    if caps_missing {
        message.push_str(
            "\nmissing MIG capability nodes: rerun with --create-device-nodes to create them \
             (or create them with nvidia-modprobe -f <capability file>)",
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

fn who_needs(inventory: &Inventory, issue: &HostNodeIssue) -> String {
    let users: Vec<String> = inventory
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
