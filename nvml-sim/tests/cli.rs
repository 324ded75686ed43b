//! `mig-cdi-sim`, run as a program on temporary trees.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use mig_cdi_testkit::e2e::text;
use mig_cdi_testkit::paths::machines_dir;

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mig-cdi-sim"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run mig-cdi-sim")
}

#[test]
fn help_exits_zero_and_names_the_commands() {
    let out = run(sim().arg("--help"));
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("make-root"), "{stdout}");
    assert!(stdout.contains("NVML_SIM_MACHINE"), "{stdout}");
}

#[test]
fn bad_usage_exits_two() {
    for args in [
        &[][..],
        &["frobnicate"][..],
        &["make-root", "only-one"][..],
        &["make-root", "--bogus", "a", "b"][..],
    ] {
        let out = run(sim().args(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).starts_with("mig-cdi-sim: "), "{args:?}");
    }
}

#[test]
fn check_lists_every_example_machine() {
    let out = run(sim().arg("check").arg(machines_dir().join("a100x8.json")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("MIG 2c.3g.40gb   Device 0"), "{stdout}");
    assert!(stdout.contains("(slot 1 empty)"), "{stdout}");
    for name in ["h100x4.json", "h200.json", "h200-mig.json"] {
        let out = run(sim().arg("check").arg(machines_dir().join(name)));
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
    }
}

#[test]
fn check_reports_an_invalid_machine_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(
        &path,
        r#"{"driverVersion":"580.159.04","cudaVersion":"13.0","gpus":[{"model":"H200","minor":0,
            "pciBusId":"0000:00:06.0","uuid":"GPU-866b5d23-5f64-aec2-09af-f17711608a22",
            "migMode":"enabled","gpuInstances":[{"profile":"4g.71gb","placement":4}]}]}"#,
    )
    .unwrap();
    let out = run(sim().arg("check").arg(&path));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("4g.71gb cannot be placed at 4"), "{stderr}");
}

#[test]
fn make_root_writes_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let out = run(sim()
        .args(["make-root", "--no-nodes"])
        .arg(machines_dir().join("h200-mig.json"))
        .arg(&root));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(root
        .join("proc/driver/nvidia/capabilities/gpu0/mig/gi5/ci0/access")
        .is_file());
    assert!(!root.join("dev/nvidia0").exists());

    // A second run needs --overwrite.
    let again = run(sim()
        .args(["make-root", "--no-nodes"])
        .arg(machines_dir().join("h200.json"))
        .arg(&root));
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("not empty"),
        "{}",
        text(&again.stderr)
    );
    let over = run(sim()
        .args(["make-root", "--no-nodes", "--overwrite"])
        .arg(machines_dir().join("h200.json"))
        .arg(&root));
    assert_eq!(over.status.code(), Some(0), "{}", text(&over.stderr));
    assert!(!root
        .join("proc/driver/nvidia/capabilities/gpu0/mig/gi5")
        .exists());
}

#[test]
fn make_root_with_nodes_needs_root() {
    if std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        != 0
    {
        // Not root: the plain run is the test.
        let dir = tempfile::tempdir().unwrap();
        let out = run(sim()
            .arg("make-root")
            .arg(machines_dir().join("h200.json"))
            .arg(dir.path().join("root")));
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("needs root"),
            "{}",
            text(&out.stderr)
        );
        return;
    }
    // Root: run the tool as nobody in a folder nobody may write.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let machine = dir.path().join("h200.json");
    std::fs::copy(machines_dir().join("h200.json"), &machine).unwrap();
    std::fs::set_permissions(&machine, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(sim()
        .arg("make-root")
        .arg(&machine)
        .arg(dir.path().join("root"))
        .uid(65534)
        .gid(65534));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("needs root") && stderr.contains("mknod"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("root").exists(),
        "refused before writing anything"
    );
}
