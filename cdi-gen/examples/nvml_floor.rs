//! The NVML floor under `mig-cdi-gen generate`: load NVML, initialise it,
//! read each GPU's UUID, minor number and MIG mode, shut it down — the
//! least any tool that names a node's GPUs must do, through the same
//! library and the same nvml-wrapper calls as `cdi-gen/src/nvml.rs`, and
//! nothing else. `bench/h200-floor.sh` times it beside `generate`, so the
//! difference is what the generator adds (driver tables, node checks,
//! render, schema check, output).
//!
//! ```text
//! cargo build --release -p mig-cdi-gen --example nvml_floor
//! target/release/examples/nvml_floor [--nvml-lib PATH]
//! ```
//!
//! Prints one line per GPU; exit status 0, or 2 with the error on stderr.

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;

const USAGE: &str = "usage: nvml_floor [--nvml-lib PATH]  (default libnvidia-ml.so.1)";

fn main() -> ExitCode {
    match args().and_then(|lib| floor(&lib)) {
        Ok(lines) => {
            print!("{lines}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("nvml_floor: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// The NVML library to load: `--nvml-lib PATH`, as `mig-cdi-gen` takes it.
fn args() -> Result<OsString> {
    let mut lib = OsString::from(mig_cdi_gen::nvml::DEFAULT_LIB);
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--nvml-lib") => lib = args.next().ok_or_else(|| anyhow!("{USAGE}"))?,
            Some(s) if s.starts_with("--nvml-lib=") => lib = s["--nvml-lib=".len()..].into(),
            Some("-h" | "--help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => bail!("unexpected argument {arg:?}; {USAGE}"),
        }
    }
    Ok(lib)
}

/// Init, one UUID, minor number and MIG mode per GPU, shutdown.
fn floor(lib: &OsString) -> Result<String> {
    let nvml = Nvml::builder()
        .lib_path(lib)
        .init()
        .with_context(|| format!("cannot initialise NVML from {}", lib.to_string_lossy()))?;
    let count = nvml.device_count().context("nvmlDeviceGetCount failed")?;
    let mut lines = String::new();
    for index in 0..count {
        let device = nvml
            .device_by_index(index)
            .with_context(|| format!("nvmlDeviceGetHandleByIndex({index}) failed"))?;
        let uuid = device.uuid().context("nvmlDeviceGetUUID failed")?;
        let minor = device
            .minor_number()
            .context("nvmlDeviceGetMinorNumber failed")?;
        let mig = match device.mig_mode() {
            Ok(mode) if mode.current == 1 => "enabled",
            Ok(_) => "disabled",
            Err(NvmlError::NotSupported) => "not supported",
            Err(e) => return Err(e).context("nvmlDeviceGetMigMode failed"),
        };
        lines.push_str(&format!("{index} {uuid} minor {minor} MIG {mig}\n"));
    }
    nvml.shutdown().context("nvmlShutdown failed")?;
    Ok(lines)
}
