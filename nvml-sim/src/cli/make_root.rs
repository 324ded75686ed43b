//! `make-root`: write the fake driver root for a machine.

use std::error::Error;
use std::path::Path;

use nvml_sim::fakeroot::{self, BuildOptions, Entry};
use nvml_sim::Machine;

/// Builds the root and returns a one-line summary.
pub fn run(
    machine: &Path,
    root: &Path,
    nodes: bool,
    overwrite: bool,
) -> Result<String, Box<dyn Error>> {
    let machine = Machine::load(machine)?;
    let entries = fakeroot::build(&machine, root, &BuildOptions { nodes, overwrite })?;
    let files = entries
        .iter()
        .filter(|e| matches!(e, Entry::File { .. }))
        .count();
    let devices = entries
        .iter()
        .filter(|e| matches!(e, Entry::CharDevice { .. }))
        .count();
    Ok(format!(
        "wrote {files} files and {devices} device nodes for {} GPUs under {}\n",
        machine.gpus().len(),
        root.display()
    ))
}
