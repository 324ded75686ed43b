//! `mig-cdi-sim`: validate machine descriptions and build fake driver roots.
//!
//! `main` only parses the command line and dispatches to one file per
//! subcommand under `cli/`.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match cli::parse(&args) {
        Ok(command) => match cli::run(command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("mig-cdi-sim: {err}");
                ExitCode::from(1)
            }
        },
        Err(usage) => {
            eprintln!("mig-cdi-sim: {usage}\n\n{}", cli::HELP);
            ExitCode::from(2)
        }
    }
}
