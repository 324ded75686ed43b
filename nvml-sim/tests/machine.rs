//! Machine descriptions a real driver could not show are refused with a
//! message that says what is wrong; the example machines all load.

use mig_cdi_testkit::paths::machines_dir;
use mig_cdi_testkit::sim;
use nvml_sim::machine::{GpuProblem, MachineError};
use nvml_sim::Machine;
use serde_json::{json, Value};

const UUID: &str = "GPU-00000000-0000-0000-0000-000000000001";

fn machine_with(gpu: Value) -> Value {
    json!({ "driverVersion": "580.159.04", "cudaVersion": "13.0", "gpus": [gpu] })
}

fn h200(mig_mode: Value, gpu_instances: Value) -> Value {
    machine_with(json!({
        "model": "H200", "minor": 0, "pciBusId": "0000:00:06.0", "uuid": UUID,
        "migMode": mig_mode, "gpuInstances": gpu_instances
    }))
}

fn load(value: &Value) -> Result<Machine, MachineError> {
    Machine::from_json(&value.to_string())
}

fn problem(value: &Value) -> GpuProblem {
    match load(value) {
        Err(MachineError::Gpu { problem, .. }) => problem,
        other => panic!("expected a GPU problem, got {other:?}"),
    }
}

#[test]
fn example_machines_load() {
    for name in ["a100x8.json", "h100x4.json", "h200.json", "h200-mig.json"] {
        let machine = Machine::load(&machines_dir().join(name)).unwrap();
        assert!(!machine.gpus().is_empty(), "{name}");
    }
}

#[test]
fn overlapping_placements_are_refused() {
    let p = problem(&h200(
        json!("enabled"),
        json!([{ "profile": "3g.71gb", "placement": 0 }, { "profile": "2g.35gb", "placement": 2 }]),
    ));
    assert!(matches!(p, GpuProblem::GpuInstancesOverlap { .. }), "{p}");
    assert_eq!(
        p.to_string(),
        "GPU instances overlap: 3g.71gb@0 and 2g.35gb@2"
    );
}

#[test]
fn placements_the_profile_does_not_allow_are_refused() {
    for (profile, start) in [
        ("2g.35gb", 6),
        ("3g.71gb", 2),
        ("4g.71gb", 4),
        ("1g.35gb", 1),
        ("1g.18gb", 7),
    ] {
        let p = problem(&h200(
            json!("enabled"),
            json!([{ "profile": profile, "placement": start }]),
        ));
        assert!(
            matches!(p, GpuProblem::PlacementNotAllowed { .. }),
            "{profile}@{start}: {p}"
        );
    }
}

#[test]
fn too_many_instances_of_a_profile_are_refused() {
    let p = problem(&h200(
        json!("enabled"),
        json!([{ "profile": "1g.18gb+me", "placement": 0 }, { "profile": 20, "placement": 1 }]),
    ));
    assert_eq!(
        p,
        GpuProblem::TooManyInstances {
            profile: "1g.18gb+me".into(),
            max: 1
        }
    );
}

#[test]
fn compute_instances_larger_than_their_gi_are_refused() {
    let p = problem(&h200(
        json!("enabled"),
        json!([{ "profile": "2g.35gb", "placement": 0, "computeInstances": [{ "slices": 3 }] }]),
    ));
    assert_eq!(
        p,
        GpuProblem::ComputeInstanceTooLarge {
            gi: 3,
            slices: 3,
            gi_slices: 2
        }
    );
}

#[test]
fn overlapping_or_misplaced_compute_instances_are_refused() {
    let overlap = problem(&h200(
        json!("enabled"),
        json!([{ "profile": "3g.71gb", "placement": 0, "computeInstances": [
            { "slices": 2, "placement": 0 }, { "slices": 1, "placement": 1 }
        ] }]),
    ));
    assert!(
        matches!(
            overlap,
            GpuProblem::ComputeInstancesOverlap { gi: 1, slice: 1 }
        ),
        "{overlap}"
    );
    let misplaced = problem(&h200(
        json!("enabled"),
        json!([{ "profile": "3g.71gb", "placement": 4, "computeInstances": [{ "slices": 2, "placement": 1 }] }]),
    ));
    assert!(
        matches!(
            misplaced,
            GpuProblem::ComputePlacementNotAllowed { gi: 2, .. }
        ),
        "{misplaced}"
    );
}

#[test]
fn instances_need_mig_enabled_now() {
    let p = problem(&h200(
        json!({ "current": "disabled", "pending": "enabled" }),
        json!([{ "profile": "7g.141gb", "placement": 0 }]),
    ));
    assert_eq!(p, GpuProblem::InstancesWithoutMig);
}

#[test]
fn gi_ids_may_be_given_but_must_fit_the_tree() {
    // A published A100-SXM4-80GB listing (driver 550.54.14) shows 3g.40gb at
    // 4:4 as GI 1 and 4g.40gb at 0:4 as GI 2; a description can say so.
    let a100 = |gis: Value| {
        machine_with(json!({
            "model": "A100-SXM4-80GB", "minor": 0, "pciBusId": "0000:3f:00.0", "uuid": UUID,
            "migMode": "enabled", "gpuInstances": gis
        }))
    };
    let machine = load(&a100(json!([
        { "profile": "3g.40gb", "placement": 4, "id": 1 },
        { "profile": "4g.40gb", "placement": 0, "id": 2 }
    ])))
    .unwrap();
    let ids: Vec<u32> = machine.gpus()[0]
        .gpu_instances()
        .iter()
        .map(|gi| gi.id())
        .collect();
    assert_eq!(ids, [1, 2]);

    let wrong_level = problem(&a100(
        json!([{ "profile": "1g.10gb", "placement": 0, "id": 3 }]),
    ));
    assert!(
        matches!(wrong_level, GpuProblem::BadGpuInstanceId { id: 3, .. }),
        "{wrong_level}"
    );
    let clash = problem(&a100(json!([
        { "profile": "3g.40gb", "placement": 0, "id": 2 },
        { "profile": "3g.40gb", "placement": 4 }
    ])));
    assert!(
        matches!(clash, GpuProblem::GpuInstanceIdClash { .. }),
        "{clash}"
    );
}

#[test]
fn mig_slots_must_be_free_and_below_seven() {
    let p = problem(&h200(
        json!("enabled"),
        json!([
            { "profile": "1g.18gb", "placement": 0, "computeInstances": [{ "migIndex": 3 }] },
            { "profile": "1g.18gb", "placement": 1, "computeInstances": [{ "migIndex": 3 }] }
        ]),
    ));
    assert_eq!(p, GpuProblem::BadMigIndex(3));
    let p = problem(&h200(
        json!("enabled"),
        json!([{ "profile": "1g.18gb", "placement": 0, "computeInstances": [{ "migIndex": 7 }] }]),
    ));
    assert_eq!(p, GpuProblem::BadMigIndex(7));
}

#[test]
fn identity_fields_are_checked() {
    let gpu = |model: &str, uuid: &str, bus: &str| {
        machine_with(json!({
            "model": model, "minor": 0, "pciBusId": bus, "uuid": uuid, "migMode": "disabled"
        }))
    };
    assert!(matches!(
        problem(&gpu("V100", UUID, "0000:01:00.0")),
        GpuProblem::UnknownModel(_)
    ));
    assert!(matches!(
        problem(&gpu(
            "H200",
            "GPU-ABCDEF00-0000-0000-0000-000000000000",
            "0000:01:00.0"
        )),
        GpuProblem::BadUuid(_)
    ));
    assert!(matches!(
        problem(&gpu("H200", UUID, "01:00.0")),
        GpuProblem::BadPciBusId(_)
    ));
}

#[test]
fn gpus_must_be_in_pci_order_with_unique_minors_and_uuids() {
    let gpu = |minor: u32, bus: &str, uuid: &str| json!({ "model": "H200", "minor": minor, "pciBusId": bus, "uuid": uuid, "migMode": "disabled" });
    let two = |a: Value, b: Value| json!({ "driverVersion": "580.159.04", "cudaVersion": "13.0", "gpus": [a, b] });
    let other = "GPU-00000000-0000-0000-0000-000000000002";
    let err = load(&two(
        gpu(0, "0000:02:00.0", UUID),
        gpu(1, "0000:01:00.0", other),
    ))
    .unwrap_err();
    assert!(err.to_string().contains("PCI bus order"), "{err}");
    let err = load(&two(
        gpu(0, "0000:01:00.0", UUID),
        gpu(0, "0000:02:00.0", other),
    ))
    .unwrap_err();
    assert!(
        matches!(
            err,
            MachineError::Duplicate {
                what: "GPU minor",
                ..
            }
        ),
        "{err}"
    );
    let err = load(&two(
        gpu(0, "0000:01:00.0", UUID),
        gpu(1, "0000:02:00.0", UUID),
    ))
    .unwrap_err();
    assert!(
        matches!(err, MachineError::Duplicate { what: "UUID", .. }),
        "{err}"
    );
}

#[test]
fn unknown_fields_and_bad_versions_are_refused() {
    let mut value = h200(json!("disabled"), json!([]));
    value["gpus"][0]["migmode"] = json!("enabled");
    assert!(matches!(load(&value), Err(MachineError::Parse { .. })));
    let mut value = h200(json!("disabled"), json!([]));
    value["cudaVersion"] = json!("thirteen");
    assert!(matches!(load(&value), Err(MachineError::Machine(_))));
}

#[test]
fn errors_name_the_file() {
    let err = Machine::load(std::path::Path::new("/nonexistent/machine.json")).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/machine.json"),
        "{err}"
    );
}

#[test]
fn the_readme_example_is_a_valid_machine() {
    let readme = std::fs::read_to_string(sim::crate_dir().join("README.md")).unwrap();
    let start = readme.find("```json\n").expect("a json block") + "```json\n".len();
    let len = readme[start..].find("```").unwrap();
    let machine = Machine::from_json(&readme[start..start + len]).unwrap();
    let gpu = &machine.gpus()[0];
    assert_eq!(gpu.mig_device(5).unwrap().profile_name(), "1c.3g.71gb");
    assert_eq!(gpu.gpu_instances()[2].compute_instances().len(), 0);
}

#[test]
fn boards_without_mig_take_no_mig_mode() {
    let l40s = |mode: Value| {
        machine_with(json!({
            "model": "L40S", "minor": 0, "pciBusId": "0000:00:06.0", "uuid": UUID,
            "migMode": mode
        }))
    };
    let machine = load(&l40s(json!("unsupported"))).unwrap();
    assert_eq!(machine.gpus()[0].name(), "NVIDIA L40S");
    let p = problem(&l40s(json!("disabled")));
    assert!(matches!(p, GpuProblem::NoMigOnBoard(_)), "{p}");
    assert_eq!(
        p.to_string(),
        "L40S has no MIG: its migMode must be \"unsupported\""
    );
    let p = problem(&machine_with(json!({
        "model": "H300", "minor": 0, "pciBusId": "0000:00:06.0", "uuid": UUID,
        "migMode": "enabled"
    })));
    assert!(p.to_string().contains("L40S"), "the known models: {p}");
}

#[test]
fn planted_faults_must_name_nodes_of_the_machine() {
    let mut value = h200(
        json!("enabled"),
        json!([{ "profile": "1g.18gb", "placement": 0 }]),
    );
    // GI 7 of minor 0: capability minors 66 (GI) and 67 (CI 0).
    value["fakeRoot"] = json!({
        "capabilityModel": "devfs",
        "missingNodes": ["/dev/nvidia-caps/nvidia-cap66"],
        "wrongNodes": [{ "path": "/dev/nvidia-caps/nvidia-cap67", "major": 241, "minor": 76 }]
    });
    let machine = load(&value).unwrap();
    assert_eq!(machine.fake_root().missing_nodes.len(), 1);
    value["fakeRoot"]["missingNodes"] = json!(["/dev/nvidia-caps/nvidia-cap75"]);
    let err = load(&value).unwrap_err().to_string();
    assert!(
        err.contains("fakeRoot names /dev/nvidia-caps/nvidia-cap75, which is not a node"),
        "{err}"
    );
    value["fakeRoot"] = json!({ "capabilityModel": "sysfs" });
    assert!(load(&value).is_err());
}
