//! The NVML floor program (`examples/nvml_floor.rs`, timed beside
//! `generate` by bench/h200-floor.sh) reads the same GPUs as `mig-cdi-gen`,
//! through the simulator here.

use std::process::Command;

use mig_cdi_testkit::e2e::{sim_lib, FakeMachine};
use mig_cdi_testkit::paths::{machine_file, target_dir};

#[test]
fn the_floor_sees_the_gpus_list_sees() {
    let machine = FakeMachine::new("a100x8");
    let floor = target_dir().join("examples/nvml_floor");
    assert!(
        floor.exists(),
        "{} is not built; run `cargo build --workspace --all-targets` first",
        floor.display()
    );
    let out = Command::new(&floor)
        .arg("--nvml-lib")
        .arg(sim_lib())
        .env("NVML_SIM_MACHINE", machine_file("a100x8"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value =
        serde_json::from_str(&machine.gen_ok(&["list", "--json"])).unwrap();
    let mut expected: Vec<(u64, String)> = Vec::new();
    for gpu in list["gpus"].as_array().unwrap() {
        let mig = match &gpu["mig"] {
            serde_json::Value::Null => "not supported",
            m if m["current"] == true => "enabled",
            _ => "disabled",
        };
        let line = format!(
            "{} {} minor {} MIG {mig}",
            gpu["index"],
            gpu["uuid"].as_str().unwrap(),
            gpu["minor"]
        );
        expected.push((gpu["index"].as_u64().unwrap(), line));
    }
    expected.sort();
    let expected: Vec<String> = expected.into_iter().map(|(_, l)| l).collect();
    let mut actual: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    actual.sort_by_key(|l| l.split(' ').next().unwrap().parse::<u64>().unwrap());
    assert_eq!(actual, expected);

    let out = Command::new(&floor)
        .args(["--nvml-lib", "/nonexistent/libnvidia-ml.so.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/libnvidia-ml.so.1"));
}
