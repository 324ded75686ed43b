//! The host around the driver, as doctor reads it: which processes hold
//! NVIDIA device nodes open, which boot units restore MIG, and where the
//! hook or the runtime wrapper is configured. Read only: files through
//! `fsread` (bounded, regular files only), folders listed, links read.
//!
//! Processes come from a procfs: `<root>/proc` when it is one (a host's
//! root mounted somewhere, with its procfs), otherwise the running
//! system's `/proc` (a fake root made by `mig-cdi-sim make-root` has
//! driver tables but no processes). A process counts when one of its
//! `/proc/<pid>/fd` links points at an NVIDIA node of *this* root:
//! `<root>/<dev-root>/dev/nvidia*` (with `--root /`: `/dev/nvidia*`).

use std::path::{Path, PathBuf};

use mig_cdi_core::fsread;

/// Largest unit, hook or runtime configuration file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// A process holding NVIDIA nodes open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// `/proc/<pid>/comm`.
    pub name: String,
    /// The nodes it holds, as container paths (`/dev/nvidia0`), sorted.
    pub nodes: Vec<String>,
}

/// What the process scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessScan {
    /// The procfs read.
    pub proc_dir: PathBuf,
    pub holders: Vec<Holder>,
    /// Processes whose fds could not be read (not root).
    pub unreadable: usize,
}

/// The procfs for `root`: its own when it has one, else the system's.
pub fn proc_dir(root: &Path) -> PathBuf {
    let own = root.join("proc");
    if own.join("self").exists() {
        own
    } else {
        PathBuf::from("/proc")
    }
}

/// Every process holding a node under `<root>/<dev_root>/dev` whose name
/// starts with `nvidia`.
pub fn scan_processes(root: &Path, dev_root: &Path) -> ProcessScan {
    let proc = proc_dir(root);
    let dev = root
        .join(dev_root.strip_prefix("/").unwrap_or(dev_root))
        .join("dev");
    let mut scan = ProcessScan {
        proc_dir: proc.clone(),
        ..ProcessScan::default()
    };
    let Ok(entries) = std::fs::read_dir(&proc) else {
        return scan;
    };
    let me = std::process::id();
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| pid != me)
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let fd_dir = proc.join(pid.to_string()).join("fd");
        let fds = match std::fs::read_dir(&fd_dir) {
            Ok(fds) => fds,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                scan.unreadable += 1;
                continue;
            }
            // Gone since the listing, or a kernel thread.
            Err(_) => continue,
        };
        let mut nodes: Vec<String> = fds
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter_map(|target| nvidia_node(&dev, &target))
            .collect();
        if nodes.is_empty() {
            continue;
        }
        nodes.sort();
        nodes.dedup();
        let name = fsread::read(&proc.join(pid.to_string()).join("comm"), 256)
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .unwrap_or_else(|_| "?".to_string());
        scan.holders.push(Holder { pid, name, nodes });
    }
    scan
}

/// `/dev/<rel>` when `target` is `<dev>/<rel>` and `rel` starts with
/// `nvidia` (`nvidia0`, `nvidiactl`, `nvidia-caps/nvidia-cap21`).
fn nvidia_node(dev: &Path, target: &Path) -> Option<String> {
    let rel = target.strip_prefix(dev).ok()?;
    let text = rel.to_str()?;
    text.starts_with("nvidia").then(|| format!("/dev/{text}"))
}

/// A systemd unit that may restore MIG at boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub path: PathBuf,
    /// `nvidia-mig-manager.service`.
    pub name: String,
    /// Some `*.wants/` folder links it (it starts at boot).
    pub enabled: bool,
    /// It (or a drop-in of it) runs `mig-cdi-gen generate` (or `watch`).
    pub regenerates_spec: bool,
}

/// Unit folders, in systemd's order of precedence.
pub const UNIT_DIRS: [&str; 3] = [
    "etc/systemd/system",
    "lib/systemd/system",
    "usr/lib/systemd/system",
];

/// mig-parted's hook files (its systemd install reads them).
pub const MIG_MANAGER_DIR: &str = "etc/nvidia-mig-manager";

/// What shows that a unit restores MIG: mig-parted's unit, a unit of
/// ours, or one that runs mig-parted or creates instances itself.
fn restores_mig(name: &str, text: &str) -> bool {
    name == "nvidia-mig-manager.service"
        || name.starts_with("mig-cdi")
        || text.contains("nvidia-mig-parted")
        || (text.contains("nvidia-smi mig") && text.contains("-cgi"))
}

/// `mig-cdi-gen generate`, or `watch`, which rewrites the spec on every
/// change (examples/refresh/mig-cdi-watch.service).
fn runs_generate(text: &str) -> bool {
    text.contains("mig-cdi-gen generate") || text.contains("mig-cdi-gen watch")
}

fn read_text(path: &Path) -> Option<String> {
    fsread::read(path, MAX_CONFIG_BYTES)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// File names in `dir` (none if it cannot be listed), sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Every unit under `root` that restores MIG at boot, the first of each
/// name in systemd's precedence; whether mig-parted's hooks run
/// `mig-cdi-gen generate` counts for its unit.
pub fn scan_units(root: &Path) -> Vec<Unit> {
    let hooks_regenerate = names_in(&root.join(MIG_MANAGER_DIR))
        .iter()
        .filter_map(|n| read_text(&root.join(MIG_MANAGER_DIR).join(n)))
        .any(|t| runs_generate(&t));
    let wants: Vec<PathBuf> = names_in(&root.join(UNIT_DIRS[0]))
        .into_iter()
        .filter(|n| n.ends_with(".wants"))
        .map(|n| root.join(UNIT_DIRS[0]).join(n))
        .collect();
    let mut units: Vec<Unit> = Vec::new();
    for dir in UNIT_DIRS {
        let dir = root.join(dir);
        for name in names_in(&dir) {
            if !name.ends_with(".service") || units.iter().any(|u| u.name == name) {
                continue;
            }
            let path = dir.join(&name);
            let Some(text) = read_text(&path) else {
                continue;
            };
            if !restores_mig(&name, &text) {
                continue;
            }
            let dropins = UNIT_DIRS
                .iter()
                .map(|d| root.join(d).join(format!("{name}.d")))
                .flat_map(|d| {
                    names_in(&d)
                        .into_iter()
                        .filter_map(move |n| read_text(&d.join(n)))
                })
                .collect::<Vec<_>>();
            let regenerates_spec = runs_generate(&text)
                || dropins.iter().any(|t| runs_generate(t))
                || (name == "nvidia-mig-manager.service" && hooks_regenerate);
            let enabled = wants
                .iter()
                .any(|w| std::fs::symlink_metadata(w.join(&name)).is_ok());
            units.push(Unit {
                path,
                name,
                enabled,
                regenerates_spec,
            });
        }
    }
    units
}

/// Where the hook or the runtime wrapper is configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// podman hooks.d files whose `hook.path` is `mig-cdi-hook`: `(file,
    /// hook path, stages)`.
    pub podman_hooks: Vec<(PathBuf, String, Vec<String>)>,
    /// `/etc/docker/daemon.json` runtimes whose `path` is
    /// `mig-cdi-runtime`: `(file, runtime name, path)`.
    pub docker_runtimes: Vec<(PathBuf, String, String)>,
    /// `/etc/containerd/config.toml` lines naming `mig-cdi-runtime` as a
    /// `BinaryName`: `(file, line number, line)`.
    pub containerd_lines: Vec<(PathBuf, usize, String)>,
}

/// podman's hook folders (`--hooks-dir` defaults).
pub const PODMAN_HOOK_DIRS: [&str; 2] = [
    "usr/share/containers/oci/hooks.d",
    "etc/containers/oci/hooks.d",
];
/// docker's daemon configuration.
pub const DOCKER_DAEMON_JSON: &str = "etc/docker/daemon.json";
/// containerd's configuration.
pub const CONTAINERD_CONFIG: &str = "etc/containerd/config.toml";

fn file_name_is(path: &str, name: &str) -> bool {
    Path::new(path).file_name().and_then(|n| n.to_str()) == Some(name)
}

pub fn scan_runtimes(root: &Path) -> RuntimeConfig {
    let mut config = RuntimeConfig::default();
    for dir in PODMAN_HOOK_DIRS {
        let dir = root.join(dir);
        for name in names_in(&dir).into_iter().filter(|n| n.ends_with(".json")) {
            let path = dir.join(&name);
            let Some(value) =
                read_text(&path).and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            else {
                continue;
            };
            let Some(hook) = value["hook"]["path"].as_str() else {
                continue;
            };
            if file_name_is(hook, "mig-cdi-hook") {
                let stages = value["stages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect();
                config.podman_hooks.push((path, hook.to_string(), stages));
            }
        }
    }
    let path = root.join(DOCKER_DAEMON_JSON);
    if let Some(value) =
        read_text(&path).and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    {
        if let Some(runtimes) = value["runtimes"].as_object() {
            for (name, runtime) in runtimes {
                if let Some(p) = runtime["path"]
                    .as_str()
                    .filter(|p| file_name_is(p, "mig-cdi-runtime"))
                {
                    config
                        .docker_runtimes
                        .push((path.clone(), name.clone(), p.to_string()));
                }
            }
        }
    }
    let path = root.join(CONTAINERD_CONFIG);
    if let Some(text) = read_text(&path) {
        for (n, line) in text.lines().enumerate() {
            if line.contains("BinaryName") && line.contains("mig-cdi-runtime") {
                config
                    .containerd_lines
                    .push((path.clone(), n + 1, line.trim().to_string()));
            }
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_of_this_root_only() {
        let dev = Path::new("/r/dev");
        assert_eq!(
            nvidia_node(dev, Path::new("/r/dev/nvidia0")),
            Some("/dev/nvidia0".into())
        );
        assert_eq!(
            nvidia_node(dev, Path::new("/r/dev/nvidia-caps/nvidia-cap21")),
            Some("/dev/nvidia-caps/nvidia-cap21".into())
        );
        assert_eq!(nvidia_node(dev, Path::new("/other/dev/nvidia0")), None);
        assert_eq!(nvidia_node(dev, Path::new("/r/dev/null")), None);
        assert_eq!(
            nvidia_node(Path::new("/dev"), Path::new("/dev/nvidiactl")),
            Some("/dev/nvidiactl".into())
        );
    }

    #[test]
    fn units_that_restore_mig() {
        assert!(restores_mig("nvidia-mig-manager.service", ""));
        assert!(restores_mig("mig-cdi.service", ""));
        assert!(restores_mig(
            "x.service",
            "ExecStart=/usr/bin/nvidia-smi mig -cgi 19,19 -C"
        ));
        assert!(!restores_mig(
            "x.service",
            "ExecStart=/usr/bin/nvidia-smi -pm 1"
        ));
    }
}
