//! The `hook_*` end-to-end tests run the hook under real runtimes on a
//! host with no GPU, and must see from inside the container what it did;
//! this is what they share for that: a simulated MIG machine (fake driver
//! /proc tables and real character nodes in a temp dir, plus the CDI spec
//! the generator would write for it), OCI bundles run by real runc and
//! crun, podman runs, and a probe that lists, inside the container, every
//! NVIDIA node with its number, mode and what opening it does.
//!
//! The machine: one H200 (the real driver snapshot's /proc/devices and
//! mig-minors: nvidia 195, nvidia-uvm 238, nvidia-caps 241), MIG on, two
//! MIG devices: `0:0` = GI 1 / CI 0 (caps 12, 13), `0:1` = GI 2 / CI 0
//! (caps 21, 22). No driver is loaded here, so opening a node the device
//! cgroup allows fails with ENXIO, and one it denies with EPERM.

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::e2e::{self as support, mknod, run_ok};
use crate::paths;
use serde_json::{json, Value};

pub const UUID_0_0: &str = "MIG-11111111-2222-3333-4444-555555555500";
pub const UUID_0_1: &str = "MIG-11111111-2222-3333-4444-555555555501";
pub const ENXIO: &str = "No such device or address";

/// A node as the container should see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub path: &'static str,
    pub major: u32,
    pub minor: u32,
    pub mode: u32,
}

const fn want(path: &'static str, major: u32, minor: u32, mode: u32) -> Want {
    Want {
        path,
        major,
        minor,
        mode,
    }
}

pub const CONTROL: [Want; 3] = [
    want("/dev/nvidiactl", 195, 255, 0o666),
    want("/dev/nvidia-uvm", 238, 0, 0o666),
    want("/dev/nvidia-uvm-tools", 238, 1, 0o666),
];

/// Every node device `0:0` needs.
pub fn nodes_0_0() -> Vec<Want> {
    let mut v = vec![
        want("/dev/nvidia0", 195, 0, 0o666),
        want("/dev/nvidia-caps/nvidia-cap12", 241, 12, 0o444),
        want("/dev/nvidia-caps/nvidia-cap13", 241, 13, 0o444),
    ];
    v.extend(CONTROL);
    v
}

/// Every node device `0:1` needs.
pub fn nodes_0_1() -> Vec<Want> {
    let mut v = vec![
        want("/dev/nvidia0", 195, 0, 0o666),
        want("/dev/nvidia-caps/nvidia-cap21", 241, 21, 0o444),
        want("/dev/nvidia-caps/nvidia-cap22", 241, 22, 0o444),
    ];
    v.extend(CONTROL);
    v
}

/// The MIG `config` capability node (mode 0400 from the driver snapshot).
pub const CONFIG_NODE: Want = want("/dev/nvidia-caps/nvidia-cap1", 241, 1, 0o400);
pub const MONITOR_NODE: Want = want("/dev/nvidia-caps/nvidia-cap2", 241, 2, 0o444);

/// The simulated machine and its CDI spec directory.
pub struct Machine {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub cdi: PathBuf,
    /// The hook's and the runtime's lease state (a folder per machine:
    /// tests running at once never share leases).
    pub state: PathBuf,
}

impl Machine {
    #[allow(
        clippy::new_without_default,
        reason = "it makes device nodes and temp folders: not a default value"
    )]
    pub fn new() -> Self {
        assert!(
            support::is_root(),
            "the hook e2e tests run as root (mknod, runtimes)"
        );
        let dir = tempfile::Builder::new()
            .prefix("mig-hook-machine-")
            .tempdir()
            .unwrap();
        let root = dir.path().join("root");
        let cdi = dir.path().join("cdi");
        let snap = paths::h200_snapshot().join("proc");
        let proc = root.join("proc");
        let nv = proc.join("driver/nvidia");
        for d in [
            nv.join("capabilities/mig"),
            nv.join("capabilities/gpu0/mig/gi1/ci0"),
            nv.join("capabilities/gpu0/mig/gi2/ci0"),
            proc.join("driver/nvidia-caps"),
            root.join("dev/nvidia-caps"),
            cdi.clone(),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        let copy = |rel: &str| {
            std::fs::copy(snap.join(rel), proc.join(rel))
                .unwrap_or_else(|e| panic!("copy {rel} from the H200 snapshot: {e}"));
        };
        for rel in [
            "devices",
            "driver/nvidia/version",
            "driver/nvidia/params",
            "driver/nvidia-caps/mig-minors",
            "driver/nvidia/capabilities/mig/config",
            "driver/nvidia/capabilities/mig/monitor",
        ] {
            copy(rel);
        }
        let machine = Self {
            state: dir.path().join("state"),
            _dir: dir,
            root,
            cdi,
        };
        for (rel, minor) in [
            ("gpu0/mig/gi1/access", 12),
            ("gpu0/mig/gi1/ci0/access", 13),
            ("gpu0/mig/gi2/access", 21),
            ("gpu0/mig/gi2/ci0/access", 22),
        ] {
            machine.set_capability_minor(rel, minor);
        }
        let dev = machine.root.join("dev");
        mknod(&dev.join("nvidia0"), 195, 0);
        mknod(&dev.join("nvidiactl"), 195, 255);
        mknod(&dev.join("nvidia-uvm"), 238, 0);
        mknod(&dev.join("nvidia-uvm-tools"), 238, 1);
        for m in [1, 2, 12, 13, 21, 22] {
            mknod(&dev.join(format!("nvidia-caps/nvidia-cap{m}")), 241, m);
        }
        std::fs::write(
            machine.cdi.join("nvidia.com-gpu.json"),
            serde_json::to_string_pretty(&spec()).unwrap(),
        )
        .unwrap();
        machine
    }

    /// Rewrite a capability access file (mode 0444, as the driver does).
    pub fn set_capability_minor(&self, rel: &str, minor: u32) {
        let path = self.root.join("proc/driver/nvidia/capabilities").join(rel);
        std::fs::write(
            path,
            format!("DeviceFileMinor: {minor}\nDeviceFileMode: 292\nDeviceFileModify: 1\n"),
        )
        .unwrap();
    }

    /// The hook's arguments that point it at this machine.
    pub fn hook_args(&self) -> Vec<String> {
        vec![
            "--root".into(),
            self.root.display().to_string(),
            "--spec-dir".into(),
            self.cdi.display().to_string(),
            "--state-dir".into(),
            self.state.display().to_string(),
        ]
    }
}

fn spec_node(w: &Want) -> Value {
    json!({"path": w.path, "type": "c", "major": w.major, "minor": w.minor})
}

/// The spec mig-cdi-gen writes for this machine: index, UUID and
/// type-index names for each MIG device, control nodes at spec level.
pub fn spec() -> Value {
    let device = |name: &str, nodes: &[Want]| {
        json!({"name": name, "containerEdits": {"deviceNodes":
            nodes[..3].iter().map(spec_node).collect::<Vec<_>>()}})
    };
    let (a, b) = (nodes_0_0(), nodes_0_1());
    json!({
        "cdiVersion": "0.5.0",
        "kind": "nvidia.com/gpu",
        "devices": [
            device("0:0", &a), device(UUID_0_0, &a), device("mig0:0", &a),
            device("0:1", &b), device(UUID_0_1, &b), device("mig0:1", &b),
        ],
        "containerEdits": {"deviceNodes": CONTROL.iter().map(spec_node).collect::<Vec<_>>()}
    })
}

/// Shell run inside the container: one `NODE path major minor mode error`
/// line per NVIDIA node (hex numbers as busybox stat prints them), then
/// `PROBE-DONE`.
pub const PROBE: &str = r#"for f in /dev/nvidia* /dev/nvidia-caps/*; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  [ -d "$f" ] && continue
  s=$(stat -c '%t %T %a' "$f")
  e=$(cat "$f" 2>&1 >/dev/null)
  echo "NODE $f $s $e"
done
echo PROBE-DONE"#;

/// A node the probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub major: u32,
    pub minor: u32,
    pub mode: u32,
    pub open: String,
}

pub fn parse_probe(stdout: &str) -> BTreeMap<String, Seen> {
    assert!(
        stdout.contains("PROBE-DONE"),
        "the probe did not run: {stdout}"
    );
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("NODE "))
        .map(|l| {
            let mut parts = l.splitn(5, ' ');
            let path = parts.next().unwrap().to_string();
            let major = u32::from_str_radix(parts.next().unwrap(), 16).unwrap();
            let minor = u32::from_str_radix(parts.next().unwrap(), 16).unwrap();
            let mode = u32::from_str_radix(parts.next().unwrap(), 8).unwrap();
            let open = parts.next().unwrap_or("").to_string();
            (
                path,
                Seen {
                    major,
                    minor,
                    mode,
                    open,
                },
            )
        })
        .collect()
}

/// Exactly `want`'s nodes, right numbers and modes, each allowed by the
/// device cgroup (ENXIO), and nothing else NVIDIA.
pub fn assert_exactly(stdout: &str, want: &[Want]) {
    let seen = parse_probe(stdout);
    let want_paths: Vec<&str> = want.iter().map(|w| w.path).collect();
    let seen_paths: Vec<&str> = seen.keys().map(String::as_str).collect();
    let mut sorted = want_paths.clone();
    sorted.sort();
    assert_eq!(
        seen_paths, sorted,
        "NVIDIA nodes in the container:\n{stdout}"
    );
    for w in want {
        let s = &seen[w.path];
        assert_eq!(
            (s.major, s.minor),
            (w.major, w.minor),
            "{}: {stdout}",
            w.path
        );
        assert_eq!(s.mode, w.mode, "{} mode: {stdout}", w.path);
        assert!(
            s.open.contains(ENXIO),
            "{} must open to ENXIO (allowed, no driver): {s:?}",
            w.path
        );
    }
}

pub fn assert_no_nvidia_nodes(stdout: &str) {
    let seen = parse_probe(stdout);
    assert!(seen.is_empty(), "no NVIDIA node expected: {seen:?}");
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A container id unique to this test process.
pub fn container_id(tag: &str) -> String {
    format!(
        "mig-hook-{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Runc,
    Crun,
}

impl Runtime {
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Crun => "crun",
        }
    }

    /// Debian's path of the runtime.
    pub fn path(self) -> &'static str {
        match self {
            Runtime::Runc => "/usr/sbin/runc",
            Runtime::Crun => "/usr/bin/crun",
        }
    }
}

/// `mig-cdi-runtime` as an operator installs it: in `dir`, a link of that
/// name to the built hook binary and `mig-cdi-runtime.conf` beside it,
/// handing over to `real` and reading `machine`'s driver and specs.
pub fn install_runtime(dir: &Path, real: Runtime, machine: &Machine) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("mig-cdi-runtime");
    let _ = std::fs::remove_file(&path);
    std::os::unix::fs::symlink(support::bin("mig-cdi-hook"), &path).unwrap();
    std::fs::write(
        dir.join("mig-cdi-runtime.conf"),
        format!(
            "runtime = {}\nroot = {}\nspec-dir = {}\nstate-dir = {}\n",
            real.path(),
            machine.root.display(),
            machine.cdi.display(),
            machine.state.display()
        ),
    )
    .unwrap();
    path
}

/// `WRAPPER [GLOBAL...] run --bundle BUNDLE ID`, as a shim calls a runtime;
/// the container is deleted afterwards (by runc and crun, whichever ran it).
pub fn run_through(wrapper: &Path, global: &[&std::ffi::OsStr], bundle: &Path) -> Ran {
    let id = container_id("rt");
    let out = Command::new("timeout")
        .arg("120")
        .arg(wrapper)
        .args(global)
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    for runtime in ["runc", "crun"] {
        let _ = Command::new(runtime)
            .args(["delete", "--force", &id])
            .stderr(Stdio::null())
            .status();
    }
    Ran::from(out, None)
}

/// The three outcomes every engine must show through `mig-cdi-runtime`:
/// `good` gives exactly `nodes`, `bad` is refused with `needle`, and no
/// request leaves no NVIDIA node. `run` runs the probe with extra env.
pub fn assert_engine(
    what: &str,
    run: impl Fn(&[&str]) -> Ran,
    good: &str,
    nodes: &[Want],
    bad: &str,
    needle: &str,
) {
    let r = run(&[good]);
    r.assert_ok();
    assert_exactly(&r.stdout, nodes);
    let r = run(&[bad]);
    assert!(!r.ok && r.stderr.contains(needle), "{what}: {}", r.stderr);
    let r = run(&[]);
    r.assert_ok();
    assert_no_nvidia_nodes(&r.stdout);
}

/// Result of a runtime run.
#[derive(Debug)]
pub struct Ran {
    pub ok: bool,
    pub stdout: String,
    /// The runtime's stderr; for crun also the hooks' stderr, which crun
    /// writes to the file named by the run.oci.hooks.stderr annotation.
    pub stderr: String,
}

impl Ran {
    /// A finished process's status and output.
    pub fn of(out: Output) -> Self {
        Self::from(out, None)
    }

    fn from(out: Output, hook_stderr: Option<&Path>) -> Self {
        let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if let Some(path) = hook_stderr {
            stderr.push_str(&std::fs::read_to_string(path).unwrap_or_default());
        }
        Self {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        }
    }

    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.ok,
            "container failed:\n{}\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Refused by the hook: not created, our one line in the output.
    pub fn assert_refused(&self, needle: &str) -> &Self {
        assert!(!self.ok, "container must not run:\n{}", self.stdout);
        assert!(
            !self.stdout.contains("PROBE-DONE"),
            "the container ran: {}",
            self.stdout
        );
        assert!(
            self.stderr.contains("mig-cdi-hook: ") && self.stderr.contains(needle),
            "expected the hook's message with {needle:?}, got:\n{}",
            self.stderr
        );
        self
    }
}

/// An OCI bundle for runc or crun.
pub struct Bundle {
    dir: tempfile::TempDir,
    pub path: PathBuf,
    pub config: Value,
}

/// The hook entry from `examples/hooks/oci/config-hooks.json`, pointed at
/// the built binary, with extra arguments.
pub fn example_hook_entry(extra: &[String]) -> Value {
    example_entry("createRuntime", extra)
}

/// The example's entry for `stage` (`createRuntime`, `poststop`).
pub fn example_entry(stage: &str, extra: &[String]) -> Value {
    let file = paths::repo_root().join("examples/hooks/oci/config-hooks.json");
    let hooks: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let mut entry = hooks[stage][0].clone();
    entry["path"] = json!(support::bin("mig-cdi-hook"));
    let args = entry["args"].as_array_mut().unwrap();
    args.extend(extra.iter().map(|a| json!(a)));
    entry
}

impl Bundle {
    /// A bundle running `script` in `rootfs` (absolute).
    pub fn new(rootfs: &Path, script: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mig-hook-bundle-")
            .tempdir()
            .unwrap();
        let path = dir.path().to_path_buf();
        run_ok(Command::new("runc").arg("spec").arg("--bundle").arg(&path));
        let text = std::fs::read_to_string(path.join("config.json")).unwrap();
        let mut config: Value = serde_json::from_str(&text).unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["sh", "-c", script]);
        config["root"] = json!({"path": rootfs, "readonly": false});
        config["hooks"] = json!({});
        Self { dir, path, config }
    }

    pub fn env(&mut self, entry: &str) -> &mut Self {
        self.config["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!(entry));
        self
    }

    /// Install the example hook entry at `stage` with `extra` arguments.
    pub fn hook(&mut self, stage: &str, extra: &[String]) -> &mut Self {
        self.config["hooks"][stage] = json!([example_hook_entry(extra)]);
        self
    }

    /// Install both example entries: createRuntime (inject) and poststop
    /// (release the lease), with `extra` arguments.
    pub fn hooks_with_release(&mut self, extra: &[String]) -> &mut Self {
        self.config["hooks"]["createRuntime"] = json!([example_entry("createRuntime", extra)]);
        self.config["hooks"]["poststop"] = json!([example_entry("poststop", extra)]);
        self
    }

    pub fn add_bounding_cap(&mut self, cap: &str) -> &mut Self {
        self.config["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap()
            .push(json!(cap));
        self
    }

    /// Drop the `/dev` tmpfs mount: the image's own dev/ is used.
    pub fn without_dev_tmpfs(&mut self) -> &mut Self {
        let mounts = self.config["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| m["destination"] != "/dev");
        // Its submounts would be created inside the image's dev/.
        mounts.retain(|m| !m["destination"].as_str().unwrap_or("").starts_with("/dev/"));
        self
    }

    pub fn run(&self, runtime: Runtime) -> Ran {
        let mut config = self.config.clone();
        if runtime == Runtime::Crun {
            // crun reports only a hook's exit code; this annotation makes
            // it write the hook's stderr to a file.
            config["annotations"]["run.oci.hooks.stderr"] = json!(self.hook_stderr());
        }
        self.run_bytes(
            runtime,
            serde_json::to_string_pretty(&config).unwrap().as_bytes(),
        )
    }

    /// Run the bundle with `config.json` holding exactly `bytes` (for
    /// configs serde_json would not write, such as bytes that are not
    /// UTF-8).
    pub fn run_bytes(&self, runtime: Runtime, bytes: &[u8]) -> Ran {
        std::fs::write(self.path.join("config.json"), bytes).unwrap();
        let id = container_id(runtime.name());
        let out = Command::new("timeout")
            .arg("120")
            .arg(runtime.name())
            .arg("run")
            .arg("--bundle")
            .arg(&self.path)
            .arg(&id)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let _ = Command::new(runtime.name())
            .args(["delete", "--force", &id])
            .stderr(Stdio::null())
            .status();
        let hook_stderr = self.hook_stderr();
        Ran::from(
            out,
            (runtime == Runtime::Crun).then_some(hook_stderr.as_path()),
        )
    }

    fn hook_stderr(&self) -> PathBuf {
        self.path.join("hook-stderr")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A podman hooks.d folder holding `examples/hooks/podman/<file>`, pointed
/// at the built binary with extra arguments.
pub fn podman_hooks_dir(example: &str, extra: &[String]) -> tempfile::TempDir {
    let file = paths::repo_root()
        .join("examples/hooks/podman")
        .join(example);
    let mut hook: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    hook["hook"]["path"] = json!(support::bin("mig-cdi-hook"));
    let args = hook["hook"]["args"].as_array_mut().unwrap();
    args.extend(extra.iter().map(|a| json!(a)));
    let dir = tempfile::Builder::new()
        .prefix("mig-hook-hooksd-")
        .tempdir()
        .unwrap();
    std::fs::write(
        dir.path().join(example),
        serde_json::to_string_pretty(&hook).unwrap(),
    )
    .unwrap();
    dir
}

/// `podman run --rm --network none --hooks-dir DIR ARGS IMAGE sh -c PROBE`.
pub fn podman_run(hooks_dir: &Path, runtime: Option<&str>, args: &[&str]) -> Ran {
    let stderr_file = hooks_dir.join("hook-stderr");
    let mut cmd = Command::new("timeout");
    cmd.arg("180").arg("podman");
    if let Some(rt) = runtime {
        cmd.args(["--runtime", rt]);
    }
    cmd.args(["run", "--rm", "--network", "none", "--hooks-dir"])
        .arg(hooks_dir)
        .arg("--annotation")
        .arg(format!("run.oci.hooks.stderr={}", stderr_file.display()))
        .args(args)
        .args([support::IMAGE, "sh", "-c", PROBE])
        .stdin(Stdio::null());
    let out = cmd.output().unwrap();
    Ran::from(out, Some(&stderr_file))
}

/// `mig-cdi-hook --state-dir STATE leases --json`, asserted to succeed.
pub fn leases_json(state: &Path) -> Value {
    let out = Command::new(support::bin("mig-cdi-hook"))
        .arg("--state-dir")
        .arg(state)
        .args(["leases", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// When process `pid` started (`/proc/<pid>/stat` field 22, counted after
/// the command name); `None` when there is no such process.
pub fn start_time(pid: i64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// A writable copy of the busybox root filesystem.
pub fn rootfs_copy(parent: &Path) -> PathBuf {
    let dest = parent.join("rootfs");
    run_ok(Command::new("cp").arg("-a").arg(support::ROOTFS).arg(&dest));
    dest
}

/// Every entry under `dir` as `path type` (path relative to `base`):
/// what is there, independent of timestamps.
pub fn fingerprint_entries(dir: &Path, base: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let meta = std::fs::symlink_metadata(&d).unwrap();
        let t = meta.file_type();
        let kind = if t.is_dir() {
            "dir"
        } else if t.is_symlink() {
            "symlink"
        } else if t.is_char_device() {
            "char"
        } else if t.is_file() {
            "file"
        } else {
            "other"
        };
        out.push(format!(
            "{} {kind}",
            d.strip_prefix(base).unwrap().display()
        ));
        if t.is_dir() {
            for e in std::fs::read_dir(&d).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

/// Every entry under `dir` with its mode and mtime: a fingerprint to prove
/// a host folder was not touched at all.
pub fn fingerprint(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let meta = std::fs::symlink_metadata(&d).unwrap();
        out.push(format!(
            "{} {:o} {} {}.{}",
            d.display(),
            meta.mode(),
            meta.file_type().is_char_device(),
            meta.mtime(),
            meta.mtime_nsec()
        ));
        if meta.is_dir() {
            for e in std::fs::read_dir(&d).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    out.sort();
    out
}
