//! The one place the generator changes the host: creating missing MIG
//! capability nodes, with the driver's mode, and nothing else. Only
//! `generate --create-device-nodes` calls it, after discovery, the spec
//! and its check have all passed.

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use mig_cdi_core::nodes::HostNodeIssue;
use nix::errno::Errno;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

/// Create the node of each issue (missing instance capability nodes, as
/// `Discovery::require_host_nodes` returned them); the paths created.
pub fn create_missing(issues: &[&HostNodeIssue]) -> Result<Vec<PathBuf>> {
    let mut created = Vec::new();
    for issue in issues {
        let node = &issue.node;
        create_char_node(&issue.host_path, node.major, node.minor, node.mode).with_context(
            || format!("while creating missing capability nodes (created so far: {created:?})"),
        )?;
        created.push(issue.host_path.clone());
    }
    Ok(created)
}

/// Create the character device `path` (`major:minor`, `mode`). Its folder
/// must exist; an existing entry is never replaced.
pub fn create_char_node(path: &Path, major: u32, minor: u32, mode: u32) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        bail!(
            "cannot create {}: {} does not exist; the driver's capability folder is created by \
             nvidia-modprobe (or nvidia-smi) — run `nvidia-modprobe -f \
             /proc/driver/nvidia/capabilities/mig/config` first",
            path.display(),
            parent.display()
        );
    }
    let dev = makedev(u64::from(major), u64::from(minor));
    mknod(path, SFlag::S_IFCHR, Mode::from_bits_truncate(mode), dev).map_err(|errno| {
        let hint = match errno {
            Errno::EPERM => "; mknod needs root (CAP_MKNOD)",
            Errno::EEXIST => "; something appeared there since it was checked: run again",
            _ => "",
        };
        anyhow!(
            "cannot create {} (char {major}:{minor}): {errno}{hint}",
            path.display()
        )
    })?;
    // mknod applied the umask; give the node exactly the driver's mode.
    std::fs::set_permissions(path, Permissions::from_mode(mode))
        .with_context(|| format!("cannot set mode {mode:o} on {}", path.display()))
}
