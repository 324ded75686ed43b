//! A simulated NVIDIA driver for tests: a `libnvidia-ml.so` stand-in and
//! the /proc and /dev tree that goes with it, both driven by one machine
//! description.
//!
//! mig-cdi enumerates GPUs and MIG devices through NVML and the driver's
//! /proc tables. Tests cannot count on real GPUs, so this crate plays the
//! driver: the `cdylib` build of this crate (`libnvml_sim.so`) exports the
//! NVML C functions mig-cdi calls and answers from the machine named by
//! `NVML_SIM_MACHINE`; [`fakeroot::build`] writes the matching
//! `proc/driver/nvidia*`, `proc/devices` and `dev/nvidia*` under a
//! directory. Loading goes through the same code path as the real driver
//! (`Nvml::builder().lib_path(..)`), so what passes here passes against the
//! real library unless the real library behaves differently from what the
//! module docs below document.
//!
//! * [`description`]: the JSON machine format (see `nvml-sim/README.md`).
//! * [`machine`]: a validated [`Machine`]: ids, UUIDs and slots resolved.
//! * [`profiles`]: the boards' MIG profile tables and placement rules,
//!   with their sources.
//! * [`fakeroot`]: the /proc and /dev tree.
//! * `sim` and `ffi` (private): the NVML answers and the C exports.

pub mod description;
pub mod fakeroot;
pub mod machine;
pub mod profiles;

mod ffi;
mod sim;
mod sys;

pub use description::MachineDescription;
pub use machine::{Machine, MachineError};
pub use sim::MACHINE_ENV;

/// File name of the simulated library as cargo builds it.
pub const LIBRARY_FILE_NAME: &str = "libnvml_sim.so";
