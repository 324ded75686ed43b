//! mig-cdi-core: the pure heart of mig-cdi.
//!
//! Both binaries share one picture of the node: a [`snapshot::Snapshot`] of
//! what NVML reported, the driver's `/proc` tables ([`driver`]), and the
//! device nodes each GPU or MIG device needs ([`nodes`]). Nothing here links
//! NVML, calls into the kernel beyond reading files under a host root, or
//! uses `unsafe`: the binaries do that at their edges.
#![forbid(unsafe_code)]

pub mod cdi;
pub mod cgroup;
pub mod driver;
pub mod driver_files;
pub mod elf;
pub mod fsread;
pub mod ldcache;
pub mod nodes;
pub mod paths;
pub mod snapshot;
