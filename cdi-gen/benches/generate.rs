//! snapshot -> spec: everything `mig-cdi-gen generate` does after NVML has
//! answered — plan the nodes, render the spec, check it against the rules
//! and the embedded schema, serialise it — for the simulated 8-GPU and
//! 32-GPU machines with 7 MIG devices each. The snapshot is taken once,
//! through the real NVML code path and the simulator.

use std::path::{Path, PathBuf};

use mig_cdi_core::cdi::{self, Format, RenderOptions, SchemaValidator};
use mig_cdi_core::driver::DriverTables;
use mig_cdi_core::nodes;
use mig_cdi_core::snapshot::Snapshot;
use mig_cdi_gen::discover::Discovery;
use mig_cdi_gen::nvml;
use mig_cdi_gen::render::render_checked;

fn main() {
    divan::main();
}

struct Machine {
    _dir: tempfile::TempDir,
    snapshot: Snapshot,
    tables: DriverTables,
}

fn sim_lib() -> PathBuf {
    let exe = std::env::current_exe().expect("bench executable");
    let deps = exe.parent().expect("target/<profile>/deps");
    [deps.join("libnvml_sim.so"), deps.join("../libnvml_sim.so")]
        .into_iter()
        .find(|p| p.exists())
        .expect("libnvml_sim.so is not built: run `cargo build --release -p nvml-sim` first")
}

/// Fake /proc of `bench/machines/<name>.json` and its NVML snapshot.
fn machine(name: &str) -> Machine {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bench/machines")
        .join(format!("{name}.json"));
    let desc = nvml_sim::Machine::load(&file).expect("machine description");
    let dir = tempfile::tempdir().expect("temp dir");
    let options = nvml_sim::fakeroot::BuildOptions {
        nodes: false,
        ..Default::default()
    };
    nvml_sim::fakeroot::build(&desc, dir.path(), &options).expect("fake root");
    std::env::set_var(nvml_sim::MACHINE_ENV, &file);
    let snapshot =
        nvml::take_snapshot(sim_lib().as_os_str(), nvml::Reads::default()).expect("snapshot");
    let tables = DriverTables::load(dir.path()).expect("tables");
    Machine {
        _dir: dir,
        snapshot,
        tables,
    }
}

fn options() -> RenderOptions {
    // The default naming: index and uuid names.
    RenderOptions::default()
}

fn snapshot_to_spec(bencher: divan::Bencher, name: &str) {
    let m = machine(name);
    let schema = SchemaValidator::new().expect("schema");
    let render = options();
    bencher.bench_local(|| {
        let inventory = nodes::plan(&m.snapshot, &m.tables).expect("plan");
        let found = Discovery {
            snapshot: m.snapshot.clone(),
            inventory,
            driver_version: m.tables.version.clone(),
            host_issues: Vec::new(),
            dropped_management: Vec::new(),
        };
        render_checked(&found, &render, Format::Json, &schema)
            .expect("valid spec")
            .bytes
    });
}

#[divan::bench]
fn snapshot_to_spec_8_gpus_x7(bencher: divan::Bencher) {
    snapshot_to_spec(bencher, "bench-8x7");
}

#[divan::bench]
fn snapshot_to_spec_32_gpus_x7(bencher: divan::Bencher) {
    snapshot_to_spec(bencher, "bench-32x7");
}

/// Compiling the embedded CDI schema: paid once per `generate` run.
#[divan::bench]
fn compile_cdi_schema() -> SchemaValidator {
    SchemaValidator::new().expect("schema")
}

/// Render alone (pure), for the 32-GPU machine.
#[divan::bench]
fn render_only_32_gpus_x7(bencher: divan::Bencher) {
    let m = machine("bench-32x7");
    let inventory = nodes::plan(&m.snapshot, &m.tables).expect("plan");
    let render = options();
    bencher.bench_local(|| cdi::render(divan::black_box(&inventory), &render));
}
