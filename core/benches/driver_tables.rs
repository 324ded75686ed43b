//! Parsing the driver's tables: the real H200 mig-minors (4322 lines, read
//! by the generator and by the hook on every container start) and the whole
//! snapshot root.

use std::path::{Path, PathBuf};

use mig_cdi_core::driver::{parse_mig_minors, DriverTables};

fn snapshot() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/driver/h200-580.159.04")
}

fn main() {
    divan::main();
}

#[divan::bench]
fn parse_real_h200_mig_minors(bencher: divan::Bencher) {
    let path = snapshot().join("proc/driver/nvidia-caps/mig-minors");
    let text = std::fs::read(&path).expect("the H200 snapshot beside the repository");
    bencher
        .counter(divan::counter::BytesCount::new(text.len()))
        .bench(|| parse_mig_minors(divan::black_box(&text[..]), &path).expect("parses"));
}

#[divan::bench]
fn load_real_h200_tables() -> DriverTables {
    DriverTables::load(divan::black_box(&snapshot())).expect("loads")
}
