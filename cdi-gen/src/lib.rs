//! mig-cdi-gen as a library: the binary (`main.rs`) only parses the command
//! line and prints errors; benchmarks and tests reach the same code here.
//!
//! Modules import one way only, from the command line down to the
//! hardware (`tests/module_graph.rs` keeps it so):
//!
//! - `cli` picks the command: `list`, `generate`, `validate`,
//!   `docker_args`, `doctor`, `completions`, `man`, one module each; no
//!   command imports another (`completions` and `man` get the clap command
//!   from `cli` as an argument), except `watch`, which is `generate` in a
//!   loop and builds on its `Generator` (plus `signals`, its flags set by
//!   SIGHUP/SIGTERM/SIGINT).
//! - Below them: `args` (flags several commands share), `exit` (exit
//!   statuses), `render` (the checked spec, for `generate` and
//!   `docker_args`), `atomic_write` and `mknod` (the only writers).
//! - `discover` (NVML + /proc + /dev, read only), and under it `nvml`.

pub mod args;
pub mod atomic_write;
pub mod cli;
pub mod completions;
pub mod discover;
pub mod docker_args;
pub mod doctor;
pub mod exit;
pub mod generate;
pub mod list;
pub mod log;
pub mod man;
pub mod mknod;
pub mod nvml;
pub mod render;
pub mod signals;
pub mod validate;
pub mod watch;
