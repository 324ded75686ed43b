//! The docker route: docker without CDI has no hook configuration, so
//! `examples/hooks/docker/mig-cdi-runc` (declared as a runtime in
//! `examples/hooks/docker/daemon.json`) adds the hook to each bundle with
//! `mig-cdi-hook add-to-bundle` and hands over to runc. No docker engine
//! runs here; podman drives the same runc-compatible command line
//! (`--root … create --bundle … ID`) through `--runtime`, and the wrapper
//! is also run directly with docker's shim-style global options.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mig_cdi_testkit::e2e as support;
use mig_cdi_testkit::hook::*;
use mig_cdi_testkit::paths;

/// The example wrapper, copied beside its `.conf` (which points it at the
/// built hook and the simulated machine).
fn wrapper(machine: &Machine, dir: &Path) -> PathBuf {
    let example = paths::repo_root().join("examples/hooks/docker/mig-cdi-runc");
    let script = dir.join("mig-cdi-runc");
    std::fs::copy(&example, &script).unwrap();
    std::fs::write(
        dir.join("mig-cdi-runc.conf"),
        format!(
            "MIG_CDI_HOOK={}\nMIG_CDI_HOOK_ARGS=\"{}\"\n",
            support::bin("mig-cdi-hook").display(),
            machine.hook_args().join(" ")
        ),
    )
    .unwrap();
    script
}

#[test]
fn daemon_json_declares_the_wrapper() {
    let file = paths::repo_root().join("examples/hooks/docker/daemon.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(
        v["runtimes"]["mig-cdi"]["path"],
        "/usr/local/bin/mig-cdi-runc"
    );
}

fn podman(runtime: &Path, args: &[&str]) -> Ran {
    let out = Command::new("timeout")
        .arg("180")
        .arg("podman")
        .arg("--runtime")
        .arg(runtime)
        .args(["run", "--rm", "--network", "none"])
        .args(args)
        .args([support::IMAGE, "sh", "-c", PROBE])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn engine_through_the_wrapper_runtime() {
    let machine = Machine::new();
    let tmp = tempfile::tempdir().unwrap();
    let runtime = wrapper(&machine, tmp.path());
    let ran = podman(
        &runtime,
        &["-e", &format!("NVIDIA_VISIBLE_DEVICES={UUID_0_1}")],
    );
    ran.assert_ok();
    assert_exactly(&ran.stdout, &nodes_0_1());

    podman(&runtime, &["-e", "NVIDIA_VISIBLE_DEVICES=0:0,0:1"])
        .assert_refused("asks for 2 MIG devices: 0:0, 0:1");

    let ran = podman(&runtime, &[]);
    ran.assert_ok();
    assert_no_nvidia_nodes(&ran.stdout);
}

#[test]
fn wrapper_with_shim_style_global_options() {
    let machine = Machine::new();
    let tmp = tempfile::tempdir().unwrap();
    let runtime = wrapper(&machine, tmp.path());
    let mut b = Bundle::new(Path::new(support::ROOTFS), PROBE);
    b.env("NVIDIA_VISIBLE_DEVICES=0:0");
    // Bundle::run writes config.json; here the wrapper must add the hook.
    std::fs::write(
        b.path.join("config.json"),
        serde_json::to_string(&b.config).unwrap(),
    )
    .unwrap();
    let state = tmp.path().join("runc-root");
    let id = container_id("docker");
    let out = Command::new("timeout")
        .arg("120")
        .arg(&runtime)
        .arg("--root")
        .arg(&state)
        .arg("--log")
        .arg(tmp.path().join("runc.log"))
        .args(["--log-format", "json", "run", "--bundle"])
        .arg(&b.path)
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_exactly(&stdout, &nodes_0_0());
    let config = std::fs::read_to_string(b.path.join("config.json")).unwrap();
    assert!(
        config.contains("\"createRuntime\""),
        "hook not added: {config}"
    );
}
