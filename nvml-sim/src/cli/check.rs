//! `check`: validate a machine and list it like `nvidia-smi -L`.

use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;

use nvml_sim::fakeroot::{ci_access_minor, gi_access_minor};
use nvml_sim::machine::MigState;
use nvml_sim::Machine;

/// The listing for the machine at `path`.
pub fn run(path: &Path) -> Result<String, Box<dyn Error>> {
    let machine = Machine::load(path)?;
    let mut out = String::new();
    writeln!(
        out,
        "driver {} (CUDA {}.{}), {} GPUs",
        machine.driver_version(),
        machine.cuda_version().0,
        machine.cuda_version().1,
        machine.gpus().len()
    )?;
    for gpu in machine.gpus() {
        let mig = match gpu.mig() {
            MigState::Unsupported => "MIG unsupported".to_owned(),
            MigState::Supported { current, pending } => format!(
                "MIG {}{}",
                on_off(current),
                if current == pending {
                    String::new()
                } else {
                    format!(" (pending {})", on_off(pending))
                }
            ),
        };
        writeln!(
            out,
            "GPU {}: {} (UUID: {}) minor {} bus {} {}",
            gpu.index(),
            gpu.name(),
            gpu.uuid(),
            gpu.minor(),
            gpu.pci(),
            mig
        )?;
        for slot in 0..gpu.max_mig_devices() {
            match gpu.mig_device(slot) {
                Some(mig) => writeln!(
                    out,
                    "  MIG {:<12} Device {slot}: (UUID: {}) GI {} CI {} caps {}/{}",
                    mig.profile_name(),
                    mig.compute_instance.uuid(),
                    mig.gpu_instance.id(),
                    mig.compute_instance.id(),
                    gi_access_minor(gpu.minor(), mig.gpu_instance.id()),
                    ci_access_minor(
                        gpu.minor(),
                        mig.gpu_instance.id(),
                        mig.compute_instance.id()
                    ),
                )?,
                None => writeln!(out, "  (slot {slot} empty)")?,
            }
        }
    }
    Ok(out)
}

fn on_off(on: bool) -> &'static str {
    if on {
        "enabled"
    } else {
        "disabled"
    }
}
