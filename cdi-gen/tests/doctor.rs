//! `mig-cdi-gen doctor` on simulated machines, each with problems planted
//! in it (in its description under `examples/machines/doctor/`, or on its
//! fake root by the scenario): the report names exactly those problems,
//! and nothing on a healthy machine. The text and JSON reports are pinned
//! in `tests/golden/doctor/` (paths under the fake root read `$ROOT`).
//!
//! Re-pin after an intended change: `MIG_CDI_UPDATE_GOLDEN=1 cargo test -p
//! mig-cdi-gen --test doctor`, then review `git diff tests/golden/doctor`.
//! The process scenario lives in `doctor_process.rs`: it needs a test
//! binary of its own (see there).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mig_cdi_testkit::doctor::{
    assert_golden, install_boot_unit, problems, run_doctor, write_current_spec, write_file,
};
use mig_cdi_testkit::e2e::FakeMachine;
use mig_cdi_testkit::paths::{machine_file, repo_root};

fn doctor_machine(name: &str) -> FakeMachine {
    FakeMachine::from_file(&repo_root().join(format!("examples/machines/doctor/{name}.json")))
}

const SPEC: &str = "etc/cdi/nvidia.com-gpu.json";

/// A machine as a careful operator leaves it: the current spec in
/// /etc/cdi, a boot unit that restores MIG and regenerates the spec.
fn tended(machine: FakeMachine) -> FakeMachine {
    write_current_spec(&machine, SPEC);
    install_boot_unit(&machine.root);
    machine
}

/// Run doctor in both formats, pin both, and check the problems found.
fn expect(scenario: &str, machine: &FakeMachine, want: &[(&str, &str)]) {
    let (text, json, code) = run_doctor(machine, &[]);
    assert_golden(&format!("doctor/{scenario}.txt"), &text);
    assert_golden(&format!("doctor/{scenario}.json"), &json);
    let found = problems(&json);
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(id, s)| (id.to_string(), s.to_string()))
        .collect();
    assert_eq!(found, want, "{scenario}: the problems doctor found\n{text}");
    assert_eq!(
        code,
        if want.is_empty() { 0 } else { 1 },
        "{scenario}: exit status"
    );
}

#[test]
fn healthy_machine_has_no_problem() {
    let machine = tended(FakeMachine::new("h200-mig"));
    expect("healthy", &machine, &[]);
}

#[test]
fn mig_disabled_says_how_to_enable_it() {
    // The real H200 (MIG off), with the spec of its whole GPU.
    let machine = FakeMachine::new("h200");
    write_current_spec(&machine, SPEC);
    expect("mig-disabled", &machine, &[("mig.disabled", "warning")]);
    let (text, _, _) = run_doctor(&machine, &[]);
    assert!(text.contains("`nvidia-smi -i 0 -mig 1` (as root: it needs CAP_SYS_ADMIN)"));
}

#[test]
fn pending_mode_change() {
    let machine = tended(doctor_machine("pending-mode"));
    expect("pending-mode", &machine, &[("mig.pending", "error")]);
}

#[test]
fn mig_enabled_without_instances() {
    let machine = tended(doctor_machine("no-instances"));
    expect("no-instances", &machine, &[("mig.no-instances", "warning")]);
}

#[test]
fn gpu_instance_without_compute_instance() {
    let machine = tended(doctor_machine("gi-without-ci"));
    expect("gi-without-ci", &machine, &[("mig.gi-without-ci", "error")]);
}

#[test]
fn missing_and_wrong_capability_nodes() {
    let machine = tended(doctor_machine("cap-nodes"));
    expect(
        "cap-nodes",
        &machine,
        &[("node.wrong", "error"), ("node.missing", "error")],
    );
}

#[test]
fn the_proc_capability_model() {
    let machine = tended(doctor_machine("proc-model"));
    expect("proc-model", &machine, &[("caps.proc-model", "error")]);
}

#[test]
fn driver_below_the_architecture_minimum() {
    let machine = tended(doctor_machine("old-driver"));
    expect("old-driver", &machine, &[("gpu.driver-too-old", "error")]);
}

#[test]
fn blackwell_driver_below_the_b200_minimum() {
    let machine = tended(doctor_machine("b200-old-driver"));
    expect(
        "b200-old-driver",
        &machine,
        &[("gpu.driver-too-old", "error")],
    );
}

#[test]
fn every_new_board_is_healthy_and_the_rtx_pro_gets_the_vbios_note() {
    let machine = tended(doctor_machine("new-boards"));
    expect("new-boards", &machine, &[]);
    let (text, _, _) = run_doctor(&machine, &[]);
    assert!(
        text.contains("info    gpu.vbios: NVIDIA's MIG user guide also asks a minimum vBIOS for MIG on RTX PRO 6000 Blackwell"),
        "{text}"
    );
    assert!(text.contains("this GPU has vBIOS 98.02.52.00.02"), "{text}");
}

#[test]
fn gpu_without_mig() {
    let machine = tended(doctor_machine("no-mig-gpu"));
    expect("no-mig-gpu", &machine, &[("gpu.no-mig", "warning")]);
}

#[test]
fn stale_spec() {
    let machine = FakeMachine::new("h200-mig");
    install_boot_unit(&machine.root);
    // The spec written before MIG was enabled: the whole GPU.
    let before = FakeMachine::new("h200");
    write_file(
        &machine.root.join(SPEC),
        before.gen_ok(&["generate"]).as_bytes(),
        0o644,
    );
    expect("stale-spec", &machine, &[("cdi.stale", "error")]);
}

#[test]
fn a_spec_with_verify_hooks_is_current() {
    let machine = FakeMachine::new("h200-mig");
    install_boot_unit(&machine.root);
    let spec = machine.gen_ok(&[
        "generate",
        "--hook-path",
        "/opt/x/mig-cdi-hook",
        "--hook-state-dir",
        "/run/mig-cdi",
    ]);
    assert!(spec.contains("\"createRuntime\""));
    write_file(&machine.root.join(SPEC), spec.as_bytes(), 0o644);
    let (text, json, code) = run_doctor(&machine, &[]);
    assert_eq!(problems(&json), Vec::<(String, String)>::new(), "{text}");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("cdi.current"), "{text}");
}

#[test]
fn conflicting_spec_in_the_same_folder() {
    let machine = tended(FakeMachine::new("h200-mig"));
    let ours = std::fs::read(machine.root.join(SPEC)).unwrap();
    write_file(&machine.root.join("etc/cdi/nvidia.json"), &ours, 0o644);
    expect("conflicting-spec", &machine, &[("cdi.conflict", "error")]);
}

#[test]
fn spec_rootless_podman_cannot_read() {
    let machine = tended(FakeMachine::new("h200-mig"));
    std::fs::set_permissions(
        machine.root.join(SPEC),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    expect("spec-mode", &machine, &[("cdi.mode", "warning")]);
}

#[test]
fn no_boot_unit_restores_mig() {
    let machine = FakeMachine::new("h200-mig");
    write_current_spec(&machine, SPEC);
    expect("no-boot-unit", &machine, &[("boot.no-unit", "warning")]);
}

#[test]
fn mig_manager_that_does_not_regenerate_the_spec() {
    let machine = FakeMachine::new("h200-mig");
    write_current_spec(&machine, SPEC);
    let unit = "lib/systemd/system/nvidia-mig-manager.service";
    write_file(
        &machine.root.join(unit),
        b"[Service]\nType=oneshot\nExecStart=/usr/bin/nvidia-mig-manager.sh\n[Install]\nWantedBy=multi-user.target\n",
        0o644,
    );
    let wants = machine
        .root
        .join("etc/systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink(
        "/lib/systemd/system/nvidia-mig-manager.service",
        wants.join("nvidia-mig-manager.service"),
    )
    .unwrap();
    expect(
        "mig-manager-no-generate",
        &machine,
        &[("boot.spec-not-regenerated", "warning")],
    );
}

#[test]
fn hook_and_runtime_configuration_is_reported() {
    let machine = tended(FakeMachine::new("h200-mig"));
    let examples = repo_root().join("examples");
    for (from, to) in [
        (
            "hooks/podman/mig-cdi-hook.json",
            "etc/containers/oci/hooks.d/mig-cdi-hook.json",
        ),
        ("runtime/daemon.json", "etc/docker/daemon.json"),
        (
            "runtime/containerd-config.toml",
            "etc/containerd/config.toml",
        ),
    ] {
        write_file(
            &machine.root.join(to),
            &std::fs::read(examples.join(from)).unwrap(),
            0o644,
        );
    }
    expect("runtimes", &machine, &[]);
    let (text, _, _) = run_doctor(&machine, &[]);
    for id in [
        "runtime.podman-hook",
        "runtime.docker",
        "runtime.containerd",
    ] {
        assert!(text.contains(id), "{id}\n{text}");
    }
}

/// Every file, folder and node under `root`, with its mode and contents
/// or device number: what doctor must leave as it was.
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(base).unwrap().to_path_buf();
            let what = if meta.is_dir() {
                walk(base, &path, out);
                String::new()
            } else if meta.is_file() {
                format!("{:?}", std::fs::read(&path).unwrap())
            } else {
                format!("rdev {}", meta.rdev())
            };
            out.insert(rel, format!("{:o} {what}", meta.mode()));
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn doctor_changes_nothing_and_refuses_to_create_nodes() {
    let machine = tended(doctor_machine("cap-nodes"));
    let before = tree(&machine.root);
    let (_, _, code) = run_doctor(&machine, &[]);
    assert_eq!(code, 1);
    for args in [
        &["doctor", "--create-device-nodes"][..],
        &["--create-device-nodes", "doctor"][..],
    ] {
        let out = machine.gen(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("doctor never changes the host"), "{stderr}");
    }
    assert_eq!(tree(&machine.root), before, "doctor changed the fake root");
}

#[test]
fn without_nvml_doctor_still_checks_the_host_and_says_why() {
    let machine = FakeMachine::new("h200-mig");
    let out = machine
        .gen_command(&["doctor"])
        .env("NVML_SIM_MACHINE", "/nonexistent/machine.json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ERROR   driver.nvml: NVML could not be read"),
        "{text}"
    );
    assert!(text.contains("cdi.no-spec"), "{text}");
    let _ = machine_file("h200-mig");
}
