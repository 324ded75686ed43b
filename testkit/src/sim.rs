//! The NVML simulator's own tests load the simulated library in process,
//! the way mig-cdi loads the real one, before any `cargo build` has put it
//! in `target/<profile>/`: this module finds the one cargo built for the
//! running test, and the simulator's folder. (The machines and the H200
//! snapshot they compare against are in [`crate::paths`].)

use std::path::PathBuf;

use crate::paths::repo_root;

/// The `nvml-sim/` folder.
pub fn crate_dir() -> PathBuf {
    repo_root().join("nvml-sim")
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
