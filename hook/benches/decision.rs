//! The hook's whole decision path on the 8-GPU x 7-MIG spec: parse the
//! state, read config.json, look the request up in the spec folder, check
//! the one-device rule, capabilities and cgroup rules, re-check every node
//! against the driver tables and host /dev, plan, and apply — which, after
//! the first run, finds every node already in place and keeps it.
//!
//! Needs root (the fake driver root has real char nodes) and the release
//! binaries `mig-cdi-sim`, `mig-cdi-gen` and `libnvml_sim.so`
//! (`cargo build --release --workspace`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use mig_cdi_hook::cli::Settings;
use mig_cdi_hook::host::RealHost;
use mig_cdi_hook::kernel::RealKernel;
use mig_cdi_hook::lease::FileLedger;
use mig_cdi_hook::log::Log;
use mig_cdi_hook::run::run;

fn main() {
    divan::main();
}

fn release_file(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("bench executable");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/release")
        .join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --release --workspace` first",
        path.display()
    );
    path
}

struct Setup {
    _dir: tempfile::TempDir,
    settings: Settings,
    state: Vec<u8>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let machine = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/machines/bench-8x7.json");
    let ok = |cmd: &mut Command| {
        let out = cmd.output().expect("run");
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    ok(Command::new(release_file("mig-cdi-sim"))
        .arg("make-root")
        .arg(&machine)
        .arg(d.join("host")));
    let spec = ok(Command::new(release_file("mig-cdi-gen"))
        .arg("--root")
        .arg(d.join("host"))
        .arg("--nvml-lib")
        .arg(release_file("libnvml_sim.so"))
        .arg("generate")
        // The hook makes nodes only: the device-only spec.
        .arg("--no-driver-files")
        .env("NVML_SIM_MACHINE", &machine));
    std::fs::create_dir_all(d.join("cdi")).unwrap();
    std::fs::write(d.join("cdi/nvidia.com-gpu.json"), &spec).unwrap();

    // Device rules that allow exactly MIG device 3:1 and the control nodes.
    let spec: serde_json::Value = serde_json::from_slice(&spec).unwrap();
    let device = spec["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "3:1")
        .expect("device 3:1");
    let mut rules = vec![serde_json::json!({"allow": false, "access": "rwm"})];
    for node in device["containerEdits"]["deviceNodes"]
        .as_array()
        .unwrap()
        .iter()
        .chain(spec["containerEdits"]["deviceNodes"].as_array().unwrap())
    {
        rules.push(serde_json::json!({
            "allow": true, "type": "c", "major": node["major"], "minor": node["minor"],
            "access": node["permissions"],
        }));
    }
    std::fs::create_dir_all(d.join("rootfs/dev")).unwrap();
    std::fs::create_dir_all(d.join("bundle")).unwrap();
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": d.join("rootfs")},
        "process": {"args": ["/bin/true"], "env": ["PATH=/bin", "NVIDIA_VISIBLE_DEVICES=3:1"]},
        "linux": {"resources": {"devices": rules}},
    });
    std::fs::write(d.join("bundle/config.json"), config.to_string()).unwrap();
    let state = serde_json::json!({
        "ociVersion": "1.0.2", "id": "bench", "status": "creating",
        "pid": std::process::id(), "bundle": d.join("bundle"),
    });
    let args: Vec<OsString> = vec![
        "--root".into(),
        d.join("host").into(),
        "--spec-dir".into(),
        d.join("cdi").into(),
        "--state-dir".into(),
        d.join("state").into(),
        "createRuntime".into(),
    ];
    let settings = Settings::from_args(args).expect("settings");
    let state = state.to_string().into_bytes();
    // First run injects the nodes; the measured runs find and keep them.
    let host = RealHost::new(&settings.root);
    run(
        &settings,
        &state,
        &host,
        &mut RealKernel::new(),
        &mut FileLedger::new(&settings.state_dir),
        &mut Log::none(),
    )
    .expect("first run");
    Setup {
        _dir: dir,
        settings,
        state,
    }
}

#[divan::bench]
fn whole_decision_path_8x7_spec(bencher: divan::Bencher) {
    let s = setup();
    bencher.bench_local(|| {
        // A fresh host each run: the live tables are read every time, as
        // in the process.
        run(
            &s.settings,
            &s.state,
            &RealHost::new(&s.settings.root),
            &mut RealKernel::new(),
            &mut FileLedger::new(&s.settings.state_dir),
            &mut Log::none(),
        )
        .expect("hook run")
    });
}
