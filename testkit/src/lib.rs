//! Test support for the whole workspace, in one crate: the tests of
//! `core`, `cdi-gen` and `nvml-sim` and the end-to-end suite under
//! `tests/` dev-depend on it, so a helper is written once and a path means
//! the same folder whichever package cargo runs the test from.
//!
//! - [`paths`]: the repository, the shipped machines, the shared fixtures.
//! - [`e2e`]: the built binaries, simulated machines, host checks.
//! - [`hook`]: the hook's simulated MIG machine, OCI bundles, podman runs.

pub mod e2e;
pub mod hook;
pub mod paths;
