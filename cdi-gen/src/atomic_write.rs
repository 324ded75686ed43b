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
//!
//! A writer holds an exclusive `flock` on its temporary file from creation
//! to rename; the kernel drops it when the process dies, even by SIGKILL.
//! So the next write of the same target removes the temporary files of
//! earlier writes that it can lock — ours by their exact name pattern, in
//! the target's folder only, regular files only (a symlink is never
//! followed or removed) — and leaves those of a writer still running.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every spec file written.
pub const MODE: u32 = 0o644;

/// A failed step, with the path it failed on. The OS error is the
/// `source`, not part of the message, so an error chain says it once.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{}: not a file name to write to", path.display())]
    NoFileName { path: PathBuf },
    #[error("cannot create folder {}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create a temporary file in {}", dir.display())]
    CreateTemp {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot flush {} to disk", path.display())]
    Sync {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot rename {} to {}", from.display(), to.display())]
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
    /// Temporary files of earlier, interrupted writes, removed.
    leftovers: Vec<PathBuf>,
}

/// What a write did besides replacing the target.
#[derive(Debug, Default)]
pub struct Written {
    /// Temporary files that interrupted writes had left, now removed.
    pub leftovers_removed: Vec<PathBuf>,
}

/// `.{name}.{pid}.{attempt}.tmp`, the temporary name of a write of `name`.
fn temp_name(name: &str, pid: u32, attempt: u32) -> String {
    format!(".{name}.{pid}.{attempt}.tmp")
}

/// Is `file_name` exactly a temporary name [`temp_name`] gives for `name`?
fn is_temp_name(file_name: &str, name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    file_name
        .strip_prefix('.')
        .and_then(|rest| rest.strip_prefix(name))
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_suffix(".tmp"))
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(pid, attempt)| digits(pid) && digits(attempt))
}

/// The same file (device and inode)?
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

/// Remove the temporary files of earlier writes of `name` in `dir` whose
/// writer is gone (their lock can be taken). Best effort: what cannot be
/// examined or removed is left alone.
fn remove_leftovers(dir: &Path, name: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        if !file_name.to_str().is_some_and(|n| is_temp_name(n, name)) {
            continue;
        }
        let path = dir.join(&file_name);
        // Only a regular file (not followed if a symlink), and the open
        // neither follows one nor blocks.
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file()) {
            continue;
        }
        let Ok(file) = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
            .open(&path)
        else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        // A writer still running holds the lock.
        if !meta.is_file() || file.try_lock().is_err() {
            continue;
        }
        // Still that file at that name (not replaced since it was opened).
        if !std::fs::symlink_metadata(&path).is_ok_and(|now| same_file(&now, &meta)) {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
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
        let leftovers = remove_leftovers(&dir, name);
        let pid = std::process::id();
        let mut attempt = 0u32;
        loop {
            let temp = dir.join(temp_name(name, pid, attempt));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(MODE)
                .open(&temp)
            {
                Ok(file) => {
                    // Lock before anything else; if another write's cleanup
                    // took the file between create and lock (it holds the
                    // lock, or the name is gone), take the next name.
                    let locked = file.try_lock().is_ok()
                        && match (file.metadata(), std::fs::symlink_metadata(&temp)) {
                            (Ok(ours), Ok(named)) => same_file(&ours, &named),
                            _ => false,
                        };
                    if !locked {
                        if attempt >= 100 {
                            return Err(WriteError::CreateTemp {
                                dir,
                                source: std::io::Error::other(
                                    "cannot lock a temporary file: another write is cleaning up",
                                ),
                            });
                        }
                        attempt += 1;
                        continue;
                    }
                    let this = Self {
                        target: target.to_path_buf(),
                        dir,
                        temp,
                        file,
                        leftovers,
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

    /// Temporary files of interrupted writes removed on the way.
    pub fn leftovers_removed(&self) -> &[PathBuf] {
        &self.leftovers
    }

    /// Flush, rename over the target, flush the folder.
    pub fn commit(mut self) -> Result<Written, WriteError> {
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
            })?;
        Ok(Written {
            leftovers_removed: std::mem::take(&mut self.leftovers),
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
pub fn write(target: &Path, bytes: &[u8]) -> Result<Written, WriteError> {
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
    const KILL_ENV: &str = "MIG_CDI_ATOMIC_WRITE_KILL_DIR";
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
        // And the next write goes through, and removes it.
        let written = write(&target, b"new\n").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new\n");
        assert_eq!(names(dir.path()), ["nvidia.com-gpu.json"]);
        assert_eq!(written.leftovers_removed.len(), 1);
    }

    /// Runs only as the child of the kill test: starts a write, says so,
    /// and waits to be killed.
    #[test]
    fn kill_child() {
        let Some(dir) = std::env::var_os(KILL_ENV) else {
            return;
        };
        let target = Path::new(&dir).join("nvidia.com-gpu.json");
        let mut file = AtomicFile::create(&target).unwrap();
        file.write_all(b"{\"cdiVersion\": ").unwrap();
        println!("writing");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }

    #[test]
    fn the_next_write_removes_what_a_write_killed_with_sigkill_left() {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("nvidia.com-gpu.json");
        std::fs::write(&target, OLD).unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "atomic_write::tests::kill_child", "--nocapture"])
            .env(KILL_ENV, dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        while !line.contains("writing") {
            line.clear();
            assert_ne!(
                out.read_line(&mut line).unwrap(),
                0,
                "the child ended early"
            );
        }
        // While the writer lives, another write leaves its file alone.
        write(&dir.path().join("other.json"), b"{}").unwrap();
        assert_eq!(names(dir.path()).len(), 3);
        let temp = names(dir.path())
            .into_iter()
            .find(|n| n.ends_with(".tmp"))
            .unwrap();
        let written = write(&target, b"second\n").unwrap();
        assert!(written.leftovers_removed.is_empty());
        assert!(dir.path().join(&temp).exists(), "a live writer's file");

        child.kill().unwrap(); // SIGKILL
        assert_eq!(child.wait().unwrap().signal(), Some(9));
        assert!(dir.path().join(&temp).exists());
        let written = write(&target, b"new\n").unwrap();
        assert_eq!(written.leftovers_removed, [dir.path().join(&temp)]);
        assert_eq!(names(dir.path()), ["nvidia.com-gpu.json", "other.json"]);
        assert_eq!(std::fs::read(&target).unwrap(), b"new\n");
    }

    #[test]
    fn only_our_exact_temp_names_are_removed_and_symlinks_never() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let keep = [
            ".spec.json.12.0.tmp.bak",
            ".spec.json.x.0.tmp",
            ".spec.json.12.tmp",
            "spec.json.12.0.tmp",
            ".other.json.12.0.tmp",
            ".spec.json.12.0.tmp.d",
        ];
        for name in keep {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        // A symlink and a folder with our exact pattern: not ours.
        std::os::unix::fs::symlink(&victim, dir.path().join(".spec.json.13.0.tmp")).unwrap();
        std::fs::create_dir(dir.path().join(".spec.json.14.0.tmp")).unwrap();
        // A leftover: removed.
        std::fs::write(dir.path().join(".spec.json.15.2.tmp"), b"half").unwrap();
        let written = write(&dir.path().join("spec.json"), b"{}").unwrap();
        assert_eq!(
            written.leftovers_removed,
            [dir.path().join(".spec.json.15.2.tmp")]
        );
        let mut expected: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
        expected.extend([
            ".spec.json.13.0.tmp".into(),
            ".spec.json.14.0.tmp".into(),
            "spec.json".into(),
        ]);
        expected.sort();
        assert_eq!(names(dir.path()), expected);
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn errors_name_the_os_error_once_in_a_chain() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let err = write(&file.join("x.json"), b"{}").unwrap_err();
        let os = std::error::Error::source(&err).unwrap().to_string();
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert!(chain.starts_with("cannot create folder "), "{chain}");
        assert_eq!(chain.matches(&os).count(), 1, "{chain}");
    }

    /// SIGABRT on Linux.
    fn libc_sigabrt() -> i32 {
        6
    }
}
