//! The fake driver root: the /proc tables and /dev nodes the real driver
//! would show for a [`Machine`], written under a directory.
//!
//! The generator reads NVML (the simulated library) *and* the driver's
//! /proc tables; the hook re-checks device nodes against /proc. Both must
//! agree, so both come from the same validated [`Machine`]. The tree is
//! modelled on the real H200 snapshot (`shared/fixtures/driver/
//! h200-580.159.04`): for `examples/machines/h200.json` every file written
//! here is byte-identical to the snapshot's, and the nodes match
//! `dev-stat.txt`.
//!
//! [`plan`] is a pure function from a machine to the entries to create;
//! [`build`] writes them. `build` only ever creates or removes paths below
//! `root`, refuses to follow a symlink on the way, and refuses a root that
//! is not empty unless told to overwrite (then it replaces only what it
//! generates: `proc/devices`, `proc/driver/nvidia*`, `dev/nvidia*`).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::description::CapabilityModel;
use crate::machine::{Machine, MigState};
use crate::sys;

/// Major of `nvidia` / `nvidiactl` in /proc/devices.
pub const NVIDIA_MAJOR: u32 = 195;
/// Minor of `/dev/nvidiactl`.
pub const NVIDIACTL_MINOR: u32 = 255;
/// Major of `nvidia-uvm`.
pub const NVIDIA_UVM_MAJOR: u32 = 238;
/// Major of `nvidia-caps`.
pub const NVIDIA_CAPS_MAJOR: u32 = 241;
/// mig-minors: `config`.
pub const MIG_CONFIG_MINOR: u32 = 1;
/// mig-minors: `monitor`.
pub const MIG_MONITOR_MINOR: u32 = 2;
/// GPU minors the static mig-minors table covers (0..32).
pub const MIG_MINORS_GPUS: u32 = 32;
/// GPU instance ids per GPU in the table (0..15).
pub const MIG_MINORS_GIS: u32 = 15;
/// Compute instance ids per GI in the table (0..8).
pub const MIG_MINORS_CIS: u32 = 8;

const PROC_DEVICES: &str = include_str!("templates/proc-devices");
const PARAMS: &str = include_str!("templates/params");
const FABRIC_IMEX_MGMT_MINOR: u32 = 4323;
const ACCESS_MODE: u32 = 0o444;

/// Capability minor of `gpu<gpu_minor>/gi<gi>/access` in mig-minors.
pub fn gi_access_minor(gpu_minor: u32, gi: u32) -> u32 {
    let per_gi = 1 + MIG_MINORS_CIS;
    MIG_MONITOR_MINOR + 1 + gpu_minor * MIG_MINORS_GIS * per_gi + gi * per_gi
}

/// Capability minor of `gpu<gpu_minor>/gi<gi>/ci<ci>/access` in mig-minors.
pub fn ci_access_minor(gpu_minor: u32, gi: u32, ci: u32) -> u32 {
    gi_access_minor(gpu_minor, gi) + 1 + ci
}

/// The driver's static `/proc/driver/nvidia-caps/mig-minors` table.
pub fn mig_minors_table() -> String {
    let mut out = format!("config {MIG_CONFIG_MINOR}\nmonitor {MIG_MONITOR_MINOR}\n");
    for gpu in 0..MIG_MINORS_GPUS {
        for gi in 0..MIG_MINORS_GIS {
            let _ = writeln!(out, "gpu{gpu}/gi{gi}/access {}", gi_access_minor(gpu, gi));
            for ci in 0..MIG_MINORS_CIS {
                let _ = writeln!(
                    out,
                    "gpu{gpu}/gi{gi}/ci{ci}/access {}",
                    ci_access_minor(gpu, gi, ci)
                );
            }
        }
    }
    out
}

/// One thing to create, by path relative to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory (mode 0755).
    Dir {
        /// Relative path.
        path: PathBuf,
    },
    /// A regular file (mode 0444, like /proc).
    File {
        /// Relative path.
        path: PathBuf,
        /// Contents.
        contents: String,
    },
    /// A file of the driver's user space (a stand-in library, a utility,
    /// firmware), with its mode.
    Binary {
        /// Relative path.
        path: PathBuf,
        /// Contents.
        contents: Vec<u8>,
        /// Permission bits.
        mode: u32,
    },
    /// A character device node.
    CharDevice {
        /// Relative path.
        path: PathBuf,
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
        /// Permission bits.
        mode: u32,
    },
}

impl Entry {
    /// Path relative to the root.
    pub fn path(&self) -> &Path {
        match self {
            Entry::Dir { path }
            | Entry::File { path, .. }
            | Entry::Binary { path, .. }
            | Entry::CharDevice { path, .. } => path,
        }
    }
}

/// Collects entries, adding parent directories first.
#[derive(Default)]
struct Planner {
    entries: Vec<Entry>,
    dirs: BTreeSet<PathBuf>,
}

impl Planner {
    fn dir(&mut self, path: &Path) {
        if path.as_os_str().is_empty() || self.dirs.contains(path) {
            return;
        }
        if let Some(parent) = path.parent() {
            self.dir(parent);
        }
        self.dirs.insert(path.to_path_buf());
        self.entries.push(Entry::Dir {
            path: path.to_path_buf(),
        });
    }

    fn file(&mut self, path: impl Into<PathBuf>, contents: impl Into<String>) {
        let path = path.into();
        if let Some(parent) = path.parent() {
            self.dir(parent);
        }
        self.entries.push(Entry::File {
            path,
            contents: contents.into(),
        });
    }

    fn binary(&mut self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>, mode: u32) {
        let path = path.into();
        if let Some(parent) = path.parent() {
            self.dir(parent);
        }
        self.entries.push(Entry::Binary {
            path,
            contents: contents.into(),
            mode,
        });
    }

    fn node(&mut self, path: impl Into<PathBuf>, major: u32, minor: u32, mode: u32) {
        let path = path.into();
        if let Some(parent) = path.parent() {
            self.dir(parent);
        }
        self.entries.push(Entry::CharDevice {
            path,
            major,
            minor,
            mode,
        });
    }
}

fn capability(minor: u32, mode: u32) -> String {
    format!("DeviceFileMinor: {minor}\nDeviceFileMode: {mode}\nDeviceFileModify: 1\n")
}

fn information(machine: &Machine, gpu: &crate::machine::Gpu) -> String {
    format!(
        "Model: \t\t {}\nIRQ:   \t\t {}\nGPU UUID: \t {}\nVideo BIOS: \t {}\nBus Type: \t PCIe\n\
         DMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\nBus Location: \t {}\n\
         Device Minor: \t {}\nGPU Firmware: \t {}\nGPU Excluded:\t No\n",
        gpu.name(),
        gpu.irq(),
        gpu.uuid(),
        gpu.vbios(),
        gpu.pci().proc_form(),
        gpu.minor(),
        machine.driver_version(),
    )
}

/// Everything the host shows for `machine`, in creation order: what the
/// driver makes, with the machine's planted faults
/// ([`Machine::fake_root`]) applied.
pub fn plan(machine: &Machine) -> Vec<Entry> {
    let faults = machine.fake_root();
    let proc_model = machine.capability_model() == CapabilityModel::Proc;
    let caps_dir = Path::new("dev/nvidia-caps");
    let mut entries = Vec::new();
    for mut entry in driver_plan(machine) {
        let container_path = format!("/{}", entry.path().display());
        match &mut entry {
            Entry::File { path, contents } if proc_model && path == Path::new("proc/devices") => {
                *contents = contents
                    .lines()
                    .filter(|line| line.split_whitespace().nth(1) != Some("nvidia-caps"))
                    .map(|line| format!("{line}\n"))
                    .collect();
            }
            Entry::Dir { path } | Entry::CharDevice { path, .. }
                if proc_model && path.starts_with(caps_dir) =>
            {
                continue;
            }
            Entry::CharDevice { .. } if faults.missing_nodes.contains(&container_path) => {
                continue;
            }
            Entry::CharDevice { major, minor, .. } => {
                if let Some(wrong) = faults.wrong_nodes.iter().find(|w| w.path == container_path) {
                    (*major, *minor) = (wrong.major, wrong.minor);
                }
            }
            _ => {}
        }
        entries.push(entry);
    }
    if proc_model {
        let mut p = Planner::default();
        p.file("sys/module/nvidia/parameters/nv_cap_enable_devfs", "0\n");
        entries.extend(p.entries);
    }
    entries
}

/// The container paths (`/dev/...`) of every node the driver makes for
/// `machine`, before any planted fault.
pub fn node_paths(machine: &Machine) -> BTreeSet<String> {
    driver_plan(machine)
        .iter()
        .filter(|e| matches!(e, Entry::CharDevice { .. }))
        .map(|e| format!("/{}", e.path().display()))
        .collect()
}

/// Everything the driver would show for `machine`, in creation order.
fn driver_plan(machine: &Machine) -> Vec<Entry> {
    let mut p = Planner::default();
    let nvidia = Path::new("proc/driver/nvidia");
    let caps_dir = Path::new("proc/driver/nvidia-caps");
    let capabilities = nvidia.join("capabilities");

    p.file("proc/devices", PROC_DEVICES);
    p.file(
        nvidia.join("version"),
        format!(
            "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  {}  Release Build  (nixbld@)  \n\
             GCC version:  gcc version 15.3.0 (GCC) \n",
            machine.driver_version()
        ),
    );
    p.file(nvidia.join("params"), PARAMS);
    for (path, contents, mode) in driver_files(machine.driver_version()) {
        p.binary(path, contents, mode);
    }
    for gpu in machine.gpus() {
        p.file(
            nvidia
                .join("gpus")
                .join(gpu.pci().proc_form())
                .join("information"),
            information(machine, gpu),
        );
    }
    p.file(
        capabilities.join("fabric-imex-mgmt"),
        capability(FABRIC_IMEX_MGMT_MINOR, 0o400),
    );
    p.file(
        capabilities.join("mig/config"),
        capability(MIG_CONFIG_MINOR, 0o400),
    );
    p.file(
        capabilities.join("mig/monitor"),
        capability(MIG_MONITOR_MINOR, ACCESS_MODE),
    );
    for gpu in machine.gpus() {
        if gpu.mig() == MigState::Unsupported {
            continue;
        }
        let mig = capabilities.join(format!("gpu{}/mig", gpu.minor()));
        p.dir(&mig);
        for gi in gpu.gpu_instances() {
            let gi_dir = mig.join(format!("gi{}", gi.id()));
            p.file(
                gi_dir.join("access"),
                capability(gi_access_minor(gpu.minor(), gi.id()), ACCESS_MODE),
            );
            for ci in gi.compute_instances() {
                p.file(
                    gi_dir.join(format!("ci{}/access", ci.id())),
                    capability(ci_access_minor(gpu.minor(), gi.id(), ci.id()), ACCESS_MODE),
                );
            }
        }
    }
    p.file(caps_dir.join("mig-minors"), mig_minors_table());
    p.file(caps_dir.join("nvlink-minors"), "fabric-mgmt 0\n");
    p.file(
        caps_dir.join("sys-minors"),
        format!("fabric-imex-mgmt {FABRIC_IMEX_MGMT_MINOR}\n"),
    );

    for gpu in machine.gpus() {
        p.node(
            format!("dev/nvidia{}", gpu.minor()),
            NVIDIA_MAJOR,
            gpu.minor(),
            0o666,
        );
    }
    p.node("dev/nvidiactl", NVIDIA_MAJOR, NVIDIACTL_MINOR, 0o666);
    p.node("dev/nvidia-uvm", NVIDIA_UVM_MAJOR, 0, 0o666);
    p.node("dev/nvidia-uvm-tools", NVIDIA_UVM_MAJOR, 1, 0o666);
    p.node(
        "dev/nvidia-caps/nvidia-cap1",
        NVIDIA_CAPS_MAJOR,
        MIG_CONFIG_MINOR,
        0o400,
    );
    p.node(
        "dev/nvidia-caps/nvidia-cap2",
        NVIDIA_CAPS_MAJOR,
        MIG_MONITOR_MINOR,
        ACCESS_MODE,
    );
    for gpu in machine.gpus() {
        for gi in gpu.gpu_instances() {
            let minor = gi_access_minor(gpu.minor(), gi.id());
            p.node(
                format!("dev/nvidia-caps/nvidia-cap{minor}"),
                NVIDIA_CAPS_MAJOR,
                minor,
                ACCESS_MODE,
            );
            for ci in gi.compute_instances() {
                let minor = ci_access_minor(gpu.minor(), gi.id(), ci.id());
                p.node(
                    format!("dev/nvidia-caps/nvidia-cap{minor}"),
                    NVIDIA_CAPS_MAJOR,
                    minor,
                    ACCESS_MODE,
                );
            }
        }
    }
    p.entries
}

/// How to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildOptions {
    /// Create the /dev character devices (needs root). Without them only
    /// the `dev/` folders are made.
    pub nodes: bool,
    /// Build over a non-empty root, replacing what a previous build made.
    pub overwrite: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            nodes: true,
            overwrite: false,
        }
    }
}

/// Why a fake root could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FakeRootError {
    /// The root resolves to `/`.
    #[error("refusing to build a fake driver root at {0}: it is the real root")]
    RealRoot(PathBuf),
    /// The root has content and overwrite was not asked for.
    #[error("{0} is not empty; build into an empty or new directory, or ask to overwrite")]
    NotEmpty(PathBuf),
    /// The root or a folder on the way is not a directory.
    #[error("{0} exists and is not a directory")]
    NotADirectory(PathBuf),
    /// A symlink on the way: the builder never follows links.
    #[error("{0} is a symbolic link; the fake root builder never follows links")]
    Symlink(PathBuf),
    /// Device nodes asked for without root.
    #[error("creating device nodes needs root: mknod needs CAP_MKNOD; build without nodes (--no-nodes) instead")]
    NeedsRoot,
    /// An entry path that is not a plain relative path (a bug in the plan).
    #[error("refusing path {0}: not a plain relative path")]
    BadPath(PathBuf),
    /// A filesystem operation failed.
    #[error("failed to {op} {path}: {source}")]
    Io {
        /// What was done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FakeRootError {
    let path = path.to_path_buf();
    move |source| FakeRootError::Io { op, path, source }
}

/// Joins `rel` under `root`, refusing `..`, absolute parts and any existing
/// symlink on the way (the last component included).
fn scoped(root: &Path, rel: &Path) -> Result<PathBuf, FakeRootError> {
    let mut path = root.to_path_buf();
    for component in rel.components() {
        let Component::Normal(part) = component else {
            return Err(FakeRootError::BadPath(rel.to_path_buf()));
        };
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(FakeRootError::Symlink(path));
            }
            _ => {}
        }
    }
    Ok(path)
}

/// The driver's user-space files of `version`, as stand-ins: the three
/// libraries CUDA needs (tiny ELF objects that carry the real sonames, so
/// discovery reads them as on a real host), `nvidia-smi` and GSP firmware.
/// In `usr/lib/x86_64-linux-gnu`, `usr/bin` and `lib/firmware`.
pub fn driver_files(version: &str) -> Vec<(PathBuf, Vec<u8>, u32)> {
    let mut files = Vec::new();
    for (stem, soname) in [
        ("libcuda.so", "libcuda.so.1"),
        ("libnvidia-ml.so", "libnvidia-ml.so.1"),
        (
            "libnvidia-ptxjitcompiler.so",
            "libnvidia-ptxjitcompiler.so.1",
        ),
    ] {
        files.push((
            PathBuf::from(format!("usr/lib/x86_64-linux-gnu/{stem}.{version}")),
            mig_cdi_core::elf::stub_shared_object(soname),
            0o755,
        ));
    }
    files.push((
        PathBuf::from("usr/bin/nvidia-smi"),
        b"#!/bin/sh\necho 'nvidia-smi stand-in (mig-cdi simulator)'\n".to_vec(),
        0o755,
    ));
    files.push((
        PathBuf::from(format!("lib/firmware/nvidia/{version}/gsp_ga10x.bin")),
        b"GSP firmware stand-in\n".to_vec(),
        0o644,
    ));
    files
}

/// What `overwrite` clears: exactly what [`plan`] generates at the top.
fn generated_paths(root: &Path) -> Result<Vec<PathBuf>, FakeRootError> {
    let mut paths = vec![
        scoped(root, Path::new("proc/devices"))?,
        scoped(root, Path::new("proc/driver/nvidia"))?,
        scoped(root, Path::new("proc/driver/nvidia-caps"))?,
        scoped(root, Path::new("lib/firmware/nvidia"))?,
        scoped(root, Path::new("usr/bin/nvidia-smi"))?,
        scoped(root, Path::new("sys/module/nvidia"))?,
    ];
    let libs = scoped(root, Path::new("usr/lib/x86_64-linux-gnu"))?;
    if libs.is_dir() {
        for entry in fs::read_dir(&libs).map_err(io_err("read", &libs))? {
            let entry = entry.map_err(io_err("read", &libs))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("libcuda.so") || name.starts_with("libnvidia-") {
                paths.push(libs.join(entry.file_name()));
            }
        }
    }
    let dev = scoped(root, Path::new("dev"))?;
    if dev.is_dir() {
        for entry in fs::read_dir(&dev).map_err(io_err("read", &dev))? {
            let entry = entry.map_err(io_err("read", &dev))?;
            if entry.file_name().to_string_lossy().starts_with("nvidia") {
                paths.push(scoped(root, &Path::new("dev").join(entry.file_name()))?);
            }
        }
    }
    Ok(paths)
}

fn remove(path: &Path) -> Result<(), FakeRootError> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        fs::remove_dir_all(path).map_err(io_err("remove", path))
    } else {
        fs::remove_file(path).map_err(io_err("remove", path))
    }
}

fn prepare_root(root: &Path, overwrite: bool) -> Result<(), FakeRootError> {
    match fs::symlink_metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir(root).map_err(io_err("create directory", root))?;
            set_mode(root, 0o755)
        }
        Err(e) => Err(io_err("inspect", root)(e)),
        Ok(meta) if meta.file_type().is_symlink() => {
            Err(FakeRootError::Symlink(root.to_path_buf()))
        }
        Ok(meta) if !meta.is_dir() => Err(FakeRootError::NotADirectory(root.to_path_buf())),
        Ok(_) => {
            let canonical = fs::canonicalize(root).map_err(io_err("resolve", root))?;
            if canonical == Path::new("/") {
                return Err(FakeRootError::RealRoot(root.to_path_buf()));
            }
            let mut entries = fs::read_dir(root).map_err(io_err("read", root))?;
            if entries.next().is_none() {
                return Ok(());
            }
            if !overwrite {
                return Err(FakeRootError::NotEmpty(root.to_path_buf()));
            }
            for path in generated_paths(root)? {
                remove(&path)?;
            }
            Ok(())
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), FakeRootError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err("chmod", path))
}

/// Writes the fake driver root for `machine` under `root` and returns the
/// entries created (device nodes left out when `opts.nodes` is false).
pub fn build(
    machine: &Machine,
    root: &Path,
    opts: &BuildOptions,
) -> Result<Vec<Entry>, FakeRootError> {
    if opts.nodes && !sys::is_root() {
        return Err(FakeRootError::NeedsRoot);
    }
    prepare_root(root, opts.overwrite)?;
    let mut done = Vec::new();
    for entry in plan(machine) {
        let path = scoped(root, entry.path())?;
        match &entry {
            Entry::Dir { .. } => match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(FakeRootError::NotADirectory(path)),
                Err(_) => {
                    fs::create_dir(&path).map_err(io_err("create directory", &path))?;
                    set_mode(&path, 0o755)?;
                }
            },
            Entry::File { contents, .. } => {
                remove(&path)?;
                fs::write(&path, contents).map_err(io_err("write", &path))?;
                set_mode(&path, 0o444)?;
            }
            Entry::Binary { contents, mode, .. } => {
                remove(&path)?;
                fs::write(&path, contents).map_err(io_err("write", &path))?;
                set_mode(&path, *mode)?;
            }
            Entry::CharDevice {
                major, minor, mode, ..
            } => {
                if !opts.nodes {
                    continue;
                }
                remove(&path)?;
                sys::mknod_char(&path, *major, *minor, *mode).map_err(io_err("mknod", &path))?;
                set_mode(&path, *mode)?;
            }
        }
        done.push(entry);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mig_minor_formula_matches_table_ends() {
        assert_eq!(gi_access_minor(0, 0), 3);
        assert_eq!(ci_access_minor(0, 0, 0), 4);
        assert_eq!(ci_access_minor(0, 0, 7), 11);
        assert_eq!(gi_access_minor(0, 1), 12);
        assert_eq!(ci_access_minor(31, 14, 7), 4322);
    }

    #[test]
    fn scoped_refuses_dotdot() {
        assert!(matches!(
            scoped(Path::new("/tmp/x"), Path::new("../etc")),
            Err(FakeRootError::BadPath(_))
        ));
        assert!(matches!(
            scoped(Path::new("/tmp/x"), Path::new("/etc")),
            Err(FakeRootError::BadPath(_))
        ));
    }
}
