//! `man`: manual pages in roff, generated from the clap definitions: one
//! page for the whole tool on stdout, or with `--dir DIR` one page per
//! command (`mig-cdi-gen.1`, `mig-cdi-gen-generate.1`, ...). The command
//! line comes from `cli`; nothing here imports it back.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write one page per command into DIR (created if missing), e.g.
    /// /usr/local/share/man/man1, instead of the main page to stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The main page, roff.
pub fn page(cmd: clap::Command) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .context("rendering the manual page")?;
    Ok(out)
}

pub fn run(args: &ManArgs, cmd: clap::Command) -> Result<ExitCode> {
    match &args.dir {
        None => {
            let bytes = page(cmd)?;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&bytes)
                .and_then(|()| stdout.flush())
                .context("writing the manual page to stdout")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("writing manual pages into {}", dir.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
