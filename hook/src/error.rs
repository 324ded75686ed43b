//! Every way the hook can refuse, each printed as one actionable line.
//!
//! Messages say what was found and what to do; they are formed where the
//! context is (the check that failed), so most variants carry the finished
//! sentence. I/O errors always name the path and the operation.

use std::path::PathBuf;

use mig_cdi_core::driver::DriverError;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// Bad command line.
    #[error("{0}; see `mig-cdi-hook --help`")]
    Usage(String),

    #[error(
        "cannot decode the OCI state on stdin ({source}); mig-cdi-hook must be run by the \
         container runtime as a prestart or createRuntime hook"
    )]
    State { source: serde_json::Error },

    #[error("{0}")]
    BadState(String),

    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot decode {} ({source}); is this the bundle's OCI config?", path.display())]
    Config {
        path: PathBuf,
        source: serde_json::Error,
    },

    #[error("{0}")]
    BadConfig(String),

    /// The container's request is malformed.
    #[error("{0}")]
    Request(String),

    /// A name does not resolve.
    #[error("{0}")]
    Resolve(String),

    /// More than one device asked for.
    #[error("{0}")]
    OneDevice(String),

    /// Missing capabilities (the hook's own, or the container's bounding
    /// set for config/monitor).
    #[error("{0}")]
    Privilege(String),

    /// Device cgroup rules too wide, or (cgroup v2) too narrow.
    #[error("{0}")]
    Cgroup(String),

    /// The spec does not match the live driver or host /dev.
    #[error("{0}")]
    Stale(String),

    #[error("{0}")]
    Driver(#[from] DriverError),

    /// Creating the nodes failed; what this run created was removed.
    #[error("{0}")]
    Inject(String),
}
