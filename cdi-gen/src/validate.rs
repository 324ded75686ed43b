//! Placeholder: implemented by the CDI work.

use std::process::ExitCode;

use anyhow::{bail, Result};

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {}

pub fn run(_args: &ValidateArgs) -> Result<ExitCode> {
    bail!("not implemented yet")
}
