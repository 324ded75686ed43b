//! The command line: which command runs, with which flags. Parsing only;
//! each command's flags and work live in its own module, the flags several
//! commands share in [`crate::args`], and nothing here is imported back.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::args::HostArgs;
use crate::{docker_args, generate, list, validate};

#[derive(Debug, Parser)]
#[command(
    name = "mig-cdi-gen",
    version,
    about = "Enumerate NVIDIA GPUs and MIG devices and describe them for containers",
    long_about = "Enumerate NVIDIA GPUs and MIG devices through NVML and the driver's /proc \
tables, check the device nodes each one needs, and describe them for container runtimes.\n\n\
Exit status: 0 success, 2 error."
)]
pub struct Cli {
    #[command(flatten)]
    pub host: HostArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List GPUs, MIG devices and the device nodes each needs.
    List(list::ListArgs),
    /// Write the CDI spec for the node's MIG devices and MIG-disabled GPUs.
    Generate(generate::GenerateArgs),
    /// Check CDI spec files (any vendor's) against the schema and CDI rules.
    Validate(validate::ValidateArgs),
    /// Print the `--device` flags that give a plain `docker run` / `podman
    /// run` the same nodes as a CDI device.
    DockerArgs(docker_args::DockerArgsArgs),
}

impl Cli {
    /// Run the command; its exit status, or the error to print.
    pub fn run(&self) -> Result<ExitCode> {
        match &self.command {
            Command::List(args) => list::run(&self.host, args),
            Command::Generate(args) => generate::run(&self.host, args),
            Command::Validate(args) => validate::run(args),
            Command::DockerArgs(args) => docker_args::run(&self.host, args),
        }
    }
}
