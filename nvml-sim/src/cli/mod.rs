//! Command line: syntax first ([`parse`], no I/O), then one module per
//! subcommand.

mod check;
mod make_root;

use std::error::Error;
use std::io::{self, Write};
use std::path::PathBuf;

/// `--help` text.
pub const HELP: &str = "\
mig-cdi-sim: the NVML simulator's companion tool

USAGE:
    mig-cdi-sim make-root [--no-nodes] [--overwrite] MACHINE.json DIR
    mig-cdi-sim check MACHINE.json
    mig-cdi-sim --help

COMMANDS:
    make-root   Write the driver's /proc tables and /dev nodes for MACHINE.json
                under DIR (DIR/proc/..., DIR/dev/...). DIR must be empty or
                absent unless --overwrite. Device nodes need root; --no-nodes
                skips them.
    check       Validate MACHINE.json and list its GPUs and MIG devices the
                way `nvidia-smi -L` does, with GI/CI ids and capability minors.

The simulated libnvidia-ml.so (libnvml_sim.so, built by `cargo build -p
nvml-sim`) serves the machine named by the NVML_SIM_MACHINE environment
variable.

EXIT STATUS:
    0 success, 1 error, 2 bad usage";

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Print help.
    Help,
    /// Build a fake root.
    MakeRoot {
        machine: PathBuf,
        root: PathBuf,
        nodes: bool,
        overwrite: bool,
    },
    /// Validate and list.
    Check { machine: PathBuf },
}

/// Parses arguments (without the program name). Errors are usage messages.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let Some((first, rest)) = args.split_first() else {
        return Err("missing command".to_owned());
    };
    match first.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "make-root" => {
            let mut nodes = true;
            let mut overwrite = false;
            let mut positional = Vec::new();
            for arg in rest {
                match arg.as_str() {
                    "--no-nodes" => nodes = false,
                    "--overwrite" => overwrite = true,
                    "-h" | "--help" => return Ok(Command::Help),
                    flag if flag.starts_with('-') => {
                        return Err(format!("unknown option {flag:?} for make-root"))
                    }
                    _ => positional.push(PathBuf::from(arg)),
                }
            }
            let [machine, root]: [PathBuf; 2] = positional
                .try_into()
                .map_err(|_| "make-root takes MACHINE.json and DIR".to_owned())?;
            Ok(Command::MakeRoot {
                machine,
                root,
                nodes,
                overwrite,
            })
        }
        "check" => match rest {
            [machine] if !machine.starts_with('-') => Ok(Command::Check {
                machine: PathBuf::from(machine),
            }),
            _ => Err("check takes MACHINE.json".to_owned()),
        },
        other => Err(format!("unknown command {other:?}")),
    }
}

/// Runs a parsed command and prints its output (a closed stdout, as with
/// `| head`, is not an error).
pub fn run(command: Command) -> Result<(), Box<dyn Error>> {
    let output = match command {
        Command::Help => format!("{HELP}\n"),
        Command::MakeRoot {
            machine,
            root,
            nodes,
            overwrite,
        } => make_root::run(&machine, &root, nodes, overwrite)?,
        Command::Check { machine } => check::run(&machine)?,
    };
    match io::stdout().lock().write_all(output.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
