//! The NVIDIA driver's `/proc` tables, parsed.
//!
//! The kernel module is the authority on which device node stands for what:
//! the majors in `/proc/devices`, the capability minors in
//! `/proc/driver/nvidia-caps/mig-minors`, the modes in the capability access
//! files. NVML says *which* GPUs and MIG devices exist; these tables say
//! *which nodes* a container needs for them, and the hook re-checks every
//! node against them before it touches anything.
//!
//! Every parser is a pure function over a reader and the file's path (used
//! only in error messages), one submodule per file format, so each can be
//! tested on crafted text. [`DriverTables::load`] reads them all, once each,
//! under a host root prefix, so tests run on fake trees and on the real H200
//! snapshot in `shared/fixtures/driver`.

mod capability;
mod gpu_information;
mod live;
mod mig_minors;
mod params;
mod proc_devices;
mod tables;
mod text;
mod version;

use std::path::PathBuf;

pub use capability::{parse_capability, Capability};
pub use gpu_information::{parse_gpu_information, GpuInformation};
pub use live::LiveDriver;
pub use mig_minors::{parse_mig_minors, parse_mig_minors_for, MigMinors};
pub use params::{parse_params, DriverParams};
pub use proc_devices::{parse_proc_devices, CharDevices};
pub use tables::DriverTables;
pub use version::{parse_version, DriverVersion, MIN_SUPPORTED_VERSION};

/// Something in the driver's tables is missing or not as expected.
///
/// Every variant names the file; [`DriverError::Parse`] also names the
/// 1-based line. Each message is one line and ends with what to do.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A table is not a regular file, too large, or unreadable.
    #[error(transparent)]
    Read(#[from] crate::fsread::ReadError),
    /// The file exists (or should) but could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line is not in the form the driver writes.
    #[error("{}:{line}: {}; {hint}", path.display(), printable(message))]
    Parse {
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was expected and what was found.
        message: String,
        /// What the user should do about it.
        hint: &'static str,
    },
    /// A required file, section or field is absent.
    #[error("{}: no {what}; {hint}", path.display())]
    Missing {
        path: PathBuf,
        /// What is absent, e.g. `such file` or `"DeviceFileMinor" line`.
        what: String,
        hint: &'static str,
    },
    /// The file parses, but its lines contradict each other (or another
    /// table).
    #[error("{}: {}; {hint}", path.display(), printable(message))]
    Inconsistent {
        path: PathBuf,
        message: String,
        hint: &'static str,
    },
    /// A capability name that is not a plain relative path under
    /// `/proc/driver/nvidia/capabilities`.
    #[error(
        "invalid capability name {rel:?}: expected a relative path such as \
         \"gpu0/mig/gi1/ci0/access\" or \"mig/config\" (no \"..\", no leading \"/\")"
    )]
    BadCapabilityName { rel: String },
}

/// The hint for a table the driver wrote in a shape we do not know.
pub(crate) const UNEXPECTED_TABLE: &str =
    "the driver wrote an unexpected table — check the driver version (mig-cdi supports 450.51+)";

/// A message quoting a table's text, safe for one line of a terminal or
/// log: control characters escaped (a broken table may hold any bytes), and
/// at most 240 characters.
fn printable(message: &str) -> String {
    const MAX: usize = 240;
    let mut out = String::with_capacity(message.len().min(MAX + 8));
    for (count, c) in message.chars().enumerate() {
        if count == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
