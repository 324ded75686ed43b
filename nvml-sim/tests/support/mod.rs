//! Paths the nvml-sim tests share: the example machines, the real H200
//! snapshot and the built simulated library.
#![allow(dead_code)]

use std::path::PathBuf;

/// The `nvml-sim/` folder.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `examples/machines/<name>` of the workspace.
pub fn machine_file(name: &str) -> PathBuf {
    crate_dir().join("../examples/machines").join(name)
}

/// The real H200 driver snapshot (`shared/fixtures/driver/h200-580.159.04`).
pub fn snapshot_dir() -> PathBuf {
    let dir = crate_dir().join("../../shared/fixtures/driver/h200-580.159.04");
    assert!(
        dir.is_dir(),
        "the real H200 snapshot is missing at {}",
        dir.display()
    );
    dir
}

/// The simulated library built by this same cargo run.
///
/// `cargo test -p nvml-sim` builds the package's library with all its crate
/// types before its tests, so the cdylib lands in `target/<profile>/deps/`,
/// next to the test executables (it is only copied up to
/// `target/<profile>/` by `cargo build`). Look there first, then one level
/// up for a test binary started by hand after `cargo build -p nvml-sim`.
pub fn library_path() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    let deps = exe.parent().expect("test executable has a folder");
    let candidates = [
        Some(deps.join(nvml_sim::LIBRARY_FILE_NAME)),
        deps.parent().map(|p| p.join(nvml_sim::LIBRARY_FILE_NAME)),
    ];
    candidates
        .iter()
        .flatten()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{} not found next to {} or one folder up: run the tests with \
                 `cargo test -p nvml-sim`, or build the library first with \
                 `cargo build -p nvml-sim` (same profile and target dir)",
                nvml_sim::LIBRARY_FILE_NAME,
                exe.display()
            )
        })
}
