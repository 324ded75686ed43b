//! mig-cdi-gen: the node's NVIDIA GPUs and MIG devices, as Container Device
//! Interface specs.
//!
//! `main` only parses the command line, runs one subcommand and prints the
//! error chain once; each subcommand lives in its own module.

use std::process::ExitCode;

use clap::Parser;
use mig_cdi_gen::{cli, exit};

fn main() -> ExitCode {
    reuse_freed_memory();
    let cli = cli::Cli::parse();
    match cli.run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mig-cdi-gen: {}", exit::error_line(&err));
            ExitCode::from(exit::EXIT_ERROR)
        }
    }
}

/// Let the allocator reuse what a run frees instead of faulting in fresh
/// pages for every large table.
///
/// glibc serves a block above its mmap threshold (128 KiB at start) with a
/// fresh mapping, unmapped again on free, and trims the heap when more
/// than 128 KiB is free at its top; a run that builds and drops a few
/// large tables (the driver's mig-minors, the schema compiler's, regex's
/// UTF-8 map) takes a page fault for each page, each time. Freeing one
/// large block raises both thresholds (glibc's dynamic threshold,
/// mallopt(3)), after which freed memory is reused: ~80 of ~385 page
/// faults of `generate` on a one-GPU node. Costs one fault and two system
/// calls; elsewhere than glibc, nothing.
fn reuse_freed_memory() {
    let block: Vec<u8> = Vec::with_capacity(8 << 20);
    drop(std::hint::black_box(block));
}
