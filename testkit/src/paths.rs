//! Where the files the tests read are. Each package's tests used to find
//! them from their own `CARGO_MANIFEST_DIR`, each with its own number of
//! `..`; here every path starts from the repository root (this crate's
//! parent folder), so a test anywhere in the workspace names a machine
//! description or a fixture the same way.

use std::path::{Path, PathBuf};

/// The real H200 driver snapshot (driver 580.159.04, MIG disabled) in
/// `shared/` beside the repository, read-only. A literal, so that a test
/// can put it in an expected message; [`h200_snapshot`] checks it is there.
pub const H200_SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/driver/h200-580.159.04"
);

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ lives in the repository root")
        .to_path_buf()
}

/// `examples/machines/`: the shipped machine descriptions.
pub fn machines_dir() -> PathBuf {
    repo_root().join("examples/machines")
}

/// A shipped machine description, `examples/machines/<name>.json`.
pub fn machine_file(name: &str) -> PathBuf {
    let path = machines_dir().join(format!("{name}.json"));
    assert!(path.exists(), "no machine description {}", path.display());
    path
}

/// `shared/` beside the repository: fixtures and the official CDI schema
/// (read-only).
pub fn shared_dir() -> PathBuf {
    repo_root().join("../shared")
}

/// The real H200 driver snapshot ([`H200_SNAPSHOT`]), which must be there.
pub fn h200_snapshot() -> PathBuf {
    let dir = PathBuf::from(H200_SNAPSHOT);
    assert!(
        dir.is_dir(),
        "the real H200 snapshot is missing at {}",
        dir.display()
    );
    dir
}

/// `target/<profile>`: where cargo put this test's binaries.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf()
}
