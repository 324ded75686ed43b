//! Stage 1, input: the OCI state on stdin, the bundle's `config.json`, and
//! the request they carry — all data from the container's side, decoded
//! exactly as far as the hook needs.
//!
//! A container that asks for nothing must never fail because of the hook:
//! when `config.json` cannot be decoded at all, the hook looks for the
//! request's names in its bytes and, finding none, lets the container
//! start untouched.

use std::path::{Path, PathBuf};

use mig_cdi_core::cgroup::DeviceRule;
use mig_cdi_core::fsread::ReadError;

use crate::config::{CapSpelling, Config, RuleProblem};
use crate::host::Host;
use crate::request::{self, Request, RequestError, ANNOTATION, VISIBLE_DEVICES};
use crate::state::State;

/// Largest `config.json` (and OCI state) the hook reads: far above any real
/// config (Kubernetes caps all annotations of a pod at 256 KiB), far below
/// what would hurt.
pub const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// Where in a JSON document decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
    /// The document is not JSON at all (rather than JSON of another shape).
    pub syntax: bool,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.syntax {
            "not valid JSON"
        } else {
            "a field is missing or has the wrong type"
        };
        write!(f, "{what} at line {}, column {}", self.line, self.column)
    }
}

/// The position of a decoding error; its text, which may quote the
/// document, is dropped.
pub fn position(err: &serde_json::Error) -> Position {
    Position {
        line: err.line(),
        column: err.column(),
        syntax: !matches!(err.classify(), serde_json::error::Category::Data),
    }
}

/// Why the container's side cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(
        "cannot decode the OCI state on stdin ({at}); mig-cdi-hook must be run by the container \
         runtime as a prestart or createRuntime hook"
    )]
    State { at: Position },
    #[error("the bundle {0:?} is not an absolute path")]
    RelativeBundle(PathBuf),
    #[error(
        "the state has no usable container pid ({}, status {}); install mig-cdi-hook as a \
         prestart or createRuntime hook",
        pid.map_or_else(|| "none".to_string(), |p| p.to_string()),
        status.as_deref().unwrap_or("unknown")
    )]
    NoPid {
        pid: Option<i64>,
        status: Option<String>,
    },
    #[error("{0}")]
    ReadConfig(ReadError),
    #[error("cannot decode {} ({at}); is this the bundle's OCI config?", path.display())]
    Config { path: PathBuf, at: Position },
    #[error("config.json has no root.path")]
    NoRootPath,
    #[error(
        "config.json linux.resources.devices[{index}] ({rule}): {}",
        describe(problem)
    )]
    DeviceRule {
        index: usize,
        rule: String,
        problem: RuleProblem,
    },
    #[error("config.json linux.{what} maps no host id to the container's root (id 0)")]
    NoRootMapping { what: &'static str },
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(
        "the container runs in a user namespace: a device node a hook creates in its /dev \
         cannot be opened there (the user namespace's mounts are nodev) — give it the device \
         through CDI (podman --device nvidia.com/gpu=NAME) or through mig-cdi-runtime (the \
         runtime then bind-mounts the host's nodes), or docker's --device flags \
         (`mig-cdi-gen docker-args NAME`)"
    )]
    UserNamespace,
}

fn describe(problem: &RuleProblem) -> String {
    match problem {
        RuleProblem::Type(t) => format!(
            "type {:?} is not a device cgroup type (a, b, c or u); runc and crun refuse it",
            request::printable(t)
        ),
        RuleProblem::NumberOutOfRange(n) => format!("device number {n} is out of range"),
        RuleProblem::Access(a) => {
            format!("access {:?} is not a subset of rwm", request::printable(a))
        }
    }
}

/// What the container asks for and the configuration that bounds it.
#[derive(Debug)]
pub struct Container {
    pub request: Request,
    pub rules: Vec<DeviceRule>,
    /// How the bounding set names CAP_SYS_ADMIN.
    pub sys_admin: CapSpelling,
    pub user_namespace: bool,
}

/// Everything the hook's later stages need from the container's side.
#[derive(Debug)]
pub struct Input {
    pub state: State,
    pub container: Container,
    pub pid: i32,
    /// The container's root filesystem, as its mount namespace sees it.
    pub root: PathBuf,
    /// Host uid and gid of the container's root user.
    pub owner: (u32, u32),
}

/// What stage 1 found.
#[derive(Debug)]
pub enum Read<T> {
    /// The container asks for nothing; why, for the trail.
    Nothing(String),
    Request(Box<T>),
}

/// A bundle's config: bytes and view. A config the hook cannot decode but
/// that names no request is `Nothing`.
pub fn config(
    host: &dyn Host,
    bundle: &Path,
    state_annotation: Option<&str>,
) -> Result<Read<(Vec<u8>, Config)>, InputError> {
    let path = bundle.join("config.json");
    let bytes = host
        .read_file(&path, MAX_CONFIG_BYTES)
        .map_err(InputError::ReadConfig)?;
    match Config::parse(&bytes, &path) {
        Ok(config) => Ok(Read::Request(Box::new((bytes, config)))),
        Err(err) if !mentions_request(&bytes) && state_annotation.is_none() => {
            Ok(Read::Nothing(format!(
                "{err}; it does not name {VISIBLE_DEVICES} or {ANNOTATION}, so nothing was \
                 requested"
            )))
        }
        Err(err) => Err(err),
    }
}

/// The request of a decoded config and the rules that bound it.
pub fn container(
    config: &Config,
    state_annotation: Option<&str>,
) -> Result<Option<Container>, InputError> {
    let Some(request) = request::from_config(config, state_annotation)? else {
        return Ok(None);
    };
    Ok(Some(Container {
        request,
        rules: config.device_rules()?,
        sys_admin: config.bounding("CAP_SYS_ADMIN"),
        user_namespace: config.user_namespace(),
    }))
}

/// Read the state, the config and the request (the hook's stage 1).
pub fn read(host: &dyn Host, stdin: &[u8]) -> Result<Read<Input>, InputError> {
    let state = State::parse(stdin)?;
    let config = match config(host, &state.bundle, state.annotation.as_deref())? {
        Read::Nothing(why) => return Ok(Read::Nothing(why)),
        Read::Request(read) => read.1,
    };
    let Some(container) = container(&config, state.annotation.as_deref())? else {
        return Ok(Read::Nothing(format!(
            "container {}: no MIG device requested",
            state.bundle.display()
        )));
    };
    if container.user_namespace {
        return Err(InputError::UserNamespace);
    }
    Ok(Read::Request(Box::new(Input {
        pid: state.pid()?,
        root: config.root_path(&state.bundle)?,
        owner: config.root_owner()?,
        container,
        state,
    })))
}

/// Could these bytes carry a request at all?
fn mentions_request(bytes: &[u8]) -> bool {
    [VISIBLE_DEVICES, ANNOTATION]
        .iter()
        .any(|name| bytes.windows(name.len()).any(|w| w == name.as_bytes()))
}
