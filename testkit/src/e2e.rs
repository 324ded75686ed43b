//! The end-to-end tests drive the workspace's real binaries, so they need
//! what cargo built and a machine to point them at: this module finds the
//! built binaries and the NVML simulator, makes a simulated machine's fake
//! driver root, and runs `mig-cdi-gen` against it through the real NVML
//! code path. It also holds the host checks those tests share (root,
//! device nodes) and the runtimes' fixed names.
//!
//! The binaries must be built first (`cargo build --workspace`, which the
//! README's test command does); a missing one fails the test with that advice.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::paths::{machine_file, target_dir};

/// busybox root filesystem made by `tests/setup-runtimes.sh`.
pub const ROOTFS: &str = "/var/lib/mig-cdi-tests/rootfs";
/// The same root filesystem as a podman image.
pub const IMAGE: &str = "localhost/mig-cdi-busybox:latest";

fn built(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --workspace` first (the README's test command does)",
        path.display()
    );
    path
}

/// A workspace binary: `mig-cdi-gen`, `mig-cdi-hook`, `mig-cdi-sim`.
pub fn bin(name: &str) -> PathBuf {
    built(name)
}

/// The simulated `libnvidia-ml.so`.
pub fn sim_lib() -> PathBuf {
    built(nvml_sim::LIBRARY_FILE_NAME)
}

/// A simulated machine: its description and its fake driver root (proc/
/// and dev/ with real char nodes), removed when dropped.
pub struct FakeMachine {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub machine: PathBuf,
}

impl FakeMachine {
    /// Build the fake root of `examples/machines/<name>.json`.
    pub fn new(name: &str) -> Self {
        Self::from_file(&machine_file(name))
    }

    /// Build the fake root of any machine description.
    pub fn from_file(machine: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mig-cdi-machine-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().join("root");
        let out = Command::new(bin("mig-cdi-sim"))
            .arg("make-root")
            .arg(machine)
            .arg(&root)
            .output()
            .expect("run mig-cdi-sim");
        assert!(
            out.status.success(),
            "mig-cdi-sim make-root {} failed: {}",
            machine.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            _dir: dir,
            root,
            machine: machine.to_path_buf(),
        }
    }

    /// `mig-cdi-gen --root <root> --nvml-lib <sim> ARGS...`, with the
    /// simulator pointed at this machine.
    pub fn gen_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("mig-cdi-gen"));
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--nvml-lib")
            .arg(sim_lib())
            .args(args)
            .env("NVML_SIM_MACHINE", &self.machine);
        cmd
    }

    /// Run `mig-cdi-gen` (see [`Self::gen_command`]).
    pub fn gen(&self, args: &[&str]) -> Output {
        self.gen_command(args).output().expect("run mig-cdi-gen")
    }

    /// Run `mig-cdi-gen`, assert success, return stdout.
    pub fn gen_ok(&self, args: &[&str]) -> String {
        let out = self.gen(args);
        assert!(
            out.status.success(),
            "mig-cdi-gen {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }
}

/// Run `cmd` and assert that it succeeded (its stderr in the message).
pub(crate) fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `mknod PATH c MAJOR MINOR`, making PATH's parent folders first; needs
/// root.
pub fn mknod(path: &Path, major: u32, minor: u32) {
    std::fs::create_dir_all(path.parent().expect("a node path has a parent folder"))
        .unwrap_or_else(|e| panic!("create the folder of {}: {e}", path.display()));
    run_ok(
        Command::new("mknod")
            .arg(path)
            .arg("c")
            .arg(major.to_string())
            .arg(minor.to_string()),
    );
}

/// A program's output as text (lossy UTF-8).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// True when running as root (mknod, runtimes).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}
