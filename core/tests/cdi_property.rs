//! Property: any inventory `nodes::plan` could produce renders into a spec
//! that passes the schema and the rules, reads back the same from JSON and
//! YAML, declares no more than Podman 4.3 reads, and has the same bytes
//! whatever order the GPUs, MIG devices and nodes were enumerated in.
//!
//! A small seeded generator (xorshift, the testkit's `Rng`) keeps the test
//! deterministic and dependency-free; a failure prints the seed to replay.

use mig_cdi_core::cdi::{self, format, render, CdiVersion, Format, NameStrategy, RenderOptions};
use mig_cdi_core::nodes::{Inventory, NodeRole};
use mig_cdi_testkit::inventory::*;
use mig_cdi_testkit::rng::Rng;

fn random_inventory(rng: &mut Rng) -> Inventory {
    let gpus = 1 + rng.below(8) as u32;
    let mut minors: Vec<u32> = (0..16).collect();
    rng.shuffle(&mut minors);
    let mut devices = Vec::new();
    for index in 0..gpus {
        let minor = minors[index as usize];
        if rng.below(2) == 0 {
            devices.push(gpu(index, minor, &rng.uuid("GPU")));
            continue;
        }
        // MIG mode: up to 7 MIG devices, unique (gi, ci), slots with gaps.
        let count = rng.below(8) as u32;
        let mut slot = 0;
        for _ in 0..count {
            slot += 1 + rng.below(2) as u32;
            let gi = 1 + slot;
            let ci = rng.below(8) as u32;
            devices.push(mig(index, minor, slot, gi, ci, &rng.uuid("MIG")));
        }
    }
    let mut control_nodes = control_nodes();
    if rng.below(2) == 0 {
        control_nodes.push(node(
            "/dev/nvidia-modeset",
            NVIDIA,
            254,
            0o666,
            NodeRole::Control,
        ));
    }
    Inventory {
        control_nodes,
        devices,
        mig_management: Vec::new(),
    }
}

fn random_options(rng: &mut Rng) -> RenderOptions {
    let mut strategies: Vec<NameStrategy> = NameStrategy::ALL
        .into_iter()
        .filter(|_| rng.below(2) == 0)
        .collect();
    if strategies.is_empty() {
        strategies = NameStrategy::DEFAULT.to_vec();
    }
    rng.shuffle(&mut strategies);
    RenderOptions {
        strategies,
        dev_root: (rng.below(3) == 0).then(|| "/run/nvidia/driver".to_string()),
        ..RenderOptions::default()
    }
}

#[test]
fn random_inventories_give_valid_deterministic_specs() {
    let schema = cdi::SchemaValidator::new().unwrap();
    for seed in 1..=300u64 {
        let mut rng = Rng::from_seed(seed);
        let inventory = random_inventory(&mut rng);
        let options = random_options(&mut rng);
        let spec = render(&inventory, &options);
        if inventory.devices.is_empty() {
            assert!(!cdi::rules::check_spec(&spec).is_empty(), "seed {seed}");
            continue;
        }
        for format in [Format::Json, Format::Yaml] {
            let bytes = format::to_bytes(&spec, format).unwrap();
            let checked = cdi::check_document(&bytes, format, &schema);
            assert!(
                checked.is_valid(),
                "seed {seed} {format:?}: {:#?}",
                checked.problems
            );
            assert_eq!(checked.spec.as_ref(), Some(&spec), "seed {seed} {format:?}");
            assert!(checked.notes.is_empty(), "seed {seed}: {:?}", checked.notes);

            let mut shuffled = inventory.clone();
            rng.shuffle(&mut shuffled.devices);
            rng.shuffle(&mut shuffled.control_nodes);
            for device in &mut shuffled.devices {
                rng.shuffle(&mut device.nodes);
            }
            let again = format::to_bytes(&render(&shuffled, &options), format).unwrap();
            assert!(
                again == bytes,
                "seed {seed} {format:?}: order changed the bytes"
            );
        }
        let declared = CdiVersion::parse(&spec.cdi_version).unwrap();
        assert_eq!(declared, cdi::min_version(&spec), "seed {seed}");
        assert!(declared <= CdiVersion::PODMAN_4_3_MAX, "seed {seed}");
    }
}
