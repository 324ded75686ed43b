//! mig-cdi-gen as a library: the binary (`main.rs`) only parses the command
//! line and prints errors; benchmarks and tests reach the same code here.

pub mod atomic_write;
pub mod cli;
pub mod discover;
pub mod docker_args;
pub mod generate;
pub mod list;
pub mod mknod;
pub mod nvml;
pub mod validate;
