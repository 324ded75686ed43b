//! End to end with a real runtime: Debian's Podman 4.3 reads the spec
//! `mig-cdi-gen generate` wrote for a simulated machine, and the container
//! gets exactly the device's nodes, with the right numbers, allowed by the
//! device cgroup (opening one gives ENXIO: allowed, no driver) and nothing
//! of the other MIG devices, and `MIG_CDI_PROFILE` set to a MIG device's
//! profile. A MIG device's verify and release hooks run at createRuntime
//! and poststop as the spec writes them. The same nodes through
//! `docker-args` flags.
//! And when podman can only say "unresolvable CDI devices", our `validate`
//! says why.
//!
//! Podman 4.3 has no private spec folder (no --cdi-spec-dir, no
//! cdi_spec_dirs): each test writes a uniquely named spec for a unique
//! vendor into /var/run/cdi and removes it when done. Needs root and
//! `tests/setup-runtimes.sh` (the README's test command runs it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use mig_cdi_testkit::e2e::{bin, is_root, text, FakeMachine, IMAGE};

const CDI_DIR: &str = "/var/run/cdi";

/// Podman is there and we may use it; otherwise say why and skip.
fn podman_ready() -> bool {
    if !is_root() {
        eprintln!("skipped: needs root");
        return false;
    }
    let ok = Command::new("podman")
        .args(["image", "exists", IMAGE])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "podman or the image {IMAGE} is missing: run tests/setup-runtimes.sh first"
    );
    true
}

/// A spec file in /var/run/cdi for a vendor no other test uses, removed on
/// drop.
struct InstalledSpec {
    path: PathBuf,
    vendor: String,
}

impl InstalledSpec {
    fn vendor(test: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        format!(
            "e2e-{test}-{}-{}.example.com",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// `mig-cdi-gen generate --vendor <unique> --output /var/run/cdi/...`.
    fn generate(machine: &FakeMachine, test: &str, extra: &[&str]) -> Self {
        let vendor = Self::vendor(test);
        let path = Path::new(CDI_DIR).join(format!("{vendor}-gpu.json"));
        let mut args = vec![
            "generate",
            "--no-driver-files",
            "--vendor",
            &vendor,
            "--output",
        ];
        let path_text = path.to_str().unwrap().to_string();
        args.push(&path_text);
        args.extend_from_slice(extra);
        machine.gen_ok(&args);
        Self { path, vendor }
    }

    /// A hand-written spec.
    fn write(test: &str, body: impl Fn(&str) -> String) -> Self {
        let vendor = Self::vendor(test);
        std::fs::create_dir_all(CDI_DIR).unwrap();
        let path = Path::new(CDI_DIR).join(format!("{vendor}-gpu.json"));
        std::fs::write(&path, body(&vendor)).unwrap();
        Self { path, vendor }
    }

    fn device(&self, name: &str) -> String {
        format!("{}/gpu={name}", self.vendor)
    }
}

impl Drop for InstalledSpec {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the container sees of each path, and what opening it gives.
const PROBE: &str = r#"
for f in "$@"; do
  if [ -e "$f" ]; then
    echo "$f $(stat -c '%t:%T %F %a' "$f")"
    cat "$f" >/dev/null 2>/tmp/err; echo "$f read: $(cat /tmp/err)"
  else
    echo "$f absent"
  fi
done
echo "profile: ${MIG_CDI_PROFILE-unset}"
echo "caps: $(ls /dev/nvidia-caps 2>/dev/null | tr '\n' ' ')"
echo "gpus: $(cd /dev && ls -d nvidia[0-9]* 2>/dev/null | tr '\n' ' ')"
for f in /dev/nvidia-caps/*; do
  [ -e "$f" ] && { echo x >"$f"; } 2>/tmp/err; echo "$f write: $(cat /tmp/err)"
done
"#;

fn podman_run(device_args: &[String], probe: &[&str]) -> Output {
    let mut cmd = Command::new("podman");
    cmd.args(["run", "--rm", "--network", "none"])
        .args(device_args)
        .args([IMAGE, "sh", "-c", PROBE, "probe"])
        .args(probe);
    cmd.output().expect("run podman")
}

/// The container's view of h100x4's MIG device 0:1 (GPU index 0 = minor
/// 2; GI 5, CI 0 = caps 318 and 319), whichever way it was given.
fn assert_mig_0_1_view(out: &Output) {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "podman failed: {}\n{stdout}",
        text(&out.stderr)
    );
    const ENXIO: &str = "No such device or address";
    for (path, numbers, mode) in [
        ("/dev/nvidiactl", "c3:ff", "666"),
        ("/dev/nvidia-uvm", "ee:0", "666"),
        ("/dev/nvidia-uvm-tools", "ee:1", "666"),
        ("/dev/nvidia2", "c3:2", "666"),
        ("/dev/nvidia-caps/nvidia-cap318", "f1:13e", "444"),
        ("/dev/nvidia-caps/nvidia-cap319", "f1:13f", "444"),
    ] {
        let line = format!("{path} {numbers} character special file {mode}\n");
        assert!(stdout.contains(&line), "missing {line:?} in\n{stdout}");
        let read = format!("{path} read: cat: can't open '{path}': {ENXIO}\n");
        assert!(stdout.contains(&read), "missing {read:?} in\n{stdout}");
    }
    assert!(
        stdout.contains("caps: nvidia-cap318 nvidia-cap319 \n"),
        "other MIG devices' caps visible:\n{stdout}"
    );
    assert!(stdout.contains("gpus: nvidia2 \n"), "{stdout}");
    // Read-only cgroup access to the capability nodes: writing is denied
    // by the cgroup (EPERM), not by the missing driver.
    for cap in ["nvidia-cap318", "nvidia-cap319"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("/dev/nvidia-caps/{cap} write: ")))
            .unwrap_or_default();
        let denied = format!("can't create /dev/nvidia-caps/{cap}: Operation not permitted");
        assert!(
            line.ends_with(&denied),
            "{cap}: write not denied:\n{stdout}"
        );
    }
}

const MIG_0_1_PATHS: [&str; 9] = [
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia2",
    "/dev/nvidia-caps/nvidia-cap318",
    "/dev/nvidia-caps/nvidia-cap319",
    // Other MIG devices of the same GPU and other GPUs: must be absent.
    "/dev/nvidia-caps/nvidia-cap309",
    "/dev/nvidia-caps/nvidia-cap156",
    "/dev/nvidia0",
];

#[test]
fn podman_gives_a_mig_device_exactly_its_nodes() {
    if !podman_ready() {
        return;
    }
    let machine = FakeMachine::new("h100x4");
    let spec = InstalledSpec::generate(&machine, "mig", &[]);
    for name in ["0:1", "MIG-17f1f658-3fd2-5f13-bf9a-62c866cd62eb"] {
        let out = podman_run(&["--device".into(), spec.device(name)], &MIG_0_1_PATHS);
        assert_mig_0_1_view(&out);
        let stdout = text(&out.stdout);
        // The spec's env names the device's profile (what `list` says).
        assert!(stdout.contains("profile: 2g.20gb\n"), "{stdout}");
        for absent in &MIG_0_1_PATHS[6..] {
            assert!(
                stdout.contains(&format!("{absent} absent\n")),
                "{absent}:\n{stdout}"
            );
        }
    }
}

#[test]
fn podman_reads_type_index_names_and_yaml() {
    if !podman_ready() {
        return;
    }
    let machine = FakeMachine::new("h100x4");
    let vendor = InstalledSpec::vendor("yaml");
    let path = Path::new(CDI_DIR).join(format!("{vendor}-gpu.yaml"));
    let spec = InstalledSpec { path, vendor };
    machine.gen_ok(&[
        "generate",
        "--no-driver-files",
        "--vendor",
        &spec.vendor,
        "--device-name-strategy",
        "type-index",
        "--output",
        spec.path.to_str().unwrap(),
    ]);
    let out = podman_run(&["--device".into(), spec.device("mig0:1")], &MIG_0_1_PATHS);
    assert_mig_0_1_view(&out);
}

#[test]
fn podman_gives_a_whole_gpu_its_node() {
    if !podman_ready() {
        return;
    }
    let machine = FakeMachine::new("h100x4");
    let spec = InstalledSpec::generate(&machine, "gpu", &[]);
    // NVML index 1 is minor 0.
    let out = podman_run(&["--device".into(), spec.device("1")], &["/dev/nvidia0"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("/dev/nvidia0 c3:0 character special file 666\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "/dev/nvidia0 read: cat: can't open '/dev/nvidia0': No such device or address"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("caps: \n") && stdout.contains("gpus: nvidia0 \n"),
        "{stdout}"
    );
    assert!(stdout.contains("profile: unset\n"), "{stdout}");
}

/// A stand-in for mig-cdi-hook at `--hook-path`: it appends its stage
/// word, `--state-dir DIR`, its PATH and the container's status from the
/// OCI state on stdin to `DIR/calls`. (The real hook's `verify` and
/// `poststop` are not written yet; podman is asked here only whether it
/// reads the spec's device hooks and runs them as written.)
const HOOK_STAND_IN: &str = r#"#!/bin/sh
state=$(cat)
status=$(echo "$state" | grep -o '"status": *"[a-z]*"' | grep -o '[a-z]*"$' | tr -d '"')
echo "$1 $2 $3 $PATH $status" >> "$3/calls"
"#;

#[test]
fn podman_runs_a_mig_devices_verify_and_release_hooks_as_the_spec_says() {
    if !podman_ready() {
        return;
    }
    let machine = FakeMachine::new("h100x4");
    let state = tempfile::tempdir().unwrap();
    let hook = state.path().join("mig-cdi-hook");
    std::fs::write(&hook, HOOK_STAND_IN).unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let dir = state.path().to_str().unwrap();
    let spec = InstalledSpec::generate(
        &machine,
        "hooks",
        &[
            "--hook-path",
            hook.to_str().unwrap(),
            "--hook-state-dir",
            dir,
        ],
    );
    let out = podman_run(&["--device".into(), spec.device("0:1")], &MIG_0_1_PATHS);
    assert_mig_0_1_view(&out);
    let calls = state.path().join("calls");
    let path = mig_cdi_core::cdi::render::HOOK_ENV
        .strip_prefix("PATH=")
        .unwrap();
    let want = format!(
        "verify --state-dir {dir} {path} created\npoststop --state-dir {dir} {path} stopped\n"
    );
    // poststop may come just after `podman run --rm` returns.
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&calls).unwrap_or_default() != want
        && start.elapsed() < std::time::Duration::from_secs(5)
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_to_string(&calls).unwrap_or_default(), want);
    // A whole GPU runs no hook.
    let out = podman_run(&["--device".into(), spec.device("1")], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(std::fs::read_to_string(&calls).unwrap(), want);
}

#[test]
fn docker_args_flags_give_plain_podman_the_same_nodes() {
    if !podman_ready() {
        return;
    }
    let machine = FakeMachine::new("h100x4");
    let flags = machine.gen_ok(&["docker-args", "--no-driver-files", "0:1"]);
    // The flags name host paths; the simulated machine's /dev lives under
    // its fake root, which stands in for / here.
    let root = machine.root.to_str().unwrap();
    let args: Vec<String> = flags
        .lines()
        .map(|flag| {
            let spec = flag.strip_prefix("--device=").expect("--device=...");
            format!("--device={root}{spec}")
        })
        .collect();
    assert_eq!(args.len(), 6, "{flags}");
    let out = podman_run(&args, &MIG_0_1_PATHS);
    assert_mig_0_1_view(&out);
}

#[test]
fn what_podman_cannot_resolve_validate_explains() {
    if !podman_ready() {
        return;
    }
    let machine = FakeMachine::new("h200-mig");
    let spec = InstalledSpec::generate(&machine, "unknown", &[]);
    // A name the spec does not have (index names shift after MIG changes).
    let out = podman_run(&["--device".into(), spec.device("0:7")], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("unresolvable CDI devices"),
        "{}",
        text(&out.stderr)
    );
    let out = Command::new(bin("mig-cdi-gen"))
        .args([
            "validate",
            spec.path.to_str().unwrap(),
            "--device",
            &spec.device("0:7"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let report = text(&out.stdout);
    assert!(
        report.contains("UNRESOLVABLE: no device \"0:7\"") && report.contains("it has: 0:0, MIG-"),
        "{report}"
    );

    // A version too new for Podman 4.3 (it says only "unresolvable"), and
    // one too low for the index names (Podman 4.3's CDI library does not
    // check that; newer runtimes refuse the file).
    for (version, podman_accepts, expected) in [
        ("0.6.0", false, "Podman 4.3"),
        (
            "0.3.0",
            true,
            "needs cdiVersion 0.5.0 or later, but the spec declares 0.3.0",
        ),
    ] {
        let bad = InstalledSpec::write("version", |_| {
            std::fs::read_to_string(&spec.path).unwrap().replace(
                "\"cdiVersion\": \"0.5.0\"",
                &format!("\"cdiVersion\": \"{version}\""),
            )
        });
        // Same devices, our vendor replaced.
        let body = std::fs::read_to_string(&bad.path)
            .unwrap()
            .replace(&spec.vendor, &bad.vendor);
        std::fs::write(&bad.path, body).unwrap();
        let out = podman_run(&["--device".into(), bad.device("0:0")], &[]);
        assert_eq!(out.status.success(), podman_accepts, "cdiVersion {version}");
        if !podman_accepts {
            assert!(
                text(&out.stderr).contains("unresolvable CDI devices"),
                "{}",
                text(&out.stderr)
            );
        }
        let out = Command::new(bin("mig-cdi-gen"))
            .args(["validate", bad.path.to_str().unwrap()])
            .output()
            .unwrap();
        let report = text(&out.stdout);
        assert!(report.contains(expected), "{version}: {report}");
    }
}

/// A spec written with `--hook-path` (the real mig-cdi-hook) and
/// `--hook-state-dir`; its hooks then also get `--root` of the simulated
/// machine, the only edit: on a real node the hook reads the host's /proc.
fn verified_spec(machine: &FakeMachine, state: &Path) -> InstalledSpec {
    let hook = bin("mig-cdi-hook");
    let spec = InstalledSpec::generate(
        machine,
        "verify",
        &[
            "--hook-path",
            hook.to_str().unwrap(),
            "--hook-state-dir",
            state.to_str().unwrap(),
        ],
    );
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&spec.path).unwrap()).unwrap();
    for device in value["devices"].as_array_mut().unwrap() {
        if let Some(hooks) = device["containerEdits"]["hooks"].as_array_mut() {
            for hook in hooks {
                let args = hook["args"].as_array_mut().unwrap();
                args.push("--root".into());
                args.push(machine.root.display().to_string().into());
            }
        }
    }
    std::fs::write(&spec.path, value.to_string()).unwrap();
    spec
}

/// The leases in `state`, as `mig-cdi-hook leases --json` lists them.
fn leases(state: &Path) -> Vec<serde_json::Value> {
    mig_cdi_testkit::hook::leases_json(state)["leases"]
        .as_array()
        .unwrap()
        .clone()
}

/// podman (crun) with a spec whose MIG devices carry the verify hook: one
/// device runs and is leased to the container until it is removed; a
/// second container asking for it, two devices at once, and the MIG
/// monitor node without CAP_SYS_ADMIN are refused with our message.
#[test]
fn podman_holds_cdi_containers_to_the_same_rules() {
    if !podman_ready() {
        return;
    }
    let machine = FakeMachine::new("h100x4");
    let state = tempfile::tempdir().unwrap();
    let spec = verified_spec(&machine, state.path());
    let hook_err = state.path().join("hook-stderr");
    let annotation = format!("run.oci.hooks.stderr={}", hook_err.display());
    let refused = |args: &[String], needle: &str| {
        let _ = std::fs::remove_file(&hook_err);
        let mut all = vec!["--annotation".to_string(), annotation.clone()];
        all.extend_from_slice(args);
        let out = podman_run(&all, &[]);
        let err = text(&out.stderr) + &std::fs::read_to_string(&hook_err).unwrap_or_default();
        assert!(
            !out.status.success(),
            "must be refused: {}",
            text(&out.stdout)
        );
        assert!(
            err.contains("mig-cdi-hook: ") && err.contains(needle),
            "expected our message with {needle:?}:\n{err}"
        );
    };

    // One device: runs, sees its nodes.
    let out = podman_run(&["--device".into(), spec.device("0:1")], &MIG_0_1_PATHS);
    assert_mig_0_1_view(&out);

    // A running container holds it.
    let name = format!("mig-cdi-verify-{}", std::process::id());
    let out = Command::new("podman")
        .args(["run", "-d", "--rm", "--network", "none", "--name", &name])
        .args(["--device", &spec.device("0:1"), IMAGE, "sleep", "60"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    let held = leases(state.path());
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["container"], id.as_str());
    assert_eq!(held[0]["by"], "verify");
    assert_eq!(held[0]["profile"], "2g.20gb");
    assert_eq!(held[0]["state"], "live");
    // By its UUID name too: the same device, refused naming the holder.
    refused(
        &[
            "--device".into(),
            spec.device("MIG-17f1f658-3fd2-5f13-bf9a-62c866cd62eb"),
        ],
        &format!("is held by container {id}"),
    );
    let rm = Command::new("podman")
        .args(["rm", "-f", "-t", "0", &name])
        .output()
        .unwrap();
    assert!(rm.status.success(), "{}", text(&rm.stderr));
    let start = std::time::Instant::now();
    while !leases(state.path()).is_empty() && start.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(leases(state.path()), Vec::<serde_json::Value>::new());

    // Two MIG devices in one container.
    refused(
        &[
            "--device".into(),
            spec.device("0:0"),
            "--device".into(),
            spec.device("0:1"),
        ],
        "was given 2 MIG devices",
    );
    // The MIG monitor capability (minor 2 here) without CAP_SYS_ADMIN;
    // with it, the container runs.
    let monitor = format!(
        "{}:/dev/nvidia-caps/nvidia-cap2",
        machine.root.join("dev/nvidia-caps/nvidia-cap2").display()
    );
    let with_monitor = [
        "--device".to_string(),
        spec.device("0:1"),
        "--device".into(),
        monitor,
    ];
    refused(&with_monitor, "CAP_SYS_ADMIN is not in its bounding set");
    let mut privileged = with_monitor.to_vec();
    privileged.extend(["--cap-add".into(), "SYS_ADMIN".into()]);
    let out = podman_run(&privileged, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(leases(state.path()).is_empty());
}
