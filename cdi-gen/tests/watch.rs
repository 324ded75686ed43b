//! `mig-cdi-gen watch`: the spec on disk follows the machine — GI created,
//! CI destroyed, MIG mode off — within 2 s of each change, byte for byte
//! what a fresh `generate` prints, and a reader never sees a partial file;
//! SIGHUP regenerates, SIGTERM exits 0 with the file whole, SIGKILL during
//! a regeneration leaves the old spec or the new one.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mig_cdi_testkit::e2e::{bin, is_root, FakeMachine};
use mig_cdi_testkit::paths::machine_file;
use serde_json::Value;

/// A copy of h200-mig's description in a temp folder, its fake root, and
/// the spec file watch writes there.
struct Setup {
    _dir: tempfile::TempDir,
    machine: FakeMachine,
    spec: PathBuf,
    log: PathBuf,
}

fn setup() -> Option<Setup> {
    if !is_root() {
        eprintln!("skipped: the fake root's device nodes need root");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let description = dir.path().join("machine.json");
    std::fs::copy(machine_file("h200-mig"), &description).unwrap();
    let machine = FakeMachine::from_file(&description);
    Some(Setup {
        spec: dir.path().join("cdi/nvidia.com-gpu.json"),
        log: dir.path().join("watch.log"),
        _dir: dir,
        machine,
    })
}

impl Setup {
    fn description(&self) -> Value {
        serde_json::from_slice(&std::fs::read(&self.machine.machine).unwrap()).unwrap()
    }

    /// Replace the description (atomically: the simulator may read it at
    /// any moment) and, when `root`, rebuild the fake root to match.
    fn change(&self, machine: &Value, root: bool) {
        let temp = self.machine.machine.with_extension("json.new");
        std::fs::write(&temp, serde_json::to_vec_pretty(machine).unwrap()).unwrap();
        std::fs::rename(&temp, &self.machine.machine).unwrap();
        if root {
            let out = Command::new(bin("mig-cdi-sim"))
                .args(["make-root", "--overwrite"])
                .arg(&self.machine.machine)
                .arg(&self.machine.root)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "make-root: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// What a fresh `generate` prints for the machine now.
    fn expected(&self) -> Vec<u8> {
        self.expected_with(&[])
    }

    /// The same, with more of generate's flags.
    fn expected_with(&self, flags: &[&str]) -> Vec<u8> {
        let mut args = vec!["generate"];
        args.extend_from_slice(flags);
        self.machine.gen_ok(&args).into_bytes()
    }

    fn start(&self) -> Watch {
        self.start_with(&[])
    }

    /// `watch` with more of generate's flags.
    fn start_with(&self, flags: &[&str]) -> Watch {
        let log = std::fs::File::create(&self.log).unwrap();
        let mut args = vec![
            "watch",
            "--interval",
            "0.1",
            "--output",
            self.spec.to_str().unwrap(),
        ];
        args.extend_from_slice(flags);
        self.machine
            .gen_command(&args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map(Watch)
            .expect("start mig-cdi-gen watch")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait up to `limit` for the file to hold exactly `want`.
    fn wait_for(&self, want: &[u8], limit: Duration, what: &str) {
        let start = Instant::now();
        while start.elapsed() < limit {
            // Written by this watch (not left by an earlier run).
            if self.log().contains("mig-cdi-gen: wrote ")
                && std::fs::read(&self.spec).is_ok_and(|b| b == want)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{what}: the spec is not what generate prints after {limit:?}; watch said:\n{}",
            self.log()
        );
    }

    fn assert_valid(&self) {
        let out = Command::new(bin("mig-cdi-gen"))
            .arg("validate")
            .arg(&self.spec)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "validate: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A running watch, killed when dropped: a failed test leaves none behind.
struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Watch {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Watch {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            child.kill().ok();
            panic!("watch did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Open and parse the file in a tight loop until told to stop; every read
/// must be a whole JSON spec. Returns how many reads were made.
fn reader(path: PathBuf, stop: Arc<AtomicBool>, reads: Arc<AtomicUsize>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(bytes) = std::fs::read(&path) else {
            continue; // not written yet
        };
        let doc: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "a reader saw a partial or invalid file ({e}): {} bytes",
                bytes.len()
            )
        });
        assert!(doc["cdiVersion"].is_string() && doc["devices"].is_array());
        reads.fetch_add(1, Ordering::Relaxed);
    }
}

/// A change of the machine, and what it is called in a failure.
type Step = (&'static str, fn(&mut Value));

fn gpu(machine: &mut Value) -> &mut Value {
    &mut machine["gpus"][0]
}

#[test]
fn the_spec_follows_gi_ci_and_mig_mode_changes() {
    let Some(s) = setup() else { return };
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reading = {
        let (path, stop, reads) = (s.spec.clone(), stop.clone(), reads.clone());
        std::thread::spawn(move || reader(path, stop, reads))
    };
    let mut child = s.start();
    s.wait_for(&s.expected(), Duration::from_secs(10), "first write");
    s.assert_valid();

    let mut machine = s.description();
    let steps: [Step; 3] = [
        ("a GI created", |m| {
            gpu(m)["gpuInstances"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({ "profile": "1g.18gb", "placement": 6 }));
        }),
        ("a CI destroyed", |m| {
            gpu(m)["gpuInstances"][4]["computeInstances"] = serde_json::json!([]);
        }),
        ("MIG mode off", |m| {
            let g = gpu(m).as_object_mut().unwrap();
            g.remove("gpuInstances");
            g.insert("migMode".into(), "disabled".into());
        }),
    ];
    let mut previous = std::fs::read(&s.spec).unwrap();
    for (what, step) in steps {
        step(&mut machine);
        s.change(&machine, true);
        let want = s.expected();
        assert_ne!(want, previous, "{what}: the machine change changes nothing");
        s.wait_for(&want, Duration::from_secs(2), what);
        s.assert_valid();
        previous = want;
    }
    signal(&child, "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{}", s.log());
    // Complete now that watch has exited: one line per change.
    let log = s.log();
    assert!(
        log.lines().filter(|l| l.contains("rewrote")).count() >= 3,
        "{log}"
    );
    stop.store(true, Ordering::Relaxed);
    reading
        .join()
        .expect("the reader saw a whole spec every time");
    assert!(reads.load(Ordering::Relaxed) > 10);
    assert_eq!(std::fs::read(&s.spec).unwrap(), previous);
    s.assert_valid();
}

#[test]
fn sighup_regenerates_and_sigterm_exits_0() {
    let Some(s) = setup() else { return };
    let mut child = s.start();
    let first = s.expected();
    s.wait_for(&first, Duration::from_secs(10), "first write");
    // A MIG device's UUID changes in NVML only: no file of the fake root
    // changes, so polling sees nothing (the full check is 60 s away).
    let mut machine = s.description();
    gpu(&mut machine)["gpuInstances"][0]["computeInstances"] =
        serde_json::json!([{ "uuid": "MIG-0123abcd-4567-89ab-cdef-0123456789ab" }]);
    s.change(&machine, false);
    let want = s.expected();
    assert_ne!(want, first);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(std::fs::read(&s.spec).unwrap(), first, "{}", s.log());
    signal(&child, "HUP");
    s.wait_for(&want, Duration::from_secs(2), "SIGHUP");
    // The line comes just after the rename.
    let start = Instant::now();
    while !s
        .log()
        .contains("added MIG-0123abcd-4567-89ab-cdef-0123456789ab")
    {
        assert!(start.elapsed() < Duration::from_secs(1), "{}", s.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&child, "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{}", s.log());
    assert_eq!(std::fs::read(&s.spec).unwrap(), want);
    s.assert_valid();
}

#[test]
fn sigkill_during_a_regeneration_leaves_the_old_spec_or_the_new() {
    let Some(s) = setup() else { return };
    let a_machine = s.description();
    let a = s.expected();
    let mut b_machine = a_machine.clone();
    gpu(&mut b_machine)["gpuInstances"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({ "profile": "1g.18gb", "placement": 6 }));
    s.change(&b_machine, true);
    let b = s.expected();
    assert_ne!(a, b);
    std::fs::create_dir_all(s.spec.parent().unwrap()).unwrap();
    std::fs::write(&s.spec, &a).unwrap();
    // A seeded spread of delays over watch's start and first write: the
    // whole regeneration (NVML, tables, render, check, write) takes 10-20
    // ms in a debug build, so the kills land over 0-25 ms, before, during
    // and after the write.
    let mut seed = 0x9e37_79b9_u32;
    for round in 0..16 {
        // The machine is the other one than the file's: watch rewrites.
        let on_disk = std::fs::read(&s.spec).unwrap();
        let machine = if on_disk == a { &b_machine } else { &a_machine };
        s.change(machine, true);
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let delay = Duration::from_micros(u64::from(seed >> 8) % 25_000);
        let mut child = s.start();
        std::thread::sleep(delay);
        child.kill().unwrap();
        child.wait().unwrap();
        let now = std::fs::read(&s.spec).unwrap();
        assert!(
            now == a || now == b,
            "round {round}, killed after {delay:?}: the file is neither spec ({} bytes)",
            now.len()
        );
    }
    // A run after the kills ends with the current spec and no temporary
    // file of an interrupted write left in the folder.
    let want = s.expected();
    let mut child = s.start();
    s.wait_for(&want, Duration::from_secs(10), "after the kills");
    signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(5)).code(),
        Some(0)
    );
    let leftovers: Vec<String> = std::fs::read_dir(s.spec.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn watch_writes_the_verify_hooks_generate_writes() {
    let Some(s) = setup() else { return };
    let flags = [
        "--no-driver-files",
        "--hook-path",
        "/opt/x/mig-cdi-hook",
        "--hook-state-dir",
        "/run/mig-cdi",
    ];
    let want = s.expected_with(&flags);
    assert!(String::from_utf8_lossy(&want).contains("\"createRuntime\""));
    let mut child = s.start_with(&flags);
    s.wait_for(&want, Duration::from_secs(10), "first write");
    signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(5)).code(),
        Some(0)
    );
    s.assert_valid();
}

#[test]
fn watch_refuses_what_it_cannot_keep() {
    let machine = FakeMachine::new("h200");
    for (args, says) in [
        (vec!["watch"], "--output FILE"),
        (
            vec!["watch", "--check", "-o", "/tmp/x.json"],
            "generate --check",
        ),
        (
            vec!["watch", "--create-device-nodes", "-o", "/tmp/x.json"],
            "never changes the host",
        ),
        (
            vec!["watch", "--interval", "0", "-o", "/tmp/x.json"],
            "seconds",
        ),
    ] {
        let out = machine.gen(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn a_failed_regeneration_keeps_the_last_good_spec_and_is_retried() {
    let Some(s) = setup() else { return };
    let mut child = s.start();
    let good = s.expected();
    s.wait_for(&good, Duration::from_secs(10), "first write");
    // A capability node vanishes: discovery refuses, the file stays.
    std::fs::remove_file(s.machine.root.join("dev/nvidia-caps/nvidia-cap48")).unwrap();
    signal(&child, "HUP");
    let start = Instant::now();
    while !s.log().contains("cannot regenerate") {
        assert!(start.elapsed() < Duration::from_secs(2), "{}", s.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let failure: Vec<String> = s
        .log()
        .lines()
        .filter(|l| l.contains("cannot regenerate"))
        .map(String::from)
        .collect();
    assert_eq!(failure.len(), 1, "{}", s.log());
    assert!(
        failure[0].contains("nvidia-cap48: missing"),
        "{}",
        failure[0]
    );
    assert_eq!(std::fs::read(&s.spec).unwrap(), good);
    // Retried at every poll, said once: a few polls later, still one line.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        s.log().matches("cannot regenerate").count(),
        1,
        "{}",
        s.log()
    );
    assert_eq!(std::fs::read(&s.spec).unwrap(), good);
    // Retried at every poll (no signal): once the node is back, it works.
    let mut machine = s.description();
    gpu(&mut machine)["gpuInstances"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({ "profile": "1g.18gb", "placement": 6 }));
    s.change(&machine, true);
    let want = s.expected();
    s.wait_for(&want, Duration::from_secs(2), "after the node came back");
    signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(5)).code(),
        Some(0)
    );
    // Complete now that watch has exited.
    let log = s.log();
    assert!(log.contains("regeneration works again"), "{log}");
}
