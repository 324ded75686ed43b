//! Every way the hook can refuse, each printed as one actionable line.
//!
//! One error enum per stage — [`InputError`], [`ResolveError`],
//! [`VerifyError`], [`PlanError`], [`ApplyError`] — each a finding as data
//! (which node, which rule, which file) with the sentence in its `Display`;
//! [`HookError`] joins them. I/O errors always name the path and the
//! operation.

use std::path::PathBuf;

pub use crate::alloc::AllocError;
pub use crate::cdi_check::CheckError;
pub use crate::container::ContainerError;
pub use crate::inject::ApplyError;
pub use crate::input::InputError;
pub use crate::lease::LeaseError;
pub use crate::plan::PlanError;
pub use crate::resolve::ResolveError;
pub use crate::verify::VerifyError;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// Bad command line.
    #[error("{0}; see `mig-cdi-hook --help`")]
    Usage(String),

    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error(transparent)]
    Alloc(#[from] AllocError),
    #[error(transparent)]
    Check(#[from] CheckError),
}

impl HookError {
    /// The stage that refused, for logs and tools.
    pub fn stage(&self) -> &'static str {
        match self {
            Self::Usage(_) | Self::Io { .. } => "setup",
            Self::Input(_) => "input",
            Self::Resolve(_) => "resolve",
            Self::Verify(_) => "verify",
            Self::Plan(_) => "plan",
            Self::Apply(_) => "apply",
            Self::Container(_) => "container",
            Self::Lease(_) | Self::Alloc(_) => "lease",
            Self::Check(_) => "verify",
        }
    }
}
