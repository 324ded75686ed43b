//! Property, through the simulator: any machine description the simulator
//! accepts gives, via the real `mig-cdi-gen generate`, a spec that passes
//! the schema and the CDI rules, names every device the description
//! defines, declares no more than Podman 4.3 reads, and has the same bytes
//! when the description lists its GPU and compute instances in another
//! order. Random descriptions come from a seeded generator over the
//! simulator's own profile tables; the seed of a failure is printed.

use mig_cdi_core::cdi::{self, CdiVersion, Format, SchemaValidator};
use mig_cdi_testkit::e2e::FakeMachine;
use mig_cdi_testkit::rng::Rng;
use nvml_sim::profiles::Model;
use serde_json::{json, Value};

const MODELS: [(&str, Model); 3] = [
    ("A100-SXM4-80GB", Model::A100Sxm4_80Gb),
    ("H100-80GB-HBM3", Model::H100_80GbHbm3),
    ("H200", Model::H200),
];

/// A random description and the number of devices it defines.
fn random_machine(rng: &mut Rng) -> (Value, usize) {
    let count = 1 + rng.below(4) as usize;
    let mut minors: Vec<u32> = (0..8).collect();
    rng.shuffle(&mut minors);
    let mut gpus = Vec::new();
    let mut devices = 0;
    for (i, &minor) in minors.iter().take(count).enumerate() {
        let (model_name, model) = *rng.pick(&MODELS);
        let uuid = format!(
            "GPU-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            rng.next() as u32,
            rng.next() as u16,
            rng.next() as u16,
            rng.next() as u16,
            rng.next() & 0xffff_ffff_ffff
        );
        let mode = *rng.pick(&["enabled", "enabled", "disabled", "unsupported"]);
        let mut gpu = json!({
            "model": model_name,
            "minor": minor,
            "pciBusId": format!("0000:{:02x}:00.0", 0x10 + 0x10 * i),
            "uuid": uuid,
            "migMode": mode,
        });
        if mode != "enabled" {
            devices += 1;
            gpus.push(gpu);
            continue;
        }
        let mut used = [false; 8];
        let mut instances = Vec::new();
        for _ in 0..rng.below(7) {
            let profile = rng.pick(model.profiles());
            let start = *rng.pick(profile.placements);
            let span = profile.span(start);
            if span.clone().any(|s| used[s as usize]) {
                continue;
            }
            span.for_each(|s| used[s as usize] = true);
            let mut gi = json!({"profile": profile.name, "placement": start});
            match rng.below(4) {
                0 if profile.slices >= 2 => {
                    gi["computeInstances"] = json!([
                        {"slices": 1, "placement": 0},
                        {"slices": 1, "placement": 1}
                    ]);
                    devices += 2;
                }
                1 => gi["computeInstances"] = json!([]),
                _ => devices += 1,
            }
            instances.push(gi);
        }
        gpu["gpuInstances"] = Value::Array(instances);
        gpus.push(gpu);
    }
    let machine = json!({"driverVersion": "580.159.04", "cudaVersion": "13.0", "gpus": gpus});
    (machine, devices)
}

/// The same machine with its instances listed in another order.
fn reordered(machine: &Value, rng: &mut Rng) -> Value {
    let mut copy = machine.clone();
    for gpu in copy["gpus"].as_array_mut().unwrap() {
        if let Some(instances) = gpu.get_mut("gpuInstances").and_then(Value::as_array_mut) {
            rng.shuffle(instances);
            for gi in instances.iter_mut() {
                if let Some(cis) = gi.get_mut("computeInstances").and_then(Value::as_array_mut) {
                    cis.reverse();
                }
            }
        }
    }
    copy
}

#[test]
fn any_accepted_machine_gives_a_valid_deterministic_spec() {
    let schema = SchemaValidator::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut accepted, mut tried) = (0, 0);
    for seed in 1..=400u64 {
        if accepted == 40 {
            break;
        }
        tried += 1;
        let mut rng = Rng::from_seed(seed);
        let (machine, devices) = random_machine(&mut rng);
        let text = machine.to_string();
        if nvml_sim::Machine::from_json(&text).is_err() {
            continue;
        }
        accepted += 1;
        let path = dir.path().join(format!("machine-{seed}.json"));
        std::fs::write(&path, &text).unwrap();
        let fake = FakeMachine::from_file(&path);
        let out = fake.gen(&["generate"]);
        if devices == 0 {
            assert_eq!(out.status.code(), Some(2), "seed {seed}: {text}");
            continue;
        }
        assert!(
            out.status.success(),
            "seed {seed}: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        let checked = cdi::check_document(&out.stdout, Format::Json, &schema);
        assert!(checked.is_valid(), "seed {seed}: {:#?}", checked.problems);
        let spec = checked.spec.unwrap();
        assert_eq!(spec.devices.len(), 2 * devices, "seed {seed}: {text}");
        let version = CdiVersion::parse(&spec.cdi_version).unwrap();
        assert!(version <= CdiVersion::PODMAN_4_3_MAX, "seed {seed}");

        let shuffled = reordered(&machine, &mut rng);
        let path = dir.path().join(format!("machine-{seed}-reordered.json"));
        std::fs::write(&path, shuffled.to_string()).unwrap();
        let again = FakeMachine::from_file(&path).gen_ok(&["generate"]);
        assert!(
            again.as_bytes() == out.stdout,
            "seed {seed}: reordering the description changed the spec\n{text}"
        );
    }
    eprintln!("{accepted} of {tried} random machines accepted by the simulator");
    assert!(
        accepted >= 20,
        "only {accepted} of {tried} random machines accepted"
    );
}
