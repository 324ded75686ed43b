//! mig-cdi-gen: the node's NVIDIA GPUs and MIG devices, as Container Device
//! Interface specs.
//!
//! `main` only parses the command line, runs one subcommand and prints the
//! error chain once; each subcommand lives in its own module.

use std::process::ExitCode;

use clap::Parser;
use mig_cdi_gen::{cli, exit};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mig-cdi-gen: {}", exit::error_line(&err));
            ExitCode::from(exit::EXIT_ERROR)
        }
    }
}
