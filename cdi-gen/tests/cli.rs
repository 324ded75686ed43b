//! `validate`, `docker-args` and the errors of `generate`, through the
//! real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mig_cdi_testkit::e2e::{bin, text, FakeMachine};
use mig_cdi_testkit::paths::shared_dir;

fn gen(args: &[&str]) -> Output {
    Command::new(bin("mig-cdi-gen"))
        .args(args)
        .output()
        .unwrap()
}

fn testdata(rel: &str) -> Option<PathBuf> {
    let path = shared_dir().join("cdi-schema/testdata").join(rel);
    path.exists().then_some(path)
}

#[test]
fn validate_official_test_data() {
    let (Some(good), Some(bad)) = (
        testdata("good/minimal.json"),
        testdata("bad/explicit-empty.json"),
    ) else {
        eprintln!("skipped: shared/cdi-schema is absent");
        return;
    };
    let out = gen(&["validate", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!(
            "{}: ok (cdiVersion 0.3.0, kind vendor.com/device, 1 device)\n",
            good.display()
        )
    );
    let out = gen(&["validate", good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stdout).contains(&format!(
        "{}: INVALID, 1 problem\n  [schema] missing properties 'cdiVersion', 'kind', 'devices'",
        bad.display()
    )));
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn validate_explains_version_name_and_yaml_failures() {
    let dir = tempfile::tempdir().unwrap();
    let low = write(
        dir.path(),
        "low.json",
        r#"{"cdiVersion": "0.3.0", "kind": "nvidia.com/gpu", "devices": [
            {"name": "0:1", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia0"}]}}]}"#,
    );
    let out = gen(&["validate", low.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stdout).contains(
        "[version] devices[0].name: device name \"0:1\" starts with a digit: needs cdiVersion 0.5.0"
    ));
    let yaml = write(
        dir.path(),
        "v.yaml",
        "cdiVersion: 0.5\nkind: nvidia.com/gpu\ndevices:\n- name: 0:1\n  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n      permissions: rwx\n",
    );
    let out = gen(&["validate", "--json", yaml.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], false);
    let problems = report["files"][0]["problems"].as_array().unwrap();
    let messages: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    // 0.5 is a YAML number: the schema says so.
    assert!(
        messages.iter().any(|m| m.contains("cdiVersion")),
        "{messages:#?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("permissions")),
        "{messages:#?}"
    );
}

#[test]
fn validate_resolves_devices_like_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let (etc, run) = (dir.path().join("etc"), dir.path().join("run"));
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&run).unwrap();
    let spec = r#"{"cdiVersion": "0.5.0", "kind": "nvidia.com/gpu", "devices": [
        {"name": "0:1", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia0"}]}}]}"#;
    write(&etc, "a.json", spec);
    write(&run, "b.json", spec);
    write(&run, "ignored.yml", "not: read");
    let dirs = [
        "--spec-dir",
        etc.to_str().unwrap(),
        "--spec-dir",
        run.to_str().unwrap(),
    ];
    let mut args = vec!["validate"];
    args.extend(dirs);
    args.extend(["--device", "nvidia.com/gpu=0:1"]);
    let out = gen(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("nvidia.com/gpu=0:1: ok: resolves to"));
    assert!(text(&out.stdout).contains("run/b.json (1 lower-priority definition(s) ignored)"));

    let mut args = vec!["validate"];
    args.extend(dirs);
    args.extend(["--device", "nvidia.com/gpu=0:2"]);
    let out = gen(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stdout).contains(
        "nvidia.com/gpu=0:2: UNRESOLVABLE: no device \"0:2\" in nvidia.com/gpu; it has: 0:1 ("
    ));

    write(&run, "c.json", spec);
    let mut args = vec!["validate"];
    args.extend(dirs);
    args.extend(["--device", "nvidia.com/gpu=0:1"]);
    let out = gen(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stdout).contains("defined by 2 files of equal priority"));

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = gen(&["validate", "--spec-dir", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nothing to validate"));
}

#[test]
fn docker_args_give_the_cdi_nodes_as_flags() {
    let machine = FakeMachine::new("h100x4");
    let expected = "\
--device=/dev/nvidia-uvm:/dev/nvidia-uvm:rw
--device=/dev/nvidia-uvm-tools:/dev/nvidia-uvm-tools:rw
--device=/dev/nvidiactl:/dev/nvidiactl:rw
--device=/dev/nvidia2:/dev/nvidia2:rw
--device=/dev/nvidia-caps/nvidia-cap318:/dev/nvidia-caps/nvidia-cap318:r
--device=/dev/nvidia-caps/nvidia-cap319:/dev/nvidia-caps/nvidia-cap319:r
";
    for name in [
        "0:1",
        "mig0:1",
        "nvidia.com/gpu=0:1",
        "MIG-17f1f658-3fd2-5f13-bf9a-62c866cd62eb",
    ] {
        assert_eq!(
            machine.gen_ok(&["docker-args", "--no-driver-files", name]),
            expected,
            "{name}"
        );
    }
    // With the driver's files: the same devices, then read-only volumes.
    let with_files = machine.gen_ok(&["docker-args", "0:1"]);
    assert!(with_files.starts_with(expected), "{with_files}");
    assert!(
        with_files.contains(
            "--volume=/usr/lib/x86_64-linux-gnu/libcuda.so.570.133.20:\
             /usr/lib/x86_64-linux-gnu/libcuda.so.570.133.20:ro\n"
        ),
        "{with_files}"
    );
    let out = machine.gen(&["docker-args", "0:1"]);
    assert!(
        text(&out.stderr).contains("cannot make the driver libraries' soname links"),
        "{}",
        text(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&machine.gen_ok(&["docker-args", "--json", "1"])).unwrap();
    assert!(!json["volumes"].as_array().unwrap().is_empty());
    assert_eq!(json["notes"].as_array().unwrap().len(), 1);
    let json = &json["devices"];
    assert_eq!(json.as_array().unwrap().len(), 4);
    assert_eq!(
        json[3],
        serde_json::json!({"hostPath": "/dev/nvidia0", "path": "/dev/nvidia0",
                           "major": 195, "minor": 0, "permissions": "rw"})
    );
    let out = machine.gen(&["docker-args", "5:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr)
        .contains("no device \"5:0\" on this node; devices: 0:0, 0:1, 0:2, 1, 2:0, 2:1, 3:0"));
    let out = machine.gen(&["docker-args", "other.com/gpu=0:1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn generate_refuses_bad_flags_before_any_work() {
    for (args, needle) in [
        (
            vec!["generate", "--vendor", "1nvidia"],
            "--vendor: vendor \"1nvidia\" must start with a letter",
        ),
        (
            vec!["generate", "--class", "gpu/x"],
            "--class: class \"gpu/x\" contains '/'",
        ),
        (vec!["generate", "--check"], "--output"),
        (
            vec!["generate", "--format", "yaml", "--output", "/tmp/x.json"],
            "name the file *.yaml",
        ),
        (
            vec!["--dev-root", "relative", "generate"],
            "must be an absolute path",
        ),
        (
            vec!["generate", "--device-name-strategy", "serial"],
            "invalid value 'serial'",
        ),
    ] {
        // No driver under this root: a flag error must come first.
        let mut full = vec!["--root", "/nonexistent"];
        full.extend(args.iter().copied());
        let out = gen(&full);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(needle),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_node_with_only_empty_mig_gpus_is_an_error_not_an_empty_spec() {
    let dir = tempfile::tempdir().unwrap();
    let machine = write(
        dir.path(),
        "empty-mig.json",
        r#"{"driverVersion": "580.159.04", "cudaVersion": "13.0", "gpus": [
            {"model": "H200", "minor": 0, "pciBusId": "0000:00:06.0",
             "uuid": "GPU-866b5d23-5f64-aec2-09af-f17711608a22", "migMode": "enabled"}]}"#,
    );
    let machine = FakeMachine::from_file(&machine);
    let file = dir.path().join("spec.json");
    std::fs::write(&file, "old").unwrap();
    let out = machine.gen(&["generate", "--output", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no device to describe"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"old");
}

#[test]
fn generate_writes_mode_0644_and_says_what() {
    use std::os::unix::fs::MetadataExt;
    let machine = FakeMachine::new("h200-mig");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cdi/nvidia.com-gpu.json");
    let out = machine.gen(&["generate", "--output", file.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(text(&out.stdout).is_empty());
    assert!(text(&out.stderr)
        .contains("(nvidia.com/gpu, cdiVersion 0.5.0, 10 device names for 5 devices)"));
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o7777, 0o644);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        machine.gen_ok(&["generate"])
    );
    let names: Vec<_> = std::fs::read_dir(file.parent().unwrap()).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn generate_warns_when_another_file_in_the_folder_defines_the_same_devices() {
    let machine = FakeMachine::new("h200");
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "nvidia.yaml",
        "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: \"0\"\n  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n",
    );
    let file = dir.path().join("nvidia.com-gpu.json");
    let out = machine.gen(&["generate", "--output", file.to_str().unwrap()]);
    assert!(out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "nvidia.yaml also defines nvidia.com/gpu=0: runtimes refuse a device defined twice"
        ),
        "{err}"
    );
    let out = machine.gen(&[
        "generate",
        "--vendor",
        "other.com",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(!text(&out.stderr).contains("also defines"));
}

#[test]
fn yaml_output_is_the_checked_bytes_and_reads_back_valid() {
    let machine = FakeMachine::new("h200-mig");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nvidia.com-gpu.yaml");
    machine.gen_ok(&["generate", "--output", file.to_str().unwrap()]);
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(written, machine.gen_ok(&["generate", "--format", "yaml"]));
    assert!(written.starts_with("cdiVersion: \"0.5.0\"\n"), "{written}");
    let out = gen(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn quiet_by_default_verbose_on_request() {
    let machine = FakeMachine::new("h200-mig");
    let run = |args: &[&str]| {
        machine
            .gen_command(args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let quiet = run(&["generate", "--hook-path", "/usr/local/bin/mig-cdi-hook"]);
    assert!(quiet.status.success());
    assert!(
        !text(&quiet.stderr).contains("info:"),
        "{}",
        text(&quiet.stderr)
    );
    let verbose = machine.gen(&[
        "-v",
        "generate",
        "--hook-path",
        "/usr/local/bin/mig-cdi-hook",
    ]);
    let err = text(&verbose.stderr);
    assert!(err.contains("mig-cdi-gen: info: NVML"), "{err}");
    assert!(
        err.contains("info: spec nvidia.com/gpu: cdiVersion 0.5.0"),
        "{err}"
    );
    assert!(!err.contains("debug:"), "{err}");
    // Same stdout either way.
    assert_eq!(verbose.stdout, quiet.stdout);
    let debug = machine
        .gen_command(&["generate", "--no-driver-files"])
        .env("RUST_LOG", "mig_cdi_gen=debug")
        .output()
        .unwrap();
    let err = text(&debug.stderr);
    assert!(err.contains("debug: GPU 0 minor"), "{err}");
    assert!(err.contains("info: driver files left out"), "{err}");
}
