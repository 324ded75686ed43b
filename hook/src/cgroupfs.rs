//! Where the container's device access is enforced: a cgroup v1 `devices`
//! folder (the hook appends rules there) or cgroup v2 (eBPF from
//! config.json, nothing to write).
//!
//! Read from `/proc/<pid>/cgroup` (the container's cgroups, as paths
//! relative to each hierarchy's root, seen from the hook's cgroup
//! namespace) and `/proc/self/mountinfo` (where the v1 devices hierarchy
//! is mounted). The parsers are pure and tested on real lines.

use std::path::{Path, PathBuf};

/// How the container's device access is enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupMode {
    /// cgroup v1 `devices` controller; the container's cgroup folder.
    V1 { dir: PathBuf },
    /// cgroup v2 (eBPF from config.json), or no devices controller.
    Unified,
}

/// The container's v1 devices cgroup path, if it has one.
pub fn devices_path(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "devices")
            .then_some(path)
    })
}

/// (root inside the hierarchy, mount point) of the v1 devices hierarchy.
pub fn devices_mount(mountinfo: &str) -> Option<(&str, &str)> {
    mountinfo.lines().find_map(|line| {
        // id parent maj:min root mountpoint options [optional...] - fstype source superopts
        let (left, right) = line.split_once(" - ")?;
        let mut right = right.split(' ');
        let (fstype, _source, superopts) = (right.next()?, right.next()?, right.next()?);
        if fstype != "cgroup" || !superopts.split(',').any(|o| o == "devices") {
            return None;
        }
        let mut left = left.split(' ');
        let root = left.nth(3)?;
        let mountpoint = left.next()?;
        Some((root, mountpoint))
    })
}

/// Octal escapes mountinfo uses for space, tab, newline, backslash.
fn unescape(text: &str) -> String {
    text.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Decide the mode from the two files' text.
pub fn mode(proc_cgroup: &str, mountinfo: &str) -> Result<CgroupMode, String> {
    let Some(path) = devices_path(proc_cgroup) else {
        return Ok(CgroupMode::Unified);
    };
    let (root, mountpoint) = devices_mount(mountinfo).ok_or_else(|| {
        "the container is in a cgroup v1 devices hierarchy that is not mounted in the hook's \
         mount namespace"
            .to_string()
    })?;
    let rel = Path::new(path).strip_prefix(unescape(root)).map_err(|_| {
        format!(
            "the container's devices cgroup {path} is outside the mounted hierarchy root {root}"
        )
    })?;
    if rel
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(format!("odd devices cgroup path {path}"));
    }
    Ok(CgroupMode::V1 {
        dir: PathBuf::from(unescape(mountpoint)).join(rel),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str =
        "13:hugetlb:/t1\n5:devices:/t1\n4:memory:/t1\n1:name=systemd:/t1\n0::/t1\n";
    const MOUNTINFO: &str = "\
25 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 25 0:26 / /sys/fs/cgroup rw,relatime shared:8 - tmpfs tmpfs rw,mode=755
36 31 0:31 / /sys/fs/cgroup/devices rw,relatime shared:13 - cgroup cgroup rw,devices
37 31 0:32 / /sys/fs/cgroup/unified rw,relatime shared:14 - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_v1_devices() {
        assert_eq!(devices_path(HYBRID), Some("/t1"));
        assert_eq!(
            mode(HYBRID, MOUNTINFO).unwrap(),
            CgroupMode::V1 {
                dir: "/sys/fs/cgroup/devices/t1".into()
            }
        );
    }

    #[test]
    fn pure_v2() {
        assert_eq!(
            mode("0::/system.slice/x.scope\n", "").unwrap(),
            CgroupMode::Unified
        );
    }

    #[test]
    fn comounted_controllers_and_nested_root() {
        let cg = "7:devices,freezer:/kubepods/pod1/c1\n";
        let mi = "40 31 0:33 /kubepods /sys/fs/cgroup/devices\\040x rw - cgroup cgroup rw,freezer,devices\n";
        assert_eq!(
            mode(cg, mi).unwrap(),
            CgroupMode::V1 {
                dir: "/sys/fs/cgroup/devices x/pod1/c1".into()
            }
        );
    }

    #[test]
    fn unmounted_hierarchy_is_an_error() {
        assert!(mode(HYBRID, "").is_err());
        assert!(mode("5:devices:/../x\n", MOUNTINFO).is_err());
    }
}
