//! mig-cdi-hook on what mig-cdi-gen really writes: a simulated machine
//! (mig-cdi-sim's fake driver root, the NVML simulator), `mig-cdi-gen
//! generate` into a spec directory, then every MIG device of that spec,
//! requested by each of its names, injected by the hook under runc. The
//! container must get exactly the spec's nodes (device and control nodes)
//! with the spec's modes, each allowed (ENXIO).

use std::collections::BTreeMap;
use std::path::Path;

use mig_cdi_testkit::e2e as support;
use mig_cdi_testkit::hook::*;
use serde_json::Value;

/// A spec node: path, major, minor, fileMode.
type Node = (String, u32, u32, u32);

/// (names, nodes incl. control nodes) of the spec's MIG devices, one entry
/// per distinct node set.
fn mig_devices(spec: &Value) -> Vec<(Vec<String>, Vec<Node>)> {
    let node = |n: &Value| -> Node {
        (
            n["path"].as_str().unwrap().to_string(),
            n["major"].as_u64().unwrap() as u32,
            n["minor"].as_u64().unwrap() as u32,
            n["fileMode"].as_u64().unwrap() as u32,
        )
    };
    let control: Vec<_> = spec["containerEdits"]["deviceNodes"]
        .as_array()
        .map(|a| a.iter().map(node).collect())
        .unwrap_or_default();
    let mut groups: BTreeMap<Vec<Node>, Vec<String>> = BTreeMap::new();
    for device in spec["devices"].as_array().unwrap() {
        let mut nodes: Vec<_> = device["containerEdits"]["deviceNodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(node)
            .collect();
        if !nodes.iter().any(|n| n.0.starts_with("/dev/nvidia-caps/")) {
            continue;
        }
        nodes.extend(control.iter().cloned());
        nodes.sort();
        groups
            .entry(nodes)
            .or_default()
            .push(device["name"].as_str().unwrap().to_string());
    }
    groups
        .into_iter()
        .map(|(nodes, names)| (names, nodes))
        .collect()
}

#[test]
fn every_generated_mig_device_by_every_name() {
    let machine = support::FakeMachine::new("h200-mig");
    let cdi = tempfile::tempdir().unwrap();
    let spec_file = cdi.path().join("nvidia.com-gpu.json");
    machine.gen_ok(&[
        "generate",
        "--no-driver-files",
        "--output",
        spec_file.to_str().unwrap(),
    ]);
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(&spec_file).unwrap()).unwrap();
    let devices = mig_devices(&spec);
    assert!(
        devices.len() >= 2,
        "the h200-mig machine has several MIG devices: {devices:?}"
    );
    let state = tempfile::tempdir().unwrap();
    let args = vec![
        "--root".to_string(),
        machine.root.display().to_string(),
        "--spec-dir".to_string(),
        cdi.path().display().to_string(),
        "--state-dir".to_string(),
        state.path().display().to_string(),
    ];
    eprintln!(
        "devices by names: {:?}",
        devices.iter().map(|d| &d.0).collect::<Vec<_>>()
    );
    for (names, nodes) in &devices {
        let want: Vec<Want> = nodes
            .iter()
            .map(|(path, major, minor, mode)| Want {
                path: Box::leak(path.clone().into_boxed_str()),
                major: *major,
                minor: *minor,
                mode: *mode,
            })
            .collect();
        for name in names {
            let mut b = Bundle::new(Path::new(support::ROOTFS), PROBE);
            b.hook("createRuntime", &args);
            b.env(&format!("NVIDIA_VISIBLE_DEVICES={name}"));
            let ran = b.run(Runtime::Runc);
            ran.assert_ok();
            assert_exactly(&ran.stdout, &want);
        }
    }
    // Two of them at once: refused, naming both.
    let two = format!("{},{}", devices[0].0[0], devices[1].0[0]);
    let mut b = Bundle::new(Path::new(support::ROOTFS), PROBE);
    b.hook("createRuntime", &args);
    b.env(&format!("NVIDIA_VISIBLE_DEVICES={two}"));
    b.run(Runtime::Runc)
        .assert_refused("asks for 2 MIG devices");
}
