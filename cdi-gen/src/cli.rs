//! The command line: which command runs, with which flags. Parsing only;
//! each command's flags and work live in its own module, the flags several
//! commands share in [`crate::args`], and nothing here is imported back.

use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

use crate::args::{self, HostArgs};
use crate::{completions, docker_args, doctor, generate, list, man, validate, watch};

#[derive(Debug, Parser)]
#[command(
    name = "mig-cdi-gen",
    version,
    about = "Enumerate NVIDIA GPUs and MIG devices and describe them for containers",
    long_about = "Enumerate NVIDIA GPUs and MIG devices through NVML and the driver's /proc \
tables, check the device nodes each one needs, and describe them for container runtimes.\n\n\
Exit status: 0 success, 2 error (doctor and generate --check: 1 when they find problems or drift)."
)]
pub struct Cli {
    #[command(flatten)]
    pub host: HostArgs,
    /// `mig-cdi-gen --create-device-nodes generate`: the position the flag
    /// had when it was global. An option of `generate` now; refused before
    /// any other command.
    #[arg(long = "create-device-nodes", hide = true)]
    pub create_device_nodes: bool,
    /// Say what was read and decided on stderr (-vv: the details; also
    /// RUST_LOG=info|debug). Quiet by default: warnings and errors only.
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
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
    /// Check every prerequisite of MIG in containers, read only, and say
    /// how to fix each problem.
    Doctor(doctor::DoctorArgs),
    /// Write the spec like generate --output FILE, then keep it current as
    /// MIG devices come and go (polls the driver; SIGHUP regenerates).
    Watch(watch::WatchArgs),
    /// Print a shell completion script (bash, zsh, fish).
    Completions(completions::CompletionsArgs),
    /// Print the manual page (roff), or write one per command with --dir.
    Man(man::ManArgs),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::List(_) => "list",
            Command::Generate(_) => "generate",
            Command::Validate(_) => "validate",
            Command::DockerArgs(_) => "docker-args",
            Command::Doctor(_) => "doctor",
            Command::Watch(_) => "watch",
            Command::Completions(_) => "completions",
            Command::Man(_) => "man",
        }
    }
}

impl Cli {
    /// Run the command; its exit status, or the error to print.
    pub fn run(&self) -> Result<ExitCode> {
        crate::log::init(crate::log::level_from(
            self.verbose,
            std::env::var("RUST_LOG").ok().as_deref(),
        ));
        if self.create_device_nodes && !matches!(self.command, Command::Generate(_)) {
            return Err(args::refuse_create_device_nodes(self.command.name()));
        }
        match &self.command {
            Command::List(args) => list::run(&self.host, args),
            Command::Generate(args) => {
                let mut args = args.clone();
                args.create_device_nodes |= self.create_device_nodes;
                generate::run(&self.host, &args)
            }
            Command::Validate(args) => validate::run(args),
            Command::DockerArgs(args) => docker_args::run(&self.host, args),
            Command::Doctor(args) => doctor::run(&self.host, args),
            Command::Watch(args) => watch::run(&self.host, args),
            Command::Completions(args) => completions::run(args, Cli::command()),
            Command::Man(args) => man::run(args, Cli::command()),
        }
    }
}
