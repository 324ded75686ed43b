//! `completions SHELL`: the shell completion script, generated from the
//! clap definitions, so a new subcommand or flag completes without edits.
//! The command line comes from `cli`; nothing here imports it back.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use clap_complete::Shell;

/// The shells a script is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

impl CompletionShell {
    fn shell(self) -> Shell {
        match self {
            CompletionShell::Bash => Shell::Bash,
            CompletionShell::Zsh => Shell::Zsh,
            CompletionShell::Fish => Shell::Fish,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell: bash (source it, or install as
    /// /usr/share/bash-completion/completions/mig-cdi-gen), zsh (as
    /// `_mig-cdi-gen` in a folder of $fpath), fish (as
    /// ~/.config/fish/completions/mig-cdi-gen.fish).
    pub shell: CompletionShell,
}

/// The script for `shell`, completing `cmd`.
pub fn script(shell: CompletionShell, cmd: &mut clap::Command) -> Vec<u8> {
    let name = cmd.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(shell.shell(), cmd, name, &mut out);
    out
}

/// Write the script to stdout.
pub fn run(args: &CompletionsArgs, mut cmd: clap::Command) -> Result<ExitCode> {
    let bytes = script(args.shell, &mut cmd);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&bytes)
        .and_then(|()| stdout.flush())
        .context("writing the completion script to stdout")?;
    Ok(ExitCode::SUCCESS)
}
