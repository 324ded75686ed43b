//! mig-cdi-hook as a library: the binary (`main.rs`) only parses the
//! command line, picks the real kernel and prints an error as one line;
//! benchmarks and tests reach the same decision path here.
//!
//! Data flows one way: state on stdin -> config.json -> request -> one
//! resolved device -> checks -> [`plan::InjectionPlan`] -> [`kernel`], the
//! one module that changes anything.

pub mod bundle;
pub mod cgroupfs;
pub mod cli;
pub mod config;
pub mod error;
pub mod fresh;
pub mod inject;
pub mod kernel;
pub mod log;
pub mod plan;
pub mod request;
pub mod run;
pub mod spec;
pub mod state;
