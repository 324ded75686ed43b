//! `--log FILE`: a debug trail of what the hook read, decided and did.
//!
//! Off by default (stderr carries only the one-line error). Each line is
//! prefixed with the hook's pid, so interleaved runs can be told apart, and
//! the time since the trail was opened, so a slow step shows.
//! Failing to write the trail never fails the hook.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::HookError;

pub struct Log {
    file: Option<File>,
    start: std::time::Instant,
}

impl Log {
    /// No trail.
    pub fn none() -> Self {
        Self {
            file: None,
            start: std::time::Instant::now(),
        }
    }

    /// Append to `path` (created 0600 if missing).
    pub fn open(path: &Path) -> Result<Self, HookError> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| HookError::Io {
                op: "open the log",
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            file: Some(file),
            start: std::time::Instant::now(),
        })
    }

    pub fn line(&mut self, args: fmt::Arguments<'_>) {
        if let Some(file) = &mut self.file {
            let micros = self.start.elapsed().as_micros();
            let _ = writeln!(
                file,
                "mig-cdi-hook[{}] +{micros}us: {args}",
                std::process::id()
            );
        }
    }
}
