//! Test support for the whole workspace, in one crate: the tests of
//! `core`, `cdi-gen` and `nvml-sim` and the end-to-end suite under
//! `tests/` dev-depend on it, so a helper is written once and a path means
//! the same folder whichever package cargo runs the test from.
//!
//! - [`paths`]: the repository, the shipped machines, the shared fixtures.
//! - [`e2e`]: the built binaries, simulated machines, host checks.
//! - [`hook`]: the hook's simulated MIG machine, OCI bundles, podman runs.
//! - [`inventory`]: hand-built inventories for the CDI tests.
//!
//! `core` dev-depends on this crate, which depends on `core`: cargo allows
//! that cycle for integration tests (`core/tests/*.rs`), which link the
//! same `mig_cdi_core` as this crate. Unit tests inside `core` must not use
//! it: there `mig_cdi_core` is the crate under test, another crate than
//! the one this crate links, and its types would not match.

pub mod e2e;
pub mod hook;
pub mod inventory;
pub mod paths;
