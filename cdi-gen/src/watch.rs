//! `mig-cdi-gen watch`: `generate --output FILE`, then keep FILE current
//! while GPU and compute instances come and go.
//!
//! The driver's procfs has no inotify, so the loop polls a fingerprint of
//! what the driver shows of its MIG state: the names and contents of every
//! file under `proc/driver/nvidia/capabilities/` (a GI's
//! `gpuN/mig/giG/access` and a CI's `giG/ciC/access` exist exactly while
//! the instance does; MIG mode off removes the GPU's `mig/` tree) and the
//! NVIDIA lines of `proc/devices`. Only when it changes — or at SIGHUP, or
//! every `--full-every` as a safety net for what the files do not show (a
//! MIG mode change with no instances) — is NVML read again (a fresh init)
//! and the spec regenerated, through `generate`'s own code; the file is
//! rewritten, atomically, only when its bytes change. A failed
//! regeneration keeps the last good file and is tried again at the next
//! poll. SIGTERM and SIGINT end the loop between writes (exit 0).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use mig_cdi_core::cdi::{diff, Spec};
use mig_cdi_core::fsread::{self, MAX_TABLE_BYTES};
use mig_cdi_core::paths;

use crate::args::HostArgs;
use crate::atomic_write::AtomicFile;
use crate::exit::error_line;
use crate::generate::{self, GenerateArgs, Generation, Generator};
use crate::signals;

#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = "\
Examples:\n  \
mig-cdi-gen watch --output /var/run/cdi/nvidia.com-gpu.json\n  \
mig-cdi-gen watch --interval 2 --full-every 300 --output /etc/cdi/nvidia.com-gpu.json\n\n\
SIGHUP regenerates at once; SIGTERM and SIGINT exit 0 with the file whole. \
Exit status: 0 after SIGTERM/SIGINT, 2 on a bad flag or a file that cannot be written.")]
pub struct WatchArgs {
    #[command(flatten)]
    pub generate: GenerateArgs,
    /// Seconds between two looks at the driver's capability files and
    /// /proc/devices (cheap: no NVML).
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = seconds)]
    pub interval: Duration,
    /// Seconds between two full regenerations through NVML, changed files
    /// or not (a MIG mode change with no instances shows in no file).
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = seconds)]
    pub full_every: Duration,
}

fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text}: not a number of seconds"))?;
    if !(0.01..=86400.0).contains(&value) {
        return Err(format!("{text}: give 0.01 to 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(value))
}

/// How long one sleep between looks at the flags lasts at most: a signal
/// is acted on within this.
const SLICE: Duration = Duration::from_millis(100);

/// What the driver shows of its MIG state, as bytes to compare: every
/// entry under `capabilities/` (path, then contents) and the NVIDIA lines
/// of `proc/devices`. What cannot be read goes in as its error, so a
/// change of that shows too.
pub fn fingerprint(root: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    walk(&paths::under(root, paths::CAPABILITIES), &mut out);
    out.extend_from_slice(b"\0proc/devices\0");
    match fsread::read(&paths::under(root, paths::PROC_DEVICES), MAX_TABLE_BYTES) {
        Ok(bytes) => {
            for line in bytes.split(|&b| b == b'\n') {
                if line.windows(6).any(|w| w == b"nvidia") {
                    out.extend_from_slice(line);
                    out.push(b'\n');
                }
            }
        }
        Err(e) => out.extend_from_slice(e.reason().as_bytes()),
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<u8>) {
    let mut entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.flatten().collect(),
        Err(e) => {
            out.extend_from_slice(format!("{}: {e}\0", dir.display()).as_bytes());
            return;
        }
    };
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        out.extend_from_slice(path.as_os_str().as_encoded_bytes());
        out.push(0);
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, out),
            Ok(t) if t.is_file() => match fsread::read(&path, MAX_TABLE_BYTES) {
                Ok(bytes) => out.extend_from_slice(&bytes),
                Err(e) => out.extend_from_slice(e.reason().as_bytes()),
            },
            _ => {}
        }
        out.push(0);
    }
}

/// One line saying what changed between two specs' devices.
fn change_line(old: &Spec, new: &Spec) -> String {
    let d = diff::diff(old, new);
    let mut parts = Vec::new();
    if !d.added.is_empty() {
        parts.push(format!("added {}", d.added.join(", ")));
    }
    if !d.removed.is_empty() {
        parts.push(format!("removed {}", d.removed.join(", ")));
    }
    if !d.changed.is_empty() {
        let names: Vec<&str> = d.changed.iter().map(|c| c.name.as_str()).collect();
        parts.push(format!("changed {}", names.join(", ")));
    }
    if !d.spec.is_empty() {
        parts.push(format!("spec {}", d.spec.join(", ")));
    }
    if parts.is_empty() {
        parts.push("same devices, new layout".into());
    }
    parts.join("; ")
}

/// The loop's memory: what is on disk (as written by us) and when NVML was
/// last read.
struct State {
    path: PathBuf,
    written: Option<(Spec, Vec<u8>)>,
    fingerprint: Option<Vec<u8>>,
    last_full: Option<Instant>,
    last_error: Option<String>,
    last_warnings: Vec<String>,
}

impl State {
    /// Regenerate; write when the bytes differ from the file's.
    fn regenerate(&mut self, generator: &mut Generator) {
        let mut warnings = Vec::new();
        let result = generator.once(&mut |w| warnings.push(w));
        if warnings != self.last_warnings {
            for warning in &warnings {
                eprintln!("mig-cdi-gen: warning: {warning}");
            }
            self.last_warnings = warnings;
        }
        match result.and_then(|generation| self.write(generation)) {
            Ok(()) => {
                if self.last_error.take().is_some() {
                    eprintln!("mig-cdi-gen: watch: regeneration works again");
                }
            }
            Err(err) => {
                // Try again at the next poll, whatever the fingerprint.
                self.fingerprint = None;
                // One line, even for a message of several (a list of
                // nodes): a log reader sees one event per line.
                let line = error_line(&err)
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
                if self.last_error.as_deref() != Some(line.as_str()) {
                    eprintln!(
                        "mig-cdi-gen: watch: cannot regenerate, {} left as it was (retrying \
                         every poll): {line}",
                        self.path.display()
                    );
                    self.last_error = Some(line);
                }
            }
        }
    }

    fn write(&mut self, generation: Generation) -> Result<()> {
        let Generation { spec, bytes, found } = generation;
        if self.written.as_ref().is_some_and(|(_, old)| *old == bytes) {
            return Ok(());
        }
        generate::commit(AtomicFile::create(&self.path)?, &bytes)?;
        match &self.written {
            None => eprintln!(
                "mig-cdi-gen: {}",
                generate::wrote(&self.path, &spec, &found)
            ),
            Some((old, _)) => eprintln!(
                "mig-cdi-gen: rewrote {}: {}",
                self.path.display(),
                change_line(old, &spec)
            ),
        }
        self.written = Some((spec, bytes));
        Ok(())
    }
}

pub fn run(host: &HostArgs, args: &WatchArgs) -> Result<ExitCode> {
    // First: a SIGTERM from now on ends the loop cleanly, even one sent
    // before the first write.
    signals::install()?;
    if args.generate.check {
        bail!("watch keeps the file current; for a one-time comparison run generate --check");
    }
    if args.generate.create_device_nodes {
        bail!(
            "watch never changes the host: run `mig-cdi-gen generate --create-device-nodes` \
             once to create missing capability nodes, then watch"
        );
    }
    let mut generator = Generator::new(host, &args.generate)?;
    let Some(path) = generator.output().map(Path::to_path_buf) else {
        bail!("watch writes a file: give it with --output FILE");
    };
    let mut state = State {
        path,
        written: None,
        fingerprint: None,
        last_full: None,
        last_error: None,
        last_warnings: Vec::new(),
    };
    while !signals::stop_requested() {
        let now = fingerprint(&host.root);
        let hangup = signals::take_hangup();
        let due = state
            .last_full
            .is_none_or(|at| at.elapsed() >= args.full_every);
        if hangup || due || state.fingerprint.as_ref() != Some(&now) {
            // Taken before NVML is read: a change during the read shows at
            // the next poll.
            state.fingerprint = Some(now);
            state.last_full = Some(Instant::now());
            state.regenerate(&mut generator);
        }
        let wake = Instant::now() + args.interval;
        while !signals::stop_requested() && !signals::hangup_pending() {
            let left = wake.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(SLICE));
        }
    }
    eprintln!(
        "mig-cdi-gen: watch: stopping; {} is whole",
        state.path.display()
    );
    Ok(ExitCode::SUCCESS)
}
