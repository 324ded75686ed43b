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

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::ExitCode;

use mig_cdi_hook::alloc;
use mig_cdi_hook::cli::{self, Action, Settings};
use mig_cdi_hook::error::HookError;
use mig_cdi_hook::host::RealHost;
use mig_cdi_hook::input::MAX_CONFIG_BYTES;
use mig_cdi_hook::lease::FileLedger;
use mig_cdi_hook::runtime::{self, Edited, Invocation};
use mig_cdi_hook::{kernel, log, run};

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let args: Vec<OsString> = args.collect();
    let called = Path::new(&argv0).file_name().unwrap_or_default();
    // `<argv[0]>.conf`, where the program was called by a path.
    let mut beside = argv0.clone();
    beside.push(".conf");
    let beside = Path::new(&argv0)
        .is_absolute()
        .then(|| std::path::PathBuf::from(beside));
    if called == "mig-cdi-runtime" {
        return runtime_main(args, beside);
    }
    if args.first().is_some_and(|a| a == "runtime") {
        return runtime_main(args[1..].to_vec(), beside);
    }
    let mut log = log::Log::none();
    match start(args, &mut log) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log.line(format_args!("refused: {err}"));
            eprintln!("mig-cdi-hook: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `mig-cdi-runtime`: edit the bundle for `create`/`run`, then become the
/// real runtime.
fn runtime_main(args: Vec<OsString>, beside: Option<std::path::PathBuf>) -> ExitCode {
    let invocation = match Invocation::parse(
        args,
        beside,
        |key| std::env::var_os(key),
        // A settings file: a regular file, bounded, never waited on.
        |path| {
            mig_cdi_core::fsread::read(path, 1 << 20)
                .ok()
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        },
    ) {
        Ok(invocation) => invocation,
        Err(err) => {
            eprintln!("mig-cdi-runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    if invocation.help {
        print!("{}", runtime::HELP);
        return ExitCode::SUCCESS;
    }
    let refuse = |err: &dyn std::fmt::Display| {
        let message = format!("mig-cdi-runtime: {err}");
        runtime::log_error(&invocation.runtime_log, &message);
        eprintln!("{message}");
        ExitCode::FAILURE
    };
    let real = match runtime::real_runtime(&invocation.settings.runtime, std::env::var_os("PATH")) {
        Ok(real) => real,
        Err(err) => return refuse(&err),
    };
    let settings = &invocation.settings;
    let mut ledger = FileLedger::new(&settings.state_dir);
    let mut log = match &settings.log {
        Some(path) => log::Log::open(path).unwrap_or_else(|_| log::Log::none()),
        None => log::Log::none(),
    };
    match (invocation.command.as_deref(), &invocation.container) {
        (Some("create" | "run"), container) => {
            let host = RealHost::new(&settings.root);
            let exe = std::env::current_exe().unwrap_or_default();
            let leasing = runtime::LeaseSettings {
                container: container.as_deref(),
                pid: std::process::id() as i32,
                share: settings.share,
                state_dir: &settings.state_dir,
                root: &settings.root,
                exe: &exe,
            };
            match runtime::edit_bundle(
                &host,
                &settings.spec_dirs,
                &invocation.bundle,
                &mut ledger,
                &leasing,
                &mut log,
            ) {
                Ok(Edited::Untouched(why)) => log.line(format_args!("{why}")),
                Ok(Edited::Device { name, nodes }) => {
                    log.line(format_args!("wrote {name} into the bundle: {nodes:?}"))
                }
                Err(err) => {
                    log.line(format_args!("refused: {err}"));
                    return refuse(&err);
                }
            }
        }
        // The container goes: so do its leases. A lease store that cannot
        // be changed never blocks a delete (the lease ends with its
        // process anyway).
        (Some("delete"), Some(id)) => match alloc::release(&mut ledger, id, None) {
            Ok(n) => log.line(format_args!("delete: released {n} lease(s) of {id}")),
            Err(err) => {
                let message = format!("mig-cdi-runtime: delete {id}: {err}");
                runtime::log_error(&invocation.runtime_log, &message);
                eprintln!("{message}");
            }
        },
        _ => {}
    }
    let err = std::process::Command::new(&real)
        .args(&invocation.args)
        .exec();
    refuse(&format!("cannot run {}: {err}", real.display()))
}

fn start(args: Vec<OsString>, log: &mut log::Log) -> Result<(), HookError> {
    let settings = Settings::from_args(args)?;
    match settings.action {
        Action::Help => {
            print!("{}", cli::HELP);
            return Ok(());
        }
        Action::Version => {
            println!("mig-cdi-hook {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        Action::Leases { json } => {
            let host = RealHost::new(&settings.root);
            let ledger = FileLedger::new(&settings.state_dir);
            print!("{}", run::leases(&host, &ledger, json)?);
            return Ok(());
        }
        Action::Run
        | Action::Verify
        | Action::Poststop
        | Action::CreateSymlinks(_)
        | Action::UpdateLdcache(_) => {}
    }
    if let Some(path) = &settings.log {
        *log = log::Log::open(path)?;
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
    let mut ledger = FileLedger::new(&settings.state_dir);
    match settings.action {
        Action::Verify => {
            return run::verify_config(&settings, &stdin, &host, &mut ledger, log).map(|_| ())
        }
        Action::Poststop => return run::poststop(&stdin, &mut ledger, log).map(|_| ()),
        _ => {}
    }
    let mut kernel = kernel::RealKernel::new();
    if matches!(
        settings.action,
        Action::CreateSymlinks(_) | Action::UpdateLdcache(_)
    ) {
        return run::container_stage(&settings, &stdin, &host, &mut kernel, log).map(|_| ());
    }
    run::run(&settings, &stdin, &host, &mut kernel, &mut ledger, log).map(|_| ())
}
