//! Command-line surface: raw flags first, then validated settings.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::discover::{self, DiscoverOptions};
use crate::list;

/// Exit status for an error (bad input, driver problem, write failure).
pub const EXIT_ERROR: u8 = 2;

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

/// Where the driver lives.
#[derive(Debug, Clone, Args)]
pub struct HostArgs {
    /// Host root under which /proc and /dev are read (for tests and chroots).
    #[arg(long, global = true, default_value = "/", value_name = "DIR")]
    pub root: PathBuf,
    /// NVML library to load.
    #[arg(long, global = true, default_value = crate::nvml::DEFAULT_LIB, value_name = "PATH")]
    pub nvml_lib: OsString,
    /// Root the driver's /dev lives under on the host, when not / (e.g.
    /// /run/nvidia/driver); specs then name it in hostPath.
    #[arg(long, global = true, default_value = "/", value_name = "DIR")]
    pub dev_root: PathBuf,
    /// Create missing GPU-instance and compute-instance capability nodes
    /// under /dev/nvidia-caps (mknod, with the driver's mode). Nothing else
    /// is ever created.
    #[arg(long, global = true)]
    pub create_device_nodes: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List GPUs, MIG devices and the device nodes each needs.
    List(ListArgs),
    /// Write the CDI spec for the node's MIG devices and MIG-disabled GPUs.
    Generate(crate::generate::GenerateArgs),
    /// Check CDI spec files (any vendor's) against the schema and CDI rules.
    Validate(crate::validate::ValidateArgs),
    /// Print the `--device` flags that give a plain `docker run` / `podman
    /// run` the same nodes as a CDI device.
    DockerArgs(crate::docker_args::DockerArgsArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// List the GPU-instance profiles of each GPU (like `nvidia-smi mig -lgip`).
    #[arg(long)]
    pub profiles: bool,
}

impl Cli {
    pub fn run(&self) -> Result<ExitCode> {
        let options = DiscoverOptions {
            root: self.host.root.clone(),
            dev_root: self.host.dev_root.clone(),
            nvml_lib: self.host.nvml_lib.clone(),
            create_device_nodes: self.host.create_device_nodes,
        };
        match &self.command {
            Command::List(args) => {
                let found = discover::discover(&options)?;
                list::run(&found, args)?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Generate(args) => crate::generate::run(&options, args),
            Command::Validate(args) => crate::validate::run(args),
            Command::DockerArgs(args) => crate::docker_args::run(&options, args),
        }
    }
}
