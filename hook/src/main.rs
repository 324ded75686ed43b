//! mig-cdi-hook: an OCI prestart/createRuntime hook that gives a container
//! exactly one MIG device — after checking that it may have it and that
//! nothing else leaks in — for runtimes and setups without CDI.
//!
//! Data flows one way: state on stdin -> config.json -> request -> one
//! resolved device -> checks -> [`plan::InjectionPlan`] -> [`kernel`], the
//! one module that changes anything. `main` only parses the command line,
//! picks the real kernel, and prints an error as one line.
//!
//! The binary is linked statically (see `build.rs`) and reads nothing from
//! its own environment: loader variables cannot inject code into it.

use std::io::Read;
use std::process::ExitCode;

use mig_cdi_hook::cli::{self, Action, Settings};
use mig_cdi_hook::error::HookError;
use mig_cdi_hook::host::RealHost;
use mig_cdi_hook::input::MAX_CONFIG_BYTES;
use mig_cdi_hook::{bundle, kernel, log, run};

fn main() -> ExitCode {
    let mut log = log::Log::none();
    match start(&mut log) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log.line(format_args!("refused: {err}"));
            eprintln!("mig-cdi-hook: {err}");
            ExitCode::FAILURE
        }
    }
}

fn start(log: &mut log::Log) -> Result<(), HookError> {
    let settings = Settings::from_args(std::env::args_os().skip(1).collect())?;
    match settings.action {
        Action::Help => {
            print!("{}", cli::HELP);
            return Ok(());
        }
        Action::Version => {
            println!("mig-cdi-hook {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        Action::Run | Action::AddToBundle(_) => {}
    }
    if let Some(path) = &settings.log {
        *log = log::Log::open(path)?;
    }
    if let Action::AddToBundle(bundle) = &settings.action {
        let exe = std::env::current_exe().map_err(|source| HookError::Io {
            op: "locate",
            path: "/proc/self/exe".into(),
            source,
        })?;
        bundle::add_to_bundle(&RealHost::new(&settings.root), bundle, &settings, &exe, log)?;
        return Ok(());
    }
    let mut stdin = Vec::new();
    std::io::stdin()
        .take(MAX_CONFIG_BYTES)
        .read_to_end(&mut stdin)
        .map_err(|source| HookError::Io {
            op: "read the OCI state from",
            path: "stdin".into(),
            source,
        })?;
    let host = RealHost::new(&settings.root);
    let mut kernel = kernel::RealKernel::new();
    run::run(&settings, &stdin, &host, &mut kernel, log).map(|_| ())
}
