//! `mig-cdi-gen doctor`: every prerequisite of MIG in containers, checked
//! in one read-only run, each problem with the command or setting that
//! fixes it — instead of learning each one from a failure.
//!
//! Three stages, as elsewhere in this tool: gather the facts
//! ([`facts`]: one NVML snapshot with what only doctor reads, the driver's
//! tables, every node examined on the host, the spec files and what
//! `generate` would write, boot units, processes, runtime configuration;
//! [`host`] for the last three), check them ([`checks`]: pure functions
//! from facts to findings), print them ([`report`]: text or JSON). Nothing
//! is created or changed, not even with `--create-device-nodes` (refused),
//! and only NVML getters are called.

mod checks;
mod facts;
mod host;
mod report;
mod requirements;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use mig_cdi_core::cdi::folders::DEFAULT_SPEC_DIRS;
use mig_cdi_core::cdi::SchemaValidator;
use mig_cdi_core::paths;

pub use report::{Finding, Report, Severity};

use crate::args::{self, HostArgs, NamingArgs};
use crate::exit::EXIT_PROBLEMS;

#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Checks, read only: the driver and each GPU's minimum driver and CUDA for MIG; MIG mode (disabled, \
a change pending a reset, no GPU instances, GPU instances without compute instances); a boot unit \
that restores MIG and regenerates the spec; the capability model (/dev/nvidia-caps, not /proc) \
and every device node; the CDI spec (readable, valid, current, not defined twice) and the \
runtimes that read its cdiVersion; processes holding /dev/nvidia*; where the hook or the runtime \
wrapper is configured. Spec folders, units, hooks.d and runtime configurations are read under \
--root; processes from <root>/proc when it is a procfs, else from /proc, counting only files \
under the root's /dev.\n\n\
Exit status: 0 healthy (no warning, no error), 1 problems found, 2 doctor could not run.")]
pub struct DoctorArgs {
    #[command(flatten)]
    pub naming: NamingArgs,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
    /// Spec folder to check, lowest priority first; repeat for several
    /// (default: <root>/etc/cdi then <root>/var/run/cdi).
    #[arg(long = "spec-dir", value_name = "DIR")]
    pub spec_dirs: Vec<PathBuf>,
    /// Refused: doctor never changes the host.
    #[arg(long, hide = true)]
    pub create_device_nodes: bool,
}

pub fn run(host: &HostArgs, args: &DoctorArgs) -> Result<ExitCode> {
    if args.create_device_nodes {
        return Err(args::refuse_create_device_nodes("doctor"));
    }
    args.naming.check()?;
    host.host_path_root()?;
    let spec_dirs = if args.spec_dirs.is_empty() {
        DEFAULT_SPEC_DIRS
            .iter()
            .map(|d| paths::under(&host.root, d))
            .collect()
    } else {
        args.spec_dirs.clone()
    };
    let settings = facts::Settings {
        host: host.clone(),
        vendor: args.naming.vendor.clone(),
        class: args.naming.class.clone(),
        spec_dirs,
    };
    let schema = SchemaValidator::new()?;
    let facts = facts::gather(settings, &schema);
    let report = Report::new(checks::check(&facts));
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        report.text()
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to standard output")?;
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PROBLEMS)
    })
}
