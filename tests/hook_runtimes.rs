//! mig-cdi-hook under real runc, crun and podman: a request by index name,
//! UUID, type-index name, qualified name or annotation gives the container
//! exactly the device's nodes, allowed by its device cgroup (ENXIO on open,
//! no driver here) and no other instance's capability node; two devices,
//! config/monitor without CAP_SYS_ADMIN, wide cgroup rules, a stale spec and
//! a hook without its capabilities are refused before the container starts;
//! no request leaves the container untouched.

use mig_cdi_testkit::e2e as support;
use mig_cdi_testkit::hook::*;

fn bundle(machine: &Machine, runtime: Runtime, request: Option<&str>) -> Bundle {
    let mut b = Bundle::new(std::path::Path::new(support::ROOTFS), PROBE);
    // runc gets the hook as prestart, crun as createRuntime: both stages
    // the hook supports are exercised.
    let stage = match runtime {
        Runtime::Runc => "prestart",
        Runtime::Crun => "createRuntime",
    };
    b.hook(stage, &machine.hook_args());
    if let Some(r) = request {
        b.env(&format!("NVIDIA_VISIBLE_DEVICES={r}"));
    }
    b
}

fn gives(runtime: Runtime, request: &str, want: &[Want]) {
    let m = Machine::new();
    let ran = bundle(&m, runtime, Some(request)).run(runtime);
    ran.assert_ok();
    assert_exactly(&ran.stdout, want);
}

#[test]
fn runc_by_index_name() {
    gives(Runtime::Runc, "0:1", &nodes_0_1());
}

#[test]
fn runc_by_uuid() {
    gives(Runtime::Runc, UUID_0_0, &nodes_0_0());
}

#[test]
fn runc_qualified() {
    gives(Runtime::Runc, "nvidia.com/gpu=0:1", &nodes_0_1());
}

#[test]
fn runc_one_device_under_three_names_counts_once() {
    gives(
        Runtime::Runc,
        &format!("0:1,{UUID_0_1},nvidia.com/gpu=mig0:1"),
        &nodes_0_1(),
    );
}

#[test]
fn crun_by_index_name() {
    gives(Runtime::Crun, "0:0", &nodes_0_0());
}

#[test]
fn crun_by_uuid() {
    gives(Runtime::Crun, UUID_0_1, &nodes_0_1());
}

#[test]
fn crun_qualified() {
    gives(Runtime::Crun, "nvidia.com/gpu=0:0", &nodes_0_0());
}

fn podman_gives(runtime: Option<&str>, request: &str, want: &[Want]) {
    let m = Machine::new();
    let hooks = podman_hooks_dir("mig-cdi-hook.json", &m.hook_args());
    let env = format!("NVIDIA_VISIBLE_DEVICES={request}");
    let ran = podman_run(hooks.path(), runtime, &["-e", &env]);
    ran.assert_ok();
    assert_exactly(&ran.stdout, want);
}

#[test]
fn podman_by_index_name() {
    podman_gives(None, "0:1", &nodes_0_1());
}

#[test]
fn podman_by_uuid() {
    podman_gives(None, UUID_0_0, &nodes_0_0());
}

#[test]
fn podman_qualified_with_runc() {
    podman_gives(Some("runc"), "nvidia.com/gpu=0:0", &nodes_0_0());
}

#[test]
fn podman_annotation_hooks_d_matches_on_the_annotation() {
    let m = Machine::new();
    let hooks = podman_hooks_dir("mig-cdi-hook-annotation.json", &m.hook_args());
    let ran = podman_run(hooks.path(), None, &["--annotation", "mig-cdi/devices=0:1"]);
    ran.assert_ok();
    assert_exactly(&ran.stdout, &nodes_0_1());
    // Without the annotation the hook is not even run.
    let log = hooks.path().join("log");
    let mut args = m.hook_args();
    args.extend(["--log".to_string(), log.display().to_string()]);
    let hooks = podman_hooks_dir("mig-cdi-hook-annotation.json", &args);
    let ran = podman_run(hooks.path(), None, &["-e", "NVIDIA_VISIBLE_DEVICES=0:1"]);
    ran.assert_ok();
    assert_no_nvidia_nodes(&ran.stdout);
    assert!(!log.exists(), "hook ran without the annotation");
}

const TWO: &str = "asks for 2 MIG devices: 0:0, 0:1";

#[test]
fn two_devices_refused_runc() {
    let m = Machine::new();
    bundle(&m, Runtime::Runc, Some("0:0,0:1"))
        .run(Runtime::Runc)
        .assert_refused(TWO)
        .assert_refused("CUDA enumerates only one MIG device per process");
}

#[test]
fn two_devices_refused_crun() {
    let m = Machine::new();
    bundle(&m, Runtime::Crun, Some("0:0,0:1"))
        .run(Runtime::Crun)
        .assert_refused(TWO);
}

#[test]
fn two_devices_refused_podman() {
    let m = Machine::new();
    let hooks = podman_hooks_dir("mig-cdi-hook.json", &m.hook_args());
    for runtime in [None, Some("runc")] {
        podman_run(
            hooks.path(),
            runtime,
            &["-e", "NVIDIA_VISIBLE_DEVICES=0:0,0:1"],
        )
        .assert_refused(TWO);
    }
}

/// `ls /dev` names: what a container sees without any hook.
fn dev_listing(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip_while(|l| *l != "LS-START")
        .skip(1)
        .take_while(|l| *l != "LS-END")
        .map(str::to_string)
        .collect()
}

#[test]
fn no_request_leaves_the_container_untouched() {
    let m = Machine::new();
    let script = format!("echo LS-START; ls -a /dev; echo LS-END; {PROBE}");
    for runtime in [Runtime::Runc, Runtime::Crun] {
        let baseline = Bundle::new(std::path::Path::new(support::ROOTFS), &script).run(runtime);
        baseline.assert_ok();
        for value in [None, Some(""), Some("void"), Some("none")] {
            let mut b = Bundle::new(std::path::Path::new(support::ROOTFS), &script);
            let log = b.dir().join("log");
            let mut args = m.hook_args();
            args.extend(["--log".to_string(), log.display().to_string()]);
            b.hook("createRuntime", &args);
            if let Some(v) = value {
                b.env(&format!("NVIDIA_VISIBLE_DEVICES={v}"));
            }
            let ran = b.run(runtime);
            ran.assert_ok();
            assert_no_nvidia_nodes(&ran.stdout);
            assert_eq!(dev_listing(&ran.stdout), dev_listing(&baseline.stdout));
            assert!(!dev_listing(&ran.stdout).is_empty());
            let trail = std::fs::read_to_string(&log).unwrap();
            assert!(
                trail.contains("no MIG device requested"),
                "{value:?}: {trail}"
            );
        }
    }
    let hooks = podman_hooks_dir("mig-cdi-hook.json", &m.hook_args());
    let ran = podman_run(hooks.path(), None, &[]);
    ran.assert_ok();
    assert_no_nvidia_nodes(&ran.stdout);
}

#[test]
fn mig_config_without_cap_sys_admin_is_refused() {
    let m = Machine::new();
    for runtime in [Runtime::Runc, Runtime::Crun] {
        let mut b = bundle(&m, runtime, Some("0:0"));
        b.env("NVIDIA_MIG_CONFIG_DEVICES=all");
        b.run(runtime)
            .assert_refused("NVIDIA_MIG_CONFIG_DEVICES=all")
            .assert_refused("CAP_SYS_ADMIN in the container's bounding set");
    }
    let hooks = podman_hooks_dir("mig-cdi-hook.json", &m.hook_args());
    podman_run(
        hooks.path(),
        None,
        &[
            "-e",
            "NVIDIA_VISIBLE_DEVICES=0:0",
            "-e",
            "NVIDIA_MIG_MONITOR_DEVICES=all",
        ],
    )
    .assert_refused("NVIDIA_MIG_MONITOR_DEVICES=all");
}

#[test]
fn mig_config_and_monitor_with_cap_sys_admin() {
    let m = Machine::new();
    for runtime in [Runtime::Runc, Runtime::Crun] {
        let mut b = bundle(&m, runtime, Some("0:0"));
        b.env("NVIDIA_MIG_CONFIG_DEVICES=all")
            .add_bounding_cap("CAP_SYS_ADMIN");
        let ran = b.run(runtime);
        ran.assert_ok();
        let mut want = nodes_0_0();
        want.push(CONFIG_NODE);
        assert_exactly(&ran.stdout, &want);
    }
    let hooks = podman_hooks_dir("mig-cdi-hook.json", &m.hook_args());
    let ran = podman_run(
        hooks.path(),
        None,
        &[
            "--cap-add",
            "SYS_ADMIN",
            "-e",
            "NVIDIA_VISIBLE_DEVICES=0:1",
            "-e",
            "NVIDIA_MIG_MONITOR_DEVICES=all",
        ],
    );
    ran.assert_ok();
    let mut want = nodes_0_1();
    want.push(MONITOR_NODE);
    assert_exactly(&ran.stdout, &want);
}

#[test]
fn stale_spec_is_refused() {
    for runtime in [Runtime::Runc, Runtime::Crun] {
        let m = Machine::new();
        // The driver now says GI 1's access capability is minor 14.
        m.set_capability_minor("gpu0/mig/gi1/access", 14);
        bundle(&m, runtime, Some("0:0"))
            .run(runtime)
            .assert_refused(
                "no MIG capability of this GPU has minor 12 now (it has gpu0/mig/gi1/access = 14",
            )
            .assert_refused("regenerate it with `mig-cdi-gen generate`");
        // The other device is still fine.
        let ran = bundle(&m, runtime, Some("0:1")).run(runtime);
        ran.assert_ok();
        assert_exactly(&ran.stdout, &nodes_0_1());
    }
}

#[test]
fn wide_device_cgroup_rule_is_refused_naming_it() {
    let m = Machine::new();
    let mut b = bundle(&m, Runtime::Runc, Some("0:0"));
    b.config["linux"]["resources"]["devices"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"allow": true, "type": "c", "major": 241, "access": "rwm"}));
    b.run(Runtime::Runc)
        .assert_refused("linux.resources.devices[1] (allow c 241:* rwm)")
        .assert_refused("voids MIG isolation");
}

#[test]
fn hook_without_its_capabilities_says_which() {
    let m = Machine::new();
    let mut b = bundle(&m, Runtime::Runc, Some("0:0"));
    // Run the hook through setpriv with CAP_MKNOD dropped from the
    // bounding set: after exec, root's effective set lacks it.
    let mut entry = example_hook_entry(&m.hook_args());
    let mut args = vec![
        serde_json::json!("setpriv"),
        serde_json::json!("--bounding-set=-mknod,-sys_admin"),
        serde_json::json!("--"),
        entry["path"].clone(),
    ];
    args.extend(entry["args"].as_array().unwrap()[1..].iter().cloned());
    entry["path"] = serde_json::json!("/usr/bin/setpriv");
    entry["args"] = serde_json::json!(args);
    b.config["hooks"] = serde_json::json!({"prestart": [entry]});
    b.run(Runtime::Runc)
        .assert_refused("lacks CAP_MKNOD (to create device nodes), CAP_SYS_ADMIN");
}
