//! mig-cdi-hook as a library: the binary (`main.rs`) only parses the
//! command line, picks the real kernel and prints an error as one line;
//! benchmarks and tests reach the same decision path here.
//!
//! A pipeline of typed stages ([`run`]): [`input`] (state, config,
//! request) → [`resolve`] (spec folders, one-device rule) → [`verify`]
//! (live driver, privileges) → [`plan`] → [`inject`] through [`kernel`],
//! the one module that changes anything. Every read goes through
//! [`host::Host`]; both seams have public in-memory doubles
//! ([`host::fake`], [`kernel::recording`]).

pub mod alloc;
pub mod cdi_check;
pub mod cgroupfs;
pub mod cli;
pub mod config;
pub mod container;
pub mod error;
pub mod host;
pub mod inject;
pub mod input;
pub mod kernel;
pub mod lease;
pub mod log;
pub mod plan;
pub mod request;
pub mod resolve;
pub mod run;
pub mod runtime;
pub mod state;
pub mod verify;
