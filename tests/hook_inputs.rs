//! What containers and spec folders may hold, under real runc and crun:
//! YAML specs are read like JSON; capability names, spec nodes and device
//! rules are read as the runtime reads them (and the hook takes the safe
//! side where runtimes differ); FIFOs never hang the hook; a container that
//! asked for nothing starts whatever else its config holds.

use std::process::Command;

use mig_cdi_testkit::e2e as support;
use mig_cdi_testkit::hook::*;
use serde_json::json;

const RUNTIMES: [Runtime; 2] = [Runtime::Runc, Runtime::Crun];

fn bundle(machine: &Machine, request: Option<&str>) -> Bundle {
    let mut b = Bundle::new(std::path::Path::new(support::ROOTFS), PROBE);
    b.hook("createRuntime", &machine.hook_args());
    if let Some(r) = request {
        b.env(&format!("NVIDIA_VISIBLE_DEVICES={r}"));
    }
    b
}

fn mkfifo(path: &std::path::Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn a_yaml_spec_in_a_spec_folder_is_read() {
    let m = Machine::new();
    let json_spec = m.cdi.join("nvidia.com-gpu.json");
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_spec).unwrap()).unwrap();
    std::fs::remove_file(&json_spec).unwrap();
    // YAML is a superset of JSON's flow syntax; write it block-style the
    // way a YAML emitter does, by hand, for the two fields per node we use.
    let mut yaml = String::from("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n");
    for device in spec["devices"].as_array().unwrap() {
        yaml.push_str(&format!(
            "- name: \"{}\"\n  containerEdits:\n    deviceNodes:\n",
            device["name"].as_str().unwrap()
        ));
        for node in device["containerEdits"]["deviceNodes"].as_array().unwrap() {
            yaml.push_str(&format!(
                "    - path: {}\n      type: c\n      major: {}\n      minor: {}\n",
                node["path"].as_str().unwrap(),
                node["major"],
                node["minor"]
            ));
        }
    }
    yaml.push_str("containerEdits:\n  deviceNodes:\n");
    for node in spec["containerEdits"]["deviceNodes"].as_array().unwrap() {
        yaml.push_str(&format!(
            "  - path: {}\n    major: {}\n    minor: {}\n",
            node["path"].as_str().unwrap(),
            node["major"],
            node["minor"]
        ));
    }
    std::fs::write(m.cdi.join("nvidia.com-gpu.yaml"), yaml).unwrap();
    for runtime in RUNTIMES {
        let ran = bundle(&m, Some("0:0")).run(runtime);
        ran.assert_ok();
        assert_exactly(&ran.stdout, &nodes_0_0());
    }
}

#[test]
fn lower_case_sys_admin_is_not_privilege() {
    let m = Machine::new();
    for runtime in RUNTIMES {
        let mut b = bundle(&m, Some("0:0"));
        b.env("NVIDIA_MIG_MONITOR_DEVICES=all");
        b.add_bounding_cap("cap_sys_admin");
        b.run(runtime)
            .assert_refused("needs CAP_SYS_ADMIN")
            .assert_refused("runc ignores capability names");
        let mut b = bundle(&m, Some("0:0"));
        b.add_bounding_cap("cap_sys_admin");
        b.config["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(json!({"allow": true, "type": "a", "access": "rwm"}));
        b.run(runtime).assert_refused("voids MIG isolation");
    }
}

#[test]
fn spec_nodes_beyond_the_device_are_refused_by_name() {
    let m = Machine::new();
    let path = m.cdi.join("nvidia.com-gpu.json");
    let good = std::fs::read_to_string(&path).unwrap();
    let mut spec: serde_json::Value = serde_json::from_str(&good).unwrap();
    spec["devices"][0]["containerEdits"]["deviceNodes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"path": "/dev/mem", "type": "c", "major": 1, "minor": 1}));
    std::fs::write(&path, spec.to_string()).unwrap();
    let first = spec["devices"][0]["name"].as_str().unwrap().to_string();
    for runtime in RUNTIMES {
        bundle(&m, Some(&first))
            .run(runtime)
            .assert_refused("/dev/mem")
            .assert_refused("which is not an NVIDIA device node");
    }
    // A capability node in the spec-level edits goes to every device.
    let mut spec: serde_json::Value = serde_json::from_str(&good).unwrap();
    spec["containerEdits"]["deviceNodes"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({"path": "/dev/nvidia-caps/nvidia-cap21", "type": "c", "major": 241,
            "minor": 21}),
        );
    std::fs::write(&path, spec.to_string()).unwrap();
    bundle(&m, Some("0:0"))
        .run(Runtime::Runc)
        .assert_refused("spec-level containerEdits");
}

#[test]
fn a_rule_opening_every_gpu_is_refused() {
    let m = Machine::new();
    for runtime in RUNTIMES {
        let mut b = bundle(&m, Some("0:0"));
        b.config["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(json!({"allow": true, "type": "c", "major": 195, "access": "rwm"}));
        b.run(runtime)
            .assert_refused("(allow c 195:* rwm)")
            .assert_refused("voids GPU isolation");
    }
}

#[test]
fn fifos_never_hang_the_hook() {
    let m = Machine::new();
    // A FIFO among the spec files is skipped, not waited on.
    mkfifo(&m.cdi.join("a-fifo.json"));
    for runtime in RUNTIMES {
        let ran = bundle(&m, Some("0:0")).run(runtime);
        ran.assert_ok();
        assert_exactly(&ran.stdout, &nodes_0_0());
    }
    // A driver table that is a FIFO is an error at once.
    let params = m.root.join("proc/driver/nvidia/params");
    std::fs::remove_file(&params).unwrap();
    mkfifo(&params);
    let start = std::time::Instant::now();
    bundle(&m, Some("0:0"))
        .run(Runtime::Runc)
        .assert_refused("a FIFO, not a regular file");
    assert!(start.elapsed().as_secs() < 60, "{:?}", start.elapsed());
}

#[test]
fn odd_but_valid_configs_start() {
    let m = Machine::new();
    for request in [None, Some("0:0")] {
        let mut b = bundle(&m, request);
        b.env("ODD=MARK");
        // A byte that is not UTF-8 in an unrelated variable (runc takes it).
        let text = serde_json::to_string_pretty(&b.config).unwrap();
        let (before, after) = text.split_once("ODD=MARK").unwrap();
        let mut raw = before.as_bytes().to_vec();
        raw.extend_from_slice(b"ODD=\xff\xfeMARK");
        raw.extend_from_slice(after.as_bytes());
        let ran = b.run_bytes(Runtime::Runc, &raw);
        ran.assert_ok();
        if request.is_some() {
            assert_exactly(&ran.stdout, &nodes_0_0());
        } else {
            assert_no_nvidia_nodes(&ran.stdout);
        }
    }
    // 1.2 MB of other annotations, nothing requested.
    let mut b = bundle(&m, None);
    b.config["annotations"] = json!({"io.example/blob": "x".repeat(1_200_000)});
    let ran = b.run(Runtime::Runc);
    ran.assert_ok();
    assert_no_nvidia_nodes(&ran.stdout);
}

/// `b` with its own user namespace, root mapped to host uid/gid 100000.
fn in_user_namespace(mut b: Bundle) -> Bundle {
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    let mapping = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["uidMappings"] = mapping.clone();
    b.config["linux"]["gidMappings"] = mapping;
    b
}

#[test]
fn a_user_namespace_is_refused_with_the_route_that_works() {
    let m = Machine::new();
    for runtime in RUNTIMES {
        in_user_namespace(bundle(&m, Some("0:0")))
            .run(runtime)
            .assert_refused("runs in a user namespace")
            .assert_refused("podman --device nvidia.com/gpu=NAME");
        // Asking for nothing, it is none of the hook's business.
        let ran = in_user_namespace(bundle(&m, None)).run(runtime);
        assert!(
            !ran.stderr.contains("mig-cdi-hook"),
            "{runtime:?}: {}",
            ran.stderr
        );
    }
}

#[test]
fn errors_name_the_file_and_position_never_its_contents() {
    let m = Machine::new();
    // A spec folder file that is not a spec, holding a secret.
    std::fs::write(
        m.cdi.join("a-notes.json"),
        "{\"kind\": \"TOPSECRET-TOKEN-1234\", \"devices\": {\"x\": [1,",
    )
    .unwrap();
    // A driver table whose line holds terminal control bytes.
    let params = m.root.join("proc/driver/nvidia/params");
    let mut text = std::fs::read(&params).unwrap();
    text.extend_from_slice(b"DeviceFileMode: \x1b]0;pwned\x07\n");
    std::fs::write(&params, text).unwrap();
    for runtime in RUNTIMES {
        let ran = bundle(&m, Some("9:9")).run(runtime);
        ran.assert_refused("a-notes.json (not");
        assert!(!ran.stderr.contains("TOPSECRET"), "{}", ran.stderr);
        let ran = bundle(&m, Some("0:0")).run(runtime);
        ran.assert_refused("params");
        assert!(
            !ran.stderr.contains('\x1b') && !ran.stderr.contains('\x07'),
            "{:?}",
            ran.stderr
        );
    }
}
