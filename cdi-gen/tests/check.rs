//! `generate --check`: 0 when the file on disk is what the hardware gives
//! now, 1 with a per-device account when MIG was reconfigured (or the file
//! is missing or unreadable as a spec), 2 on error; the file is never
//! touched.

use std::path::Path;

use mig_cdi_testkit::e2e::FakeMachine;
use mig_cdi_testkit::paths::machine_file;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// h100x4 with GPU 3's 3g.40gb (GI 2) replaced by two 1g.10gb (GI 11, 12).
fn reconfigured_h100(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(machine_file("h100x4")).unwrap();
    let old = r#"{ "profile": "3g.40gb", "placement": 4 }"#;
    assert!(text.contains(old));
    let new =
        r#"{ "profile": "1g.10gb", "placement": 4 }, { "profile": "1g.10gb", "placement": 5 }"#;
    let path = dir.join("h100x4-reconfigured.json");
    std::fs::write(&path, text.replace(old, new)).unwrap();
    path
}

#[test]
fn no_drift_exits_0_and_leaves_the_file_alone() {
    let machine = FakeMachine::new("h100x4");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nvidia.com-gpu.json");
    let file_arg = file.to_str().unwrap();
    machine.gen_ok(&["generate", "--output", file_arg]);
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    let out = machine.gen(&["generate", "--check", "--output", file_arg]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout(&out),
        format!("{file_arg}: up to date (14 device names)\n")
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        before
    );
    // Same for YAML.
    let yaml = dir.path().join("nvidia.com-gpu.yaml");
    machine.gen_ok(&["generate", "--output", yaml.to_str().unwrap()]);
    let out = machine.gen(&["generate", "--check", "--output", yaml.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn mig_reconfiguration_is_drift_with_devices_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nvidia.com-gpu.json");
    let file_arg = file.to_str().unwrap();
    FakeMachine::new("h100x4").gen_ok(&["generate", "--output", file_arg]);
    let old = std::fs::read(&file).unwrap();

    let changed = FakeMachine::from_file(&reconfigured_h100(dir.path()));
    let out = changed.gen(&["generate", "--check", "--output", file_arg]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = stdout(&out);
    assert_eq!(std::fs::read(&file).unwrap(), old, "--check wrote the file");
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines[0], format!("{file_arg}: out of date"));
    // 3:0 is now GI 11 (caps 3 + 135 + 99 = 237, 238) instead of GI 2
    // (156, 157); 3:1 is new; the UUIDs follow the instances.
    assert!(lines[1].starts_with("  added:   MIG-"), "{report}");
    assert!(lines[1].contains(", 3:1, MIG-"), "{report}");
    assert_eq!(
        lines[2], "  removed: MIG-a9b1be09-4e98-544a-959c-4f87988562aa",
        "{report}"
    );
    assert_eq!(lines[3], "  changed: 3:0", "{report}");
    assert!(
        report.contains("    - /dev/nvidia-caps/nvidia-cap156 241:156 mode 444 r\n"),
        "{report}"
    );
    assert!(
        report.contains("    + /dev/nvidia-caps/nvidia-cap237 241:237 mode 444 r\n"),
        "{report}"
    );
    assert!(
        report.ends_with("  run generate without --check to rewrite it\n"),
        "{report}"
    );

    // After regenerating, no drift.
    changed.gen_ok(&["generate", "--output", file_arg]);
    let out = changed.gen(&["generate", "--check", "--output", file_arg]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn other_strategies_or_kinds_are_drift_too() {
    let machine = FakeMachine::new("h200-mig");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spec.json");
    let file_arg = file.to_str().unwrap();
    machine.gen_ok(&[
        "generate",
        "--device-name-strategy",
        "uuid",
        "--output",
        file_arg,
    ]);
    let out = machine.gen(&["generate", "--check", "--output", file_arg]);
    assert_eq!(out.status.code(), Some(1));
    let report = stdout(&out);
    assert!(
        report.contains("  added:   0:0, 0:1, 0:2, 0:3, 0:4\n"),
        "{report}"
    );
    assert!(
        report.contains("  spec:    cdiVersion 0.3.0 -> 0.5.0\n"),
        "{report}"
    );
}

#[test]
fn a_missing_or_foreign_file_is_drift_an_unreadable_one_an_error() {
    let machine = FakeMachine::new("h200");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.json");
    let out = machine.gen(&["generate", "--check", "--output", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("missing; generate would write 2 device names"));
    assert!(!missing.exists());

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"cdiVersion\": ").unwrap();
    let out = machine.gen(&["generate", "--check", "--output", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("the file is not a CDI spec"),
        "{}",
        stdout(&out)
    );

    let a_dir = dir.path().join("dir.json");
    std::fs::create_dir(&a_dir).unwrap();
    let out = machine.gen(&["generate", "--check", "--output", a_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));

    let out = machine.gen(&["generate", "--check"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_discovery_error_is_exit_2_and_leaves_the_file() {
    let machine = FakeMachine::new("h200-mig");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nvidia.com-gpu.json");
    let file_arg = file.to_str().unwrap();
    machine.gen_ok(&["generate", "--output", file_arg]);
    let old = std::fs::read(&file).unwrap();
    // A capability node vanished: discovery fails before anything else.
    std::fs::remove_file(machine.root.join("dev/nvidia-caps/nvidia-cap48")).unwrap();
    for args in [
        vec!["generate", "--check", "--output", file_arg],
        vec!["generate", "--output", file_arg],
    ] {
        let out = machine.gen(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("nvidia-cap48: missing"), "{err}");
        assert!(err.contains("--create-device-nodes"), "{err}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), old);
}
