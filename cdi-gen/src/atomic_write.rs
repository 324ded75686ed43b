//! Replace a file so that a reader sees the old bytes or the new ones,
//! never a mix, whatever happens to this process.
//!
//! The new bytes go to a temporary file created exclusively (`O_EXCL`) in
//! the target's own folder, are flushed to disk, and the temporary file is
//! renamed over the target, after which the folder itself is flushed so the
//! rename survives a power cut. The temporary name starts with `.` and ends
//! in `.tmp`: runtimes read only `*.json` and `*.yaml` from a CDI folder, so
//! one left behind by a crash is never taken for a spec. The result has
//! mode 0644 whatever the umask.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every spec file written.
pub const MODE: u32 = 0o644;

/// A failed step, with the path it failed on.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{}: not a file name to write to", path.display())]
    NoFileName { path: PathBuf },
    #[error("cannot create folder {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create a temporary file in {}: {source}", dir.display())]
    CreateTemp {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot flush {} to disk: {source}", path.display())]
    Sync {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot rename {} to {}: {source}", from.display(), to.display())]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
}

/// A temporary file that becomes the target on [`AtomicFile::commit`] and
/// disappears if dropped before.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    dir: PathBuf,
    temp: PathBuf,
    file: File,
}

impl AtomicFile {
    /// Create the temporary file next to `target` (creating the target's
    /// folder if it is missing).
    pub fn create(target: &Path) -> Result<Self, WriteError> {
        let name =
            target
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| WriteError::NoFileName {
                    path: target.to_path_buf(),
                })?;
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir).map_err(|source| WriteError::CreateDir {
                path: dir.clone(),
                source,
            })?;
        }
        let pid = std::process::id();
        let mut attempt = 0u32;
        loop {
            let temp = dir.join(format!(".{name}.{pid}.{attempt}.tmp"));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(MODE)
                .open(&temp)
            {
                Ok(file) => {
                    let this = Self {
                        target: target.to_path_buf(),
                        dir,
                        temp,
                        file,
                    };
                    // The umask may have taken bits off; set them exactly.
                    this.file
                        .set_permissions(Permissions::from_mode(MODE))
                        .map_err(|source| WriteError::Write {
                            path: this.temp.clone(),
                            source,
                        })?;
                    return Ok(this);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1;
                }
                Err(source) => return Err(WriteError::CreateTemp { dir, source }),
            }
        }
    }

    /// Append bytes to the temporary file.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.file
            .write_all(bytes)
            .map_err(|source| WriteError::Write {
                path: self.temp.clone(),
                source,
            })
    }

    /// Flush, rename over the target, flush the folder.
    pub fn commit(mut self) -> Result<(), WriteError> {
        self.file.sync_all().map_err(|source| WriteError::Sync {
            path: self.temp.clone(),
            source,
        })?;
        std::fs::rename(&self.temp, &self.target).map_err(|source| WriteError::Rename {
            from: self.temp.clone(),
            to: self.target.clone(),
            source,
        })?;
        // Renamed: nothing left to clean up, whatever happens next.
        self.temp = PathBuf::new();
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| WriteError::Sync {
                path: self.dir.clone(),
                source,
            })
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Replace `target` with `bytes` atomically.
pub fn write(target: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let mut file = AtomicFile::create(target)?;
    file.write_all(bytes)?;
    file.commit()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    const CHILD_ENV: &str = "MIG_CDI_ATOMIC_WRITE_CRASH_DIR";
    const OLD: &[u8] = b"{\"old\": true}\n";

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// What a runtime would read from the folder.
    fn spec_files(dir: &Path) -> Vec<String> {
        names(dir)
            .into_iter()
            .filter(|n| n.ends_with(".json") || n.ends_with(".yaml"))
            .collect()
    }

    #[test]
    fn replaces_the_file_with_mode_0644_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("nvidia.com-gpu.json");
        std::fs::write(&target, OLD).unwrap();
        std::fs::set_permissions(&target, Permissions::from_mode(0o600)).unwrap();
        write(&target, b"new\n").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new\n");
        assert_eq!(std::fs::metadata(&target).unwrap().mode() & 0o7777, MODE);
        assert_eq!(names(dir.path()), ["nvidia.com-gpu.json"]);
    }

    #[test]
    fn creates_a_missing_folder() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("var/run/cdi/x.yaml");
        write(&target, b"a: b\n").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"a: b\n");
    }

    #[test]
    fn a_failure_before_the_rename_leaves_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("nvidia.com-gpu.json");
        std::fs::write(&target, OLD).unwrap();
        let mut file = AtomicFile::create(&target).unwrap();
        file.write_all(b"{\"half\":").unwrap();
        drop(file); // an error between write and rename
        assert_eq!(std::fs::read(&target).unwrap(), OLD);
        assert_eq!(names(dir.path()), ["nvidia.com-gpu.json"]);
    }

    #[test]
    fn a_rename_that_fails_names_both_paths_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("spec.json");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"x").unwrap();
        let err = write(&target, b"new").unwrap_err().to_string();
        assert!(
            err.contains("cannot rename") && err.contains("spec.json"),
            "{err}"
        );
        assert_eq!(names(dir.path()), ["spec.json"]);
    }

    /// Runs only as the child of the crash test: starts a write and dies
    /// (SIGABRT, no destructors) between writing and renaming.
    #[test]
    fn crash_child() {
        let Some(dir) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let target = Path::new(&dir).join("nvidia.com-gpu.json");
        let mut file = AtomicFile::create(&target).unwrap();
        file.write_all(b"{\"cdiVersion\": \"0.5.0\", \"kind\": ")
            .unwrap();
        std::process::abort();
    }

    #[test]
    fn a_crash_mid_write_leaves_the_old_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("nvidia.com-gpu.json");
        std::fs::write(&target, OLD).unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "atomic_write::tests::crash_child", "--nocapture"])
            .env(CHILD_ENV, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.signal(), Some(libc_sigabrt()), "{status:?}");
        assert_eq!(std::fs::read(&target).unwrap(), OLD);
        // The half-written temporary file is still there (nobody cleaned
        // up), but no runtime would read it as a spec.
        let left = names(dir.path());
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left
            .iter()
            .any(|n| n.starts_with(".nvidia.com-gpu.json.") && n.ends_with(".tmp")));
        assert_eq!(spec_files(dir.path()), ["nvidia.com-gpu.json"]);
        // And the next write goes through.
        write(&target, b"new\n").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new\n");
    }

    /// SIGABRT on Linux.
    fn libc_sigabrt() -> i32 {
        6
    }
}
