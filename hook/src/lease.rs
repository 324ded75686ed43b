//! Leases: which live container holds which MIG device.
//!
//! Every injection — named or allocated, through the hook, the runtime
//! wrapper or the CDI verify hook — records a [`Lease`]: the device (its
//! GPU node and capability node minors, the identity every path agrees
//! on), the container id, and the holder process's pid and start time.
//! A lease whose process is gone, or whose pid now belongs to a process
//! that started at another time (pid reuse), holds nothing.
//!
//! The leases of a node live in one file, `<state dir>/leases.json`,
//! changed only under an exclusive `flock` on `<state dir>/leases.lock`
//! and replaced through a new file renamed over it: readers and a writer
//! killed at any point leave the old list or the new one, whole, and the
//! kernel drops a dead writer's lock. The state dir defaults to
//! `/run/mig-cdi` (`/run` is a tmpfs: leases end with the boot, as the
//! containers do).
//!
//! [`Ledger`] is the seam: [`FileLedger`] for the host, [`MemoryLedger`]
//! for tests of the pipeline.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::host::Host;

/// Where leases are kept unless `--state-dir` says otherwise.
pub const DEFAULT_STATE_DIR: &str = "/run/mig-cdi";
const LEASES: &str = "leases.json";
const LOCK: &str = "leases.lock";
/// Far above any real list (a lease is ~250 bytes; a node has < 1000 MIG
/// devices).
const MAX_BYTES: u64 = 16 << 20;
const FORMAT_VERSION: u32 = 1;

/// A MIG device as every path sees it: the minor of its `/dev/nvidiaN`
/// and the minors of its capability nodes (sorted). Spec names, naming
/// strategies and spec files differ; these numbers do not.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeviceKey {
    pub gpu: u32,
    pub caps: Vec<u32>,
}

impl fmt::Display for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/dev/nvidia{}", self.gpu)?;
        for (i, cap) in self.caps.iter().enumerate() {
            f.write_str(if i == 0 { " + nvidia-cap" } else { "," })?;
            write!(f, "{cap}")?;
        }
        Ok(())
    }
}

/// Who holds a device: a container and the process whose life bounds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub container: String,
    pub pid: i32,
    /// The process's start time (`/proc/<pid>/stat` field 22).
    pub start: u64,
}

/// One device held by one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub device: DeviceKey,
    /// The CDI name it was given by (`nvidia.com/gpu=0:1`).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    pub container: String,
    pub pid: i32,
    pub start: u64,
    /// Unix seconds when the lease was first taken.
    pub since: u64,
    /// What recorded it: `hook`, `runtime` or `verify`.
    pub by: String,
    /// Taken with sharing allowed (the device may have other holders).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
}

impl Holder {
    /// Container `id` (from the OCI state, or a runtime's command line) and
    /// process `pid`, with that process's start time as the host tells it.
    pub fn of(
        host: &dyn Host,
        id: Option<&str>,
        pid: i32,
    ) -> Result<Self, crate::error::HookError> {
        let container = id
            .filter(|id| !id.is_empty())
            .ok_or(crate::alloc::AllocError::NoContainerId)?
            .to_string();
        let start = host
            .process_start(pid)
            .ok_or_else(|| crate::error::HookError::Io {
                op: "read the start time of the holder's process from",
                path: format!("/proc/{pid}/stat").into(),
                source: io::Error::from(io::ErrorKind::NotFound),
            })?;
        Ok(Self {
            container,
            pid,
            start,
        })
    }
}

impl Lease {
    pub fn holder(&self) -> Holder {
        Holder {
            container: self.container.clone(),
            pid: self.pid,
            start: self.start,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct LeaseFile {
    version: u32,
    leases: Vec<Lease>,
}

/// Is a lease's holder still there?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Live,
    /// No process has the pid.
    Gone,
    /// The pid belongs to a process started at another time.
    Reused,
}

impl Liveness {
    pub fn is_live(self) -> bool {
        self == Liveness::Live
    }
}

impl fmt::Display for Liveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Liveness::Live => "live",
            Liveness::Gone => "stale: process gone",
            Liveness::Reused => "stale: pid reused",
        })
    }
}

pub fn liveness(host: &dyn Host, lease: &Lease) -> Liveness {
    match host.process_start(lease.pid) {
        None => Liveness::Gone,
        Some(start) if start == lease.start => Liveness::Live,
        Some(_) => Liveness::Reused,
    }
}

/// Why the leases cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("cannot {op} {}: {source}; check --state-dir", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{} is not a directory owned by this user (uid {uid}); the lease state must be \
         private to root — use another --state-dir or fix its owner",
        path.display()
    )]
    UnsafeDir { path: PathBuf, uid: u32 },
    #[error(
        "cannot decode {} ({why}): it was not written by mig-cdi-hook; move it away (the \
         leases it held are then forgotten until their containers restart)",
        path.display()
    )]
    Corrupt { path: PathBuf, why: String },
}

/// The leases of a node, changed only whole and under a lock.
pub trait Ledger {
    /// Run `change` on the current leases under the exclusive lock; the
    /// list it leaves is stored (atomically, and only when it differs).
    /// An error from `change` stores nothing.
    fn update(
        &mut self,
        change: &mut dyn FnMut(&mut Vec<Lease>) -> Result<(), crate::error::HookError>,
    ) -> Result<(), crate::error::HookError>;
    /// The leases as they are now.
    fn snapshot(&self) -> Result<Vec<Lease>, LeaseError>;
    /// Where they are, for messages.
    fn place(&self) -> String;
}

/// Leases in memory, for tests.
#[derive(Debug, Default, Clone)]
pub struct MemoryLedger {
    pub leases: Vec<Lease>,
    /// How many times a changed list was stored.
    pub writes: usize,
}

impl Ledger for MemoryLedger {
    fn update(
        &mut self,
        change: &mut dyn FnMut(&mut Vec<Lease>) -> Result<(), crate::error::HookError>,
    ) -> Result<(), crate::error::HookError> {
        let mut next = self.leases.clone();
        change(&mut next)?;
        if next != self.leases {
            self.leases = next;
            self.writes += 1;
        }
        Ok(())
    }
    fn snapshot(&self) -> Result<Vec<Lease>, LeaseError> {
        Ok(self.leases.clone())
    }
    fn place(&self) -> String {
        "memory".into()
    }
}

/// Leases in `<dir>/leases.json`.
#[derive(Debug, Clone)]
pub struct FileLedger {
    dir: PathBuf,
}

impl FileLedger {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn io(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LeaseError {
        let path = path.to_path_buf();
        move |source| LeaseError::Io { op, path, source }
    }

    /// The state dir, made private if missing; refused when it is a
    /// symlink or belongs to another user.
    fn ensure_dir(&self) -> Result<(), LeaseError> {
        let meta = match fs::symlink_metadata(&self.dir) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&self.dir)
                    .map_err(Self::io("create the state dir", &self.dir))?;
                fs::symlink_metadata(&self.dir)
                    .map_err(Self::io("inspect the state dir", &self.dir))?
            }
            other => other.map_err(Self::io("inspect the state dir", &self.dir))?,
        };
        let uid = nix::unistd::geteuid().as_raw();
        if !meta.is_dir() || meta.uid() != uid {
            return Err(LeaseError::UnsafeDir {
                path: self.dir.clone(),
                uid,
            });
        }
        Ok(())
    }

    fn lock(&self, arg: FlockArg) -> Result<Flock<File>, LeaseError> {
        let path = self.dir.join(LOCK);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(no_follow())
            .open(&path)
            .map_err(Self::io("open the lease lock", &path))?;
        Flock::lock(file, arg).map_err(|(_, errno)| Self::io("lock", &path)(io::Error::from(errno)))
    }

    fn read(&self) -> Result<Vec<Lease>, LeaseError> {
        let path = self.dir.join(LEASES);
        // Not following a symlink, never waiting on a FIFO someone put
        // there, regular files only.
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(no_follow() | nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(&path)
        {
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other.map_err(Self::io("open", &path))?,
        };
        let kind = file
            .metadata()
            .map_err(Self::io("inspect", &path))?
            .file_type();
        if !kind.is_file() {
            return Err(LeaseError::Corrupt {
                path,
                why: format!("it is {}", mig_cdi_core::fsread::describe(kind)),
            });
        }
        let mut bytes = Vec::new();
        file.take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(Self::io("read", &path))?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(LeaseError::Corrupt {
                path,
                why: format!("larger than {MAX_BYTES} bytes"),
            });
        }
        let file: LeaseFile =
            serde_json::from_slice(&bytes).map_err(|err| LeaseError::Corrupt {
                path: path.clone(),
                why: format!("line {}, column {}", err.line(), err.column()),
            })?;
        if file.version != FORMAT_VERSION {
            return Err(LeaseError::Corrupt {
                path,
                why: format!("format version {}, this is {FORMAT_VERSION}", file.version),
            });
        }
        Ok(file.leases)
    }

    /// Replace the list: a new file, synced, renamed over the old one.
    /// Temporary files of writers killed before their rename are removed
    /// first (only lock holders write, so none is in use).
    fn write(&self, leases: &[Lease]) -> Result<(), LeaseError> {
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".leases.json.")
                {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        let path = self.dir.join(LEASES);
        let tmp = self
            .dir
            .join(format!(".leases.json.{}", std::process::id()));
        let mut bytes = serde_json::to_vec(&LeaseFile {
            version: FORMAT_VERSION,
            leases: leases.to_vec(),
        })
        .expect("leases serialize");
        bytes.push(b'\n');
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(no_follow())
                .open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_data()?;
            fs::rename(&tmp, &path)
        })();
        result.map_err(|err| {
            let _ = fs::remove_file(&tmp);
            Self::io("replace", &path)(err)
        })
    }
}

/// `O_NOFOLLOW | O_CLOEXEC`: a symlink planted at a state file's name is
/// never followed.
fn no_follow() -> i32 {
    (nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC).bits()
}

impl Ledger for FileLedger {
    fn update(
        &mut self,
        change: &mut dyn FnMut(&mut Vec<Lease>) -> Result<(), crate::error::HookError>,
    ) -> Result<(), crate::error::HookError> {
        self.ensure_dir()?;
        let _lock = self.lock(FlockArg::LockExclusive)?;
        let before = self.read()?;
        let mut next = before.clone();
        change(&mut next)?;
        if next != before {
            self.write(&next)?;
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<Lease>, LeaseError> {
        if !self.dir.exists() {
            return Ok(Vec::new());
        }
        self.ensure_dir()?;
        let _lock = self.lock(FlockArg::LockShared)?;
        self.read()
    }

    fn place(&self) -> String {
        self.dir.join(LEASES).display().to_string()
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `since` as RFC 3339 (UTC).
pub fn rfc3339(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The start time in a `/proc/<pid>/stat` line: field 22, counted after
/// the command name (which may hold spaces and parentheses).
pub fn stat_start_time(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(container: &str, caps: &[u32]) -> Lease {
        Lease {
            device: DeviceKey {
                gpu: 0,
                caps: caps.to_vec(),
            },
            name: "nvidia.com/gpu=0:1".into(),
            profile: Some("1g.18gb".into()),
            container: container.into(),
            pid: 42,
            start: 7,
            since: 1_700_000_000,
            by: "hook".into(),
            shared: false,
        }
    }

    #[test]
    fn stat_start_time_survives_odd_command_names() {
        let stat = "1234 (a b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 \
                    1000 10 18446744073709551615";
        assert_eq!(stat_start_time(stat), Some(987_654));
        assert_eq!(stat_start_time("garbage"), None);
    }

    #[test]
    fn rfc3339_is_well_formed() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_083_200), "2026-12-01T00:00:00Z");
    }

    #[test]
    fn file_ledger_round_trips_and_skips_unchanged_writes() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let mut ledger = FileLedger::new(&state);
        assert!(ledger.snapshot().unwrap().is_empty());
        ledger
            .update(&mut |leases| {
                leases.push(lease("a", &[12, 13]));
                Ok(())
            })
            .unwrap();
        let mode = fs::metadata(&state).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let file = state.join(LEASES);
        let modified = fs::metadata(&file).unwrap().modified().unwrap();
        ledger.update(&mut |_| Ok(())).unwrap();
        assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), modified);
        assert_eq!(ledger.snapshot().unwrap(), [lease("a", &[12, 13])]);
        // An error inside the change stores nothing.
        let err = ledger.update(&mut |leases| {
            leases.clear();
            Err(crate::error::HookError::Usage("no".into()))
        });
        assert!(err.is_err());
        assert_eq!(ledger.snapshot().unwrap().len(), 1);
    }

    #[test]
    fn a_killed_writers_leftovers_are_ignored_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = FileLedger::new(dir.path());
        ledger
            .update(&mut |l| {
                l.push(lease("a", &[1, 2]));
                Ok(())
            })
            .unwrap();
        fs::write(
            dir.path().join(".leases.json.99999"),
            b"{\"version\":1,\"lea",
        )
        .unwrap();
        assert_eq!(ledger.snapshot().unwrap().len(), 1);
        ledger
            .update(&mut |l| {
                l.push(lease("b", &[3, 4]));
                Ok(())
            })
            .unwrap();
        assert!(!dir.path().join(".leases.json.99999").exists());
        assert_eq!(ledger.snapshot().unwrap().len(), 2);
    }

    #[test]
    fn corrupt_symlinked_or_foreign_state_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(LEASES), b"{not json").unwrap();
        let err = FileLedger::new(dir.path())
            .snapshot()
            .unwrap_err()
            .to_string();
        assert!(err.contains("leases.json (line 1"), "{err}");
        assert!(err.contains("move it away"), "{err}");

        let other = tempfile::tempdir().unwrap();
        fs::write(other.path().join("target"), b"").unwrap();
        std::os::unix::fs::symlink(other.path().join("target"), other.path().join(LEASES)).unwrap();
        let err = FileLedger::new(other.path())
            .snapshot()
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot open"), "{err}");

        let fifo = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&fifo.path().join(LEASES), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = FileLedger::new(fifo.path())
            .snapshot()
            .unwrap_err()
            .to_string();
        assert!(err.contains("leases.json (it is a FIFO"), "{err}");

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(other.path(), &link).unwrap();
        let err = FileLedger::new(&link).snapshot().unwrap_err().to_string();
        assert!(err.contains("not a directory owned by this user"), "{err}");
    }

    #[test]
    fn device_keys_read_as_nodes() {
        let key = DeviceKey {
            gpu: 3,
            caps: vec![66, 67],
        };
        assert_eq!(key.to_string(), "/dev/nvidia3 + nvidia-cap66,67");
    }
}
