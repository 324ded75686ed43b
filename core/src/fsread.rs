//! Reading a file that someone else controls: regular files only, never
//! blocking on the open, never more than a cap.
//!
//! Spec folders, driver tables and a bundle's `config.json` are paths an
//! operator, an image or a broken driver may point anywhere: at a FIFO
//! (a plain `open` blocks until a writer comes), at `/dev/urandom` (a read
//! never ends) or at `/dev/zero` (a `read_to_end` allocates until the
//! process dies). Every read of such a path goes through [`read`]: the file
//! is opened with `O_NONBLOCK | O_NOCTTY`, refused unless `fstat` says it
//! is a regular file, and read up to `max` bytes — one byte more is an
//! error, not a silent truncation. The size cap is enforced while reading,
//! not from `st_size`, because procfs files report a size of 0.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Cap for the driver's `/proc` tables (the largest, `mig-minors`, is
/// ~90 KiB).
pub const MAX_TABLE_BYTES: u64 = 1 << 20;
/// Cap for a CDI spec (ours are a few KiB; 32 GPUs x 7 MIG devices ~200 KiB).
pub const MAX_SPEC_BYTES: u64 = 16 << 20;

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// `open` or `read` failed.
    Io { path: PathBuf, source: io::Error },
    /// Something other than a regular file is at the path.
    NotRegular { path: PathBuf, what: &'static str },
    /// The file holds more than the cap.
    TooLarge { path: PathBuf, max: u64 },
}

impl ReadError {
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. } | Self::NotRegular { path, .. } | Self::TooLarge { path, .. } => {
                path
            }
        }
    }

    /// `true` when nothing exists at the path.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// The reason alone, without the path (for messages that name the
    /// path themselves).
    pub fn reason(&self) -> String {
        match self {
            Self::Io { source, .. } => source.to_string(),
            Self::NotRegular { what, .. } => format!("it is {what}, not a regular file"),
            Self::TooLarge { max, .. } => format!("it holds more than {max} bytes"),
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot read {}: {}",
            self.path().display(),
            self.reason()
        )
    }
}

/// The message already says the OS error; no `source`, so an error chain
/// (`{:#}`) says it once.
impl std::error::Error for ReadError {}

/// Open `path` for reading without blocking, and only if it is a regular
/// file (symlinks are followed, as runtimes follow them).
pub fn open(path: &Path) -> Result<File, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(io)?;
    let kind = file.metadata().map_err(io)?.file_type();
    if !kind.is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            what: describe(kind),
        });
    }
    Ok(file)
}

/// The whole of a regular file of at most `max` bytes.
pub fn read(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let file = open(path)?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            max,
        });
    }
    Ok(bytes)
}

/// [`read`], with "nothing there" as `None`.
pub fn read_if_exists(path: &Path, max: u64) -> Result<Option<Vec<u8>>, ReadError> {
    match read(path, max) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(err),
    }
}

/// What a non-regular file is, for messages.
pub fn describe(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_file() {
        "a regular file"
    } else {
        "an unknown kind of file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_file_is_read_whole_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read(&path, 5).unwrap(), b"12345");
        let err = read(&path, 4).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { max: 4, .. }), "{err}");
        assert!(err.to_string().contains("more than 4 bytes"), "{err}");
    }

    #[test]
    fn fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let err = read(&path, 10).unwrap_err();
        assert!(
            err.to_string().contains("a FIFO, not a regular file"),
            "{err}"
        );
    }

    #[test]
    fn devices_and_directories_are_refused() {
        for (path, what) in [
            ("/dev/zero", "a character device"),
            ("/dev/urandom", "a character device"),
            ("/", "a directory"),
        ] {
            let err = read(Path::new(path), 1 << 20).unwrap_err();
            assert!(err.to_string().contains(what), "{path}: {err}");
        }
    }

    #[test]
    fn missing_is_none_only_where_asked() {
        let path = Path::new("/nonexistent/mig-cdi/x");
        assert!(read_if_exists(path, 1).unwrap().is_none());
        assert!(read(path, 1).unwrap_err().is_not_found());
    }

    #[test]
    fn procfs_files_with_size_zero_are_read() {
        let bytes = read(Path::new("/proc/self/status"), MAX_TABLE_BYTES).unwrap();
        assert!(bytes.starts_with(b"Name:"));
    }
}
