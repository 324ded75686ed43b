//! `generate --hook-path PATH [--hook-state-dir DIR]`: every MIG device of
//! the spec gets mig-cdi-hook's `createRuntime` verify hook and `poststop`
//! release hook, with the absolute path and an explicit environment, and
//! the spec still declares the lowest version and passes `validate`. Bad
//! flags are refused before anything is written; `docker-args`, which
//! shares `--hook-path`, is not changed by it. Through the real binary on
//! the simulated machines.

use std::path::Path;

use mig_cdi_core::cdi::render::HOOK_ENV;
use mig_cdi_testkit::e2e::{bin, text, FakeMachine};
use serde_json::{json, Value};

const HOOK: &str = "/opt/x/mig-cdi-hook";
const STATE_DIR: &str = "/run/mig-cdi";

/// The two hooks a MIG device must have, `extra` after the stage word.
fn verify_hooks(extra: &[&str]) -> Value {
    let hook = |stage: &str, word: &str| {
        let mut args = vec!["mig-cdi-hook", word];
        args.extend_from_slice(extra);
        json!({"hookName": stage, "path": HOOK, "args": args, "env": [HOOK_ENV]})
    };
    json!([
        hook("createRuntime", "verify"),
        hook("poststop", "poststop")
    ])
}

/// Every name `list --json` gives a MIG device (index and UUID), and the
/// names of whole GPUs.
fn names_by_kind(machine: &FakeMachine) -> (Vec<String>, Vec<String>) {
    let list: Value = serde_json::from_str(&machine.gen_ok(&["list", "--json"])).unwrap();
    let (mut mig, mut gpu) = (Vec::new(), Vec::new());
    for device in list["devices"].as_array().unwrap() {
        let names = [&device["name"], &device["uuid"]].map(|n| n.as_str().unwrap().to_string());
        match device["kind"].as_str().unwrap() {
            "mig" => mig.extend(names),
            _ => gpu.extend(names),
        }
    }
    (mig, gpu)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn validate(path: &Path) -> String {
    let out = std::process::Command::new(bin("mig-cdi-gen"))
        .arg("validate")
        .arg(path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn each_mig_device_gets_a_verify_and_a_release_hook_and_nothing_else_does() {
    for name in ["a100x8", "h100x4", "h200-mig", "h200"] {
        let machine = FakeMachine::new(name);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nvidia.com-gpu.json");
        machine.gen_ok(&[
            "generate",
            "--no-driver-files",
            "--hook-path",
            HOOK,
            "--output",
            file.to_str().unwrap(),
        ]);
        let spec = read_json(&file);
        let (mig, gpu) = names_by_kind(&machine);
        let devices = spec["devices"].as_array().unwrap();
        assert_eq!(devices.len(), mig.len() + gpu.len(), "{name}");
        for device in devices {
            let device_name = device["name"].as_str().unwrap();
            let hooks = &device["containerEdits"]["hooks"];
            if mig.iter().any(|n| n == device_name) {
                assert_eq!(hooks, &verify_hooks(&[]), "{name} {device_name}");
            } else {
                assert!(gpu.iter().any(|n| n == device_name), "{device_name}");
                assert!(hooks.is_null(), "{name} {device_name}: {hooks}");
            }
        }
        // --no-driver-files: the verify hooks are the only hooks.
        assert!(spec["containerEdits"]["hooks"].is_null(), "{name}");
        // Hooks are a 0.3.0 feature: the index names still decide.
        assert_eq!(spec["cdiVersion"], "0.5.0", "{name}");
        let report = validate(&file);
        assert!(report.contains(": ok (cdiVersion 0.5.0"), "{report}");
    }
}

#[test]
fn the_state_dir_follows_the_stage_word_beside_the_driver_files_hooks() {
    let machine = FakeMachine::new("h100x4");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nvidia.com-gpu.json");
    machine.gen_ok(&[
        "generate",
        "--hook-path",
        HOOK,
        "--hook-state-dir",
        STATE_DIR,
        "--device-name-strategy",
        "uuid",
        "--output",
        file.to_str().unwrap(),
    ]);
    let spec = read_json(&file);
    let (mig, _) = names_by_kind(&machine);
    let want = verify_hooks(&["--state-dir", STATE_DIR]);
    let mut with_hooks = 0;
    for device in spec["devices"].as_array().unwrap() {
        if mig.iter().any(|n| device["name"] == n.as_str()) {
            assert_eq!(
                device["containerEdits"]["hooks"], want,
                "{}",
                device["name"]
            );
            with_hooks += 1;
        }
    }
    assert_eq!(with_hooks, 6, "h100x4 has six MIG devices");
    // The driver's createContainer hooks stay at spec level, same path.
    let spec_hooks = spec["containerEdits"]["hooks"].as_array().unwrap();
    assert!(!spec_hooks.is_empty());
    for hook in spec_hooks {
        assert_eq!(hook["hookName"], "createContainer");
        assert_eq!(hook["path"], HOOK);
    }
    // UUID names alone: 0.3.0, hooks and env included.
    assert_eq!(spec["cdiVersion"], "0.3.0");
    let report = validate(&file);
    assert!(report.contains(": ok (cdiVersion 0.3.0"), "{report}");
}

#[test]
fn bad_hook_flags_are_refused_and_nothing_is_written() {
    let machine = FakeMachine::new("h200-mig");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nvidia.com-gpu.json");
    let output = file.to_str().unwrap();
    for (flags, says) in [
        (
            vec!["--hook-path", "bin/mig-cdi-hook"],
            "--hook-path bin/mig-cdi-hook must be an absolute path",
        ),
        (
            vec!["--no-driver-files", "--hook-path", "mig-cdi-hook"],
            "--hook-path mig-cdi-hook must be an absolute path",
        ),
        (
            vec!["--hook-path", HOOK, "--hook-state-dir", "run/mig-cdi"],
            "--hook-state-dir run/mig-cdi must be an absolute path",
        ),
        (
            vec!["--no-driver-files", "--hook-state-dir", STATE_DIR],
            "only --hook-path adds: give --hook-path PATH too",
        ),
    ] {
        for command in ["generate", "watch"] {
            let mut args = vec![command, "--output", output];
            args.extend_from_slice(&flags);
            let out = machine.gen(&args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(says), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(!file.exists(), "{args:?} wrote {output}");
        }
    }
    // docker-args has no --hook-state-dir.
    let out = machine.gen(&["docker-args", "0:0", "--hook-state-dir", STATE_DIR]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn without_hook_path_no_device_has_hooks() {
    let machine = FakeMachine::new("h200-mig");
    for flags in [&["--no-driver-files"][..], &[]] {
        let mut args = vec!["generate"];
        args.extend_from_slice(flags);
        let spec: Value = serde_json::from_str(&machine.gen_ok(&args)).unwrap();
        for device in spec["devices"].as_array().unwrap() {
            assert!(
                device["containerEdits"]["hooks"].is_null(),
                "{flags:?}: {device}"
            );
        }
    }
}

#[test]
fn docker_args_flags_are_the_same_with_hook_path() {
    let machine = FakeMachine::new("h200-mig");
    for flags in [&["--no-driver-files"][..], &[]] {
        let args = |extra: &[&'static str]| {
            let mut args = vec!["docker-args", "0:0", "--json"];
            args.extend_from_slice(flags);
            args.extend_from_slice(extra);
            args
        };
        let plain = machine.gen_ok(&args(&[]));
        let hooked = machine.gen_ok(&args(&["--hook-path", HOOK]));
        let (plain, hooked): (Value, Value) = (
            serde_json::from_str(&plain).unwrap(),
            serde_json::from_str(&hooked).unwrap(),
        );
        assert_eq!(plain["devices"], hooked["devices"], "{flags:?}");
        assert_eq!(plain["volumes"], hooked["volumes"], "{flags:?}");
    }
}
