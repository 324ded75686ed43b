//! Paths someone else controls, where a spec file should be: a FIFO (a
//! plain open blocks until a writer comes), a link to /dev/zero (a read
//! never ends, and reading it whole allocates until the process dies), a
//! file larger than any spec. Each is one clear error, at once.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mig_cdi_testkit::e2e::{bin, sim_lib, FakeMachine};
use mig_cdi_testkit::paths::machine_file;

/// Run `cmd`, failing the test (and killing the child) if it takes more
/// than a few seconds: the bugs pinned here were hangs.
fn bounded(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{cmd:?} hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

fn validate(file: &Path) -> Output {
    let mut cmd = Command::new(bin("mig-cdi-gen"));
    cmd.arg("validate").arg(file);
    bounded(cmd)
}

#[test]
fn validate_of_a_fifo_is_one_problem_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("nvidia.com-gpu.json");
    mkfifo(&fifo);
    let out = validate(&fifo);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "{}: INVALID, 1 problem\n  [syntax] cannot read the file: it is a FIFO, not a regular \
             file\n",
            fifo.display()
        )
    );
}

#[test]
fn a_fifo_in_a_spec_folder_is_reported_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.json"),
        r#"{"cdiVersion": "0.5.0", "kind": "nvidia.com/gpu", "devices": [
            {"name": "0", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia0"}]}}]}"#,
    )
    .unwrap();
    mkfifo(&dir.path().join("b.yaml"));
    let mut cmd = Command::new(bin("mig-cdi-gen"));
    cmd.args(["validate", "--spec-dir"]).arg(dir.path());
    cmd.args(["--device", "nvidia.com/gpu=0"]);
    let out = bounded(cmd);
    assert_eq!(out.status.code(), Some(2));
    let report = text(&out.stdout);
    assert!(report.contains("a.json: ok (cdiVersion 0.5.0"), "{report}");
    assert!(
        report
            .contains("b.yaml: INVALID, 1 problem\n  [syntax] cannot read the file: it is a FIFO"),
        "{report}"
    );
    assert!(
        report.contains("nvidia.com/gpu=0: ok: resolves to "),
        "{report}"
    );
}

#[test]
fn validate_of_a_link_to_dev_zero_is_one_problem_not_an_endless_read() {
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero.yaml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let out = validate(&zero);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stdout).contains(
            "zero.yaml: INVALID, 1 problem\n  [syntax] cannot read the file: it is a character \
             device, not a regular file\n"
        ),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn validate_of_a_file_larger_than_any_spec_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    // Sparse: 17 MiB of holes, over the 16 MiB cap.
    std::fs::File::create(&big)
        .unwrap()
        .set_len(17 << 20)
        .unwrap();
    let out = validate(&big);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stdout).contains("cannot read the file: it holds more than 16777216 bytes"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn generate_check_against_a_fifo_or_dev_zero_is_an_error_not_a_hang() {
    let machine = FakeMachine::new("h200");
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.json");
    mkfifo(&fifo);
    let zero = dir.path().join("zero.json");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for (path, what) in [(&fifo, "a FIFO"), (&zero, "a character device")] {
        let out = bounded(machine.gen_command(&[
            "generate",
            "--check",
            "--output",
            path.to_str().unwrap(),
        ]));
        assert_eq!(out.status.code(), Some(2), "{what}");
        assert_eq!(
            text(&out.stderr),
            format!(
                "mig-cdi-gen: cannot read {}: it is {what}, not a regular file\n",
                path.display()
            )
        );
    }
    assert!(std::fs::symlink_metadata(&zero).unwrap().is_symlink());
}

/// The OS error of a failure is printed once, however many layers wrap it.
#[test]
fn an_os_error_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();

    // A spec below a regular file: the folder cannot be created.
    let machine = FakeMachine::new("h200");
    let target = file.join("nvidia.com-gpu.json");
    let out = bounded(machine.gen_command(&["generate", "--output", target.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("mig-cdi-gen: cannot create folder "),
        "{err}"
    );
    assert_eq!(err.matches("(os error ").count(), 1, "{err}");

    // Driver tables under a root that is a regular file.
    let mut cmd = Command::new(bin("mig-cdi-gen"));
    cmd.arg("--root")
        .arg(&file)
        .arg("--nvml-lib")
        .arg(sim_lib())
        .arg("list")
        .env("NVML_SIM_MACHINE", machine_file("h200"));
    let out = bounded(cmd);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(
        err.matches("Not a directory (os error 20)").count(),
        1,
        "{err}"
    );
}
