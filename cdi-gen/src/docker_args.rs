//! Placeholder: implemented by the CDI work.

use std::process::ExitCode;

use anyhow::{bail, Result};

#[derive(Debug, clap::Args)]
pub struct DockerArgsArgs {}

pub fn run(
    _options: &crate::discover::DiscoverOptions,
    _args: &DockerArgsArgs,
) -> Result<ExitCode> {
    bail!("not implemented yet")
}
