//! The two syscalls the fake root needs that std does not wrap: `mknod`
//! for character devices and `geteuid`. Kept apart so the fake-root code
//! stays safe Rust.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Creates a character device node `path` (major:minor). The mode is
/// masked by the umask; the caller sets the exact mode afterwards.
pub(crate) fn mknod_char(path: &Path, major: u32, minor: u32, mode: u32) -> io::Result<()> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    let dev = libc::makedev(major, minor);
    // SAFETY: c_path is a valid NUL-terminated string that outlives the
    // call; mknod reads it and touches no memory of ours.
    let rc = unsafe { libc::mknod(c_path.as_ptr(), libc::S_IFCHR | mode as libc::mode_t, dev) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether the process runs as root (effective uid 0).
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no arguments, cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}
