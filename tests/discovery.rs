//! Discovery end to end: the real `mig-cdi-gen` binary, loading the NVML
//! simulator through nvml-wrapper, on each shipped machine's fake driver
//! root with real char nodes. Each test asserts the exact nodes of every
//! device, as `mig-cdi-gen list --json` reports them.
//!
//! Expected capability minors follow the driver's mig-minors table:
//! `gpuN/giG/access` = 3 + (N*15 + G)*9 and `gpuN/giG/ciC/access` = that + 1 + C,
//! where N is the GPU *minor* number.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use mig_cdi_core::nodes::make_dev;
use mig_cdi_testkit::e2e::{self, is_root, FakeMachine};
use mig_cdi_testkit::paths;
use serde_json::Value;

fn list_json(machine: &FakeMachine) -> Value {
    serde_json::from_str(&machine.gen_ok(&["list", "--json"])).expect("list --json is JSON")
}

/// One line per device: `name profile gi/ci node=major:minor ...`.
fn device_lines(list: &Value) -> Vec<String> {
    list["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| {
            let mut line = d["name"].as_str().unwrap().to_string();
            if d["kind"] == "mig" {
                line += &format!(
                    " {} {}/{}",
                    d["profile"].as_str().unwrap(),
                    d["gi"],
                    d["ci"]
                );
            }
            for n in d["nodes"].as_array().unwrap() {
                line += &format!(
                    " {}={}:{}",
                    n["path"].as_str().unwrap(),
                    n["major"],
                    n["minor"]
                );
            }
            line
        })
        .collect()
}

fn control_lines(list: &Value) -> Vec<String> {
    list["controlNodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            format!(
                "{}={}:{}",
                n["path"].as_str().unwrap(),
                n["major"],
                n["minor"]
            )
        })
        .collect()
}

fn cap(m: u32) -> String {
    format!("/dev/nvidia-caps/nvidia-cap{m}=241:{m}")
}

/// The nodes of MIG device `name` on GPU minor `gpu`, GI `gi`, CI `ci`.
fn mig(name: &str, profile: &str, gpu: u32, gi: u32, ci: u32) -> String {
    let gi_minor = 3 + (gpu * 15 + gi) * 9;
    format!(
        "{name} {profile} {gi}/{ci} /dev/nvidia{gpu}=195:{gpu} {} {}",
        cap(gi_minor),
        cap(gi_minor + 1 + ci)
    )
}

fn whole_gpu(name: &str, minor: u32) -> String {
    format!("{name} /dev/nvidia{minor}=195:{minor}")
}

const CONTROL: [&str; 3] = [
    "/dev/nvidia-uvm=238:0",
    "/dev/nvidia-uvm-tools=238:1",
    "/dev/nvidiactl=195:255",
];

fn need_root() -> bool {
    if !is_root() {
        eprintln!("skipped: the fake roots' device nodes need root (mknod)");
    }
    is_root()
}

#[test]
fn a100x8_every_device_gets_exactly_its_nodes() {
    if !need_root() {
        return;
    }
    let machine = FakeMachine::new("a100x8");
    let list = list_json(&machine);
    assert_eq!(
        device_lines(&list),
        vec![
            // GPU 0: 7 x 1g.10gb, GI 7..13.
            mig("0:0", "1g.10gb", 0, 7, 0),
            mig("0:1", "1g.10gb", 0, 8, 0),
            mig("0:2", "1g.10gb", 0, 9, 0),
            mig("0:3", "1g.10gb", 0, 10, 0),
            mig("0:4", "1g.10gb", 0, 11, 0),
            mig("0:5", "1g.10gb", 0, 12, 0),
            mig("0:6", "1g.10gb", 0, 13, 0),
            // GPU 1: 4g.40gb at 0 (GI 1) + 3g.40gb at 4 (GI 2).
            mig("1:0", "4g.40gb", 1, 1, 0),
            mig("1:1", "3g.40gb", 1, 2, 0),
            // GPU 2: 3 x 2g.20gb (GI 3, 4, 5) + 1g.10gb at 6 (GI 13).
            mig("2:0", "2g.20gb", 2, 3, 0),
            mig("2:1", "2g.20gb", 2, 4, 0),
            mig("2:2", "2g.20gb", 2, 5, 0),
            mig("2:3", "1g.10gb", 2, 13, 0),
            // GPU 3: one 3g.40gb GI split into a 2c and a 1c compute instance.
            mig("3:0", "2c.3g.40gb", 3, 1, 0),
            mig("3:1", "1c.3g.40gb", 3, 1, 2),
            // GPU 4: MIG disabled — the whole GPU.
            whole_gpu("4", 4),
            // GPU 5: MIG on, no instances — nothing. GPU 6: pending differs.
            mig("6:0", "7g.80gb", 6, 0, 0),
            // GPU 7: MIG slots 0 and 2, slot 1 empty (NOT_FOUND gap).
            mig("7:0", "1g.10gb", 7, 7, 0),
            mig("7:2", "2g.20gb", 7, 4, 0),
        ]
    );
    assert_eq!(control_lines(&list), CONTROL);
    let gpu6 = &list["gpus"][6]["mig"];
    assert_eq!(
        (gpu6["current"].as_bool(), gpu6["pending"].as_bool()),
        (Some(true), Some(false))
    );
    for d in list["devices"].as_array().unwrap() {
        let uuid = d["uuid"].as_str().unwrap();
        let prefix = if d["kind"] == "mig" { "MIG-" } else { "GPU-" };
        assert!(uuid.starts_with(prefix) && uuid.len() == 40, "{uuid}");
    }
}

#[test]
fn h100x4_capabilities_follow_minor_numbers_not_nvml_indexes() {
    if !need_root() {
        return;
    }
    let machine = FakeMachine::new("h100x4");
    let list = list_json(&machine);
    let minors: Vec<_> = list["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["index"].as_u64().unwrap(), g["minor"].as_u64().unwrap()))
        .collect();
    assert_eq!(minors, vec![(0, 2), (1, 0), (2, 3), (3, 1)]);
    assert_eq!(
        device_lines(&list),
        vec![
            // NVML index 0 is minor 2: /dev/nvidia2 and gpu2/... capabilities.
            mig("0:0", "1g.20gb", 2, 4, 0),
            mig("0:1", "2g.20gb", 2, 5, 0),
            mig("0:2", "1g.10gb+me", 2, 7, 0),
            // Index 1 is minor 0, MIG disabled.
            whole_gpu("1", 0),
            // Index 2 is minor 3: a 7g split into 4c (CI 0) and 3c (CI 4).
            mig("2:0", "4c.7g.80gb", 3, 0, 0),
            mig("2:1", "3c.7g.80gb", 3, 0, 4),
            // Index 3 is minor 1.
            mig("3:0", "3g.40gb", 1, 2, 0),
        ]
    );
    assert_eq!(control_lines(&list), CONTROL);
}

#[test]
fn h200_machines_match_the_real_node() {
    if !need_root() {
        return;
    }
    let off = list_json(&FakeMachine::new("h200"));
    assert_eq!(device_lines(&off), vec![whole_gpu("0", 0)]);
    assert_eq!(control_lines(&off), CONTROL);
    let on = list_json(&FakeMachine::new("h200-mig"));
    assert_eq!(
        device_lines(&on),
        vec![
            mig("0:0", "2g.35gb", 0, 5, 0),
            mig("0:1", "1g.18gb", 0, 7, 0),
            mig("0:2", "1g.18gb", 0, 8, 0),
            mig("0:3", "1g.18gb", 0, 9, 0),
            mig("0:4", "1g.18gb+me", 0, 10, 0),
        ]
    );
}

/// The simulated H200's profile table is the one the real H200 printed
/// through the real NVML (examples/real-h200/list-profiles.json, captured
/// with `mig-cdi-gen list --profiles --json` on the device machine).
#[test]
fn h200_profile_table_equals_the_real_one() {
    if !need_root() {
        return;
    }
    let machine = FakeMachine::new("h200");
    let sim: Value =
        serde_json::from_str(&machine.gen_ok(&["list", "--profiles", "--json"])).unwrap();
    let real: Value = serde_json::from_str(
        &fs::read_to_string(paths::repo_root().join("examples/real-h200/list-profiles.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(sim["gpus"][0]["profiles"], real["gpus"][0]["profiles"]);
    assert_eq!(sim["gpus"][0]["name"], "NVIDIA H200");
    let names: Vec<_> = sim["gpus"][0]["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    // The order and names of `nvidia-smi mig -lgip` in the driver snapshot.
    let lgip = fs::read_to_string(paths::h200_snapshot().join("nvidia-smi-mig-lgip.txt")).unwrap();
    let lgip_names: Vec<_> = lgip
        .lines()
        .filter_map(|l| l.split("MIG ").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(names, lgip_names);
}

#[test]
fn the_profile_table_reads_like_nvidia_smi() {
    if !need_root() {
        return;
    }
    let text = FakeMachine::new("h200").gen_ok(&["list", "--profiles"]);
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "GPU",
            "NAME",
            "ID",
            "FREE/TOTAL",
            "MEMORY",
            "GiB",
            "P2P",
            "SM",
            "DEC",
            "ENC",
            "CE",
            "JPEG",
            "OFA"
        ]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", "MIG", "1g.18gb", "19", "7/7", "16.00", "No", "16", "1", "0", "1", "1", "0"]
    );
    assert_eq!(
        lines[7].split_whitespace().collect::<Vec<_>>(),
        ["0", "MIG", "7g.141gb", "0", "1/1", "140.00", "No", "132", "7", "0", "8", "7", "1"]
    );
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_missing_capability_node_is_an_error_unless_asked_to_create_it() {
    if !need_root() {
        return;
    }
    let machine = FakeMachine::new("h200-mig");
    let node = machine.root.join("dev/nvidia-caps/nvidia-cap67");
    fs::remove_file(&node).unwrap();

    let out = machine.gen(&["list"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}: missing (expected char 241:67)",
            node.display()
        )),
        "{err}"
    );
    assert!(err.contains("needed by 0:1 (MIG-"), "{err}");
    assert!(err.contains("--create-device-nodes"), "{err}");
    assert!(!node.exists(), "nothing is created without the flag");

    let before: Vec<_> = fs::read_dir(machine.root.join("dev/nvidia-caps"))
        .unwrap()
        .collect();
    // Only generate creates nodes (list never changes the host).
    let out = machine.gen(&["generate", "--create-device-nodes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("mig-cdi-gen: created {}", node.display())),
        "{err}"
    );
    let meta = fs::symlink_metadata(&node).unwrap();
    assert!(meta.file_type().is_char_device());
    assert_eq!(meta.rdev(), make_dev(241, 67));
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o444,
        "the driver's DeviceFileMode"
    );
    let after: Vec<_> = fs::read_dir(machine.root.join("dev/nvidia-caps"))
        .unwrap()
        .collect();
    assert_eq!(
        after.len(),
        before.len() + 1,
        "exactly one node was created"
    );
}

#[test]
fn a_node_with_the_wrong_number_is_never_replaced() {
    if !need_root() {
        return;
    }
    let machine = FakeMachine::new("h200-mig");
    let node = machine.root.join("dev/nvidia-caps/nvidia-cap67");
    fs::remove_file(&node).unwrap();
    let status = std::process::Command::new("mknod")
        .arg(&node)
        .args(["c", "241", "99"])
        .status()
        .unwrap();
    assert!(status.success());
    // A missing node elsewhere, to show nothing is created when any node is wrong.
    let missing = machine.root.join("dev/nvidia-caps/nvidia-cap76");
    fs::remove_file(&missing).unwrap();

    let out = machine.gen(&["generate", "--create-device-nodes"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}: is char 241:99, expected char 241:67",
            node.display()
        )),
        "{err}"
    );
    assert!(err.contains("never replaced"), "{err}");
    assert_eq!(
        fs::symlink_metadata(&node).unwrap().rdev(),
        make_dev(241, 99)
    );
    assert!(!missing.exists(), "checks come before the first change");
}

/// Every entry under the fake root's /dev, with its device number and
/// mode: what a command that must not change the host leaves alone.
fn dev_tree(machine: &FakeMachine) -> Vec<(String, u64, u32)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<(String, u64, u32)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            out.push((path.display().to_string(), meta.rdev(), meta.mode()));
            if meta.is_dir() {
                walk(&path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&machine.root.join("dev"), &mut out);
    out.sort();
    out
}

/// Regression: `--create-device-nodes` was global and mknod ran inside
/// discovery, so `list --create-device-nodes` wrote to /dev.
#[test]
fn only_generate_creates_nodes_list_and_docker_args_refuse_the_flag() {
    if !need_root() {
        return;
    }
    let machine = FakeMachine::new("h200-mig");
    let node = machine.root.join("dev/nvidia-caps/nvidia-cap67");
    fs::remove_file(&node).unwrap();
    let before = dev_tree(&machine);
    for args in [
        vec!["list", "--create-device-nodes"],
        vec!["--create-device-nodes", "list"],
        vec!["list", "--json", "--create-device-nodes"],
        vec!["docker-args", "0:1", "--create-device-nodes"],
        vec!["--create-device-nodes", "docker-args", "0:1"],
    ] {
        let out = machine.gen(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("--create-device-nodes is an option of generate alone")
                && err.contains("never changes the host"),
            "{args:?}: {err}"
        );
        assert_eq!(dev_tree(&machine), before, "{args:?} changed /dev");
    }
    // Without the flag, list says the node is missing and still creates nothing.
    let out = machine.gen(&["list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("generate --create-device-nodes"));
    assert_eq!(dev_tree(&machine), before);
    assert!(!node.exists());
}

#[test]
fn generate_creates_only_the_missing_instance_nodes_after_every_check() {
    if !need_root() {
        return;
    }
    let machine = FakeMachine::new("h200-mig");
    // Device 0:1's GI node, device 0:3's CI node, and mig/config.
    let gi = machine.root.join("dev/nvidia-caps/nvidia-cap66");
    let ci = machine.root.join("dev/nvidia-caps/nvidia-cap85");
    let config = machine.root.join("dev/nvidia-caps/nvidia-cap1");
    fs::remove_file(&config).unwrap();
    let without_config = dev_tree(&machine);
    fs::remove_file(&gi).unwrap();
    fs::remove_file(&ci).unwrap();
    let missing = dev_tree(&machine);
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("nvidia.com-gpu.json");

    // Nothing is created unless every step before the write can pass:
    // --check writes nothing, an output below a regular file cannot be
    // written.
    let file = dir.path().join("file");
    fs::write(&file, "").unwrap();
    for args in [
        vec!["generate", "--check", "--output", spec.to_str().unwrap()],
        vec!["generate", "--output", "file/nvidia.com-gpu.json"],
    ] {
        let mut args = args.clone();
        args.push("--create-device-nodes");
        let out = machine
            .gen_command(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert_eq!(dev_tree(&machine), missing, "{args:?} changed /dev");
    }

    // The position the flag had when it was global, before the command,
    // still works for generate.
    let out = machine.gen(&[
        "--create-device-nodes",
        "generate",
        "--output",
        spec.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let created: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("mig-cdi-gen: created "))
        .collect();
    assert_eq!(
        created,
        [gi.to_str().unwrap(), ci.to_str().unwrap()],
        "{err}"
    );
    // The management node is only warned about, never created.
    assert!(
        err.contains("privileged containers will not get MIG config rights"),
        "{err}"
    );
    // Exactly the two nodes, as the driver has them.
    assert_eq!(dev_tree(&machine), without_config);
    assert!(spec.exists());
    // Nothing is missing any more: a second run creates nothing.
    let out = machine.gen(&["generate", "--create-device-nodes"]);
    assert!(out.status.success());
    assert!(!stderr(&out).contains("created"), "{}", stderr(&out));
}

#[test]
fn the_proc_only_capability_model_is_refused_with_what_to_change() {
    if !need_root() {
        return;
    }
    let machine = FakeMachine::new("h200-mig");
    let devices = machine.root.join("proc/devices");
    let text = fs::read_to_string(&devices)
        .unwrap()
        .replace("241 nvidia-caps\n", "");
    fs::write(&devices, text).unwrap();
    let out = machine.gen(&["list"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("no \"nvidia-caps\" character device"), "{err}");
    assert!(err.contains("nv_cap_enable_devfs=1"), "{err}");
}

#[test]
fn nvml_problems_say_what_to_do() {
    if !need_root() {
        return;
    }
    let machine = FakeMachine::new("h200");
    let out = std::process::Command::new(e2e::bin("mig-cdi-gen"))
        .arg("--root")
        .arg(&machine.root)
        .args(["--nvml-lib", "/nonexistent/libnvidia-ml.so.1", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot load /nonexistent/libnvidia-ml.so.1"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--nvml-lib"));

    let out = machine
        .gen_command(&["list"])
        .env_remove("NVML_SIM_MACHINE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("driver is not loaded"),
        "{}",
        stderr(&out)
    );
}

/// `mig-minors` is read only where some GPU is in MIG mode: on a real
/// driver it costs ~5 ms per read, and a node without MIG needs none of it.
#[test]
fn mig_minors_is_needed_only_with_mig_on() {
    if !need_root() {
        return;
    }
    let off = FakeMachine::new("h200");
    fs::remove_file(off.root.join("proc/driver/nvidia-caps/mig-minors")).unwrap();
    assert_eq!(device_lines(&list_json(&off)), vec![whole_gpu("0", 0)]);

    let on = FakeMachine::new("h200-mig");
    let table = on.root.join("proc/driver/nvidia-caps/mig-minors");
    fs::remove_file(&table).unwrap();
    let out = on.gen(&["list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&table.display().to_string()),
        "{}",
        stderr(&out)
    );
}
