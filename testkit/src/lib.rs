//! Test support for the whole workspace, in one crate: the tests of
//! `core`, `cdi-gen` and `nvml-sim` and the end-to-end suite under
//! `tests/` dev-depend on it, so a helper is written once and a path means
//! the same folder whichever package cargo runs the test from.
//!
//! - [`paths`]: the repository, the shipped machines, the shared fixtures.
//! - [`e2e`]: the built binaries, simulated machines, host checks.
//! - [`doctor`]: `mig-cdi-gen doctor` scenarios and their golden reports.
//! - [`hook`]: the hook's simulated MIG machine, OCI bundles, podman runs.
//! - [`inventory`]: hand-built inventories for the CDI tests.
//! - [`sim`]: the simulated library for the NVML simulator's own tests.
//! - [`rng`]: the seeded generator of the property tests.
//!
//! `core` and `nvml-sim` dev-depend on this crate, which depends on them:
//! cargo allows that cycle for integration tests (`tests/*.rs`), which
//! link the same `mig_cdi_core` and `nvml_sim` as this crate. Their unit
//! tests must not use it: there the crate under test is another crate than
//! the one this crate links, and its types would not match.

pub mod doctor;
pub mod driver_libs;
pub mod e2e;
pub mod hook;
pub mod inventory;
pub mod paths;
pub mod rng;
pub mod sim;
