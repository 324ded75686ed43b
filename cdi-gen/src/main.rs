//! mig-cdi-gen: the node's NVIDIA GPUs and MIG devices, as Container Device
//! Interface specs.
//!
//! `main` only parses the command line, runs one subcommand and prints the
//! error chain once; each subcommand lives in its own module.

mod atomic_write;
mod cli;
mod discover;
mod docker_args;
mod generate;
mod list;
mod mknod;
mod nvml;
mod validate;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mig-cdi-gen: {err:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
