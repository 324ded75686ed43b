//! Command line: raw flags (syntax only), then settings.
//!
//! Hand-parsed: four flags do not justify an argument-parsing crate in a
//! binary whose start-up time is part of every container start.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::HookError;
use mig_cdi_core::cdi::folders::DEFAULT_SPEC_DIRS;

pub const HELP: &str = "\
mig-cdi-hook: give a container the one MIG device it asks for, safely.

Run by the container runtime as a prestart or createRuntime OCI hook, with
the OCI state on stdin. Reads the bundle's config.json; the request is
NVIDIA_VISIBLE_DEVICES in the container's environment (or the annotation
mig-cdi/devices): one CDI device name as mig-cdi-gen writes it (0:1,
MIG-<uuid>) or qualified (nvidia.com/gpu=0:1), or `any` / `any:<profile>`
(any:1g.18gb, any:2c.3g.40gb) for one MIG device no live container holds,
lowest GPU minor then MIG index first. Unset, empty, void or none: nothing
is done. NVIDIA_MIG_CONFIG_DEVICES=all / NVIDIA_MIG_MONITOR_DEVICES=all add
the MIG config / monitor capability (needs CAP_SYS_ADMIN in the container's
bounding set).

Before changing anything it checks: exactly one MIG device; that no other
live container holds it; its nodes against the live driver tables and host
/dev; the container's device cgroup rules; its own capabilities. Then it
records the lease, creates the nodes inside the container root (never
following a symlink out of it) and, on cgroup v1, allows them in the
container's devices cgroup. All or nothing.

Leases (device, container id, pid and process start time) are kept in
STATE-DIR/leases.json, changed under a lock and replaced atomically. A lease
ends at poststop (mig-cdi-hook poststop), at mig-cdi-runtime's delete, or
when its process is gone or its pid was reused.

USAGE:
    mig-cdi-hook [OPTIONS] [prestart|createRuntime]
    mig-cdi-hook [OPTIONS] verify       createRuntime hook in CDI flows
    mig-cdi-hook [OPTIONS] poststop     release the container's leases
    mig-cdi-hook [OPTIONS] leases [--json]
    mig-cdi-hook [--log FILE] create-symlinks --link PATH=TARGET...
    mig-cdi-hook [--log FILE] update-ldcache --entry SONAME=PATH...
    mig-cdi-hook runtime RUNTIME-ARGS...   (or called as mig-cdi-runtime)

verify is the hook `mig-cdi-gen generate --hook-path` adds to each MIG device
of a spec, for runtimes that apply CDI themselves (podman, containerd, CRI-O,
docker 25+): it changes nothing in the container; it reads the config the
runtime made, refuses more than one MIG device among its device nodes, the
MIG config/monitor nodes without CAP_SYS_ADMIN in the bounding set, and
device rules that open other instances, and records the lease. A container
without MIG device nodes passes.

leases lists the leases: device, profile, container, pid, since, and whether
the holder is still alive (stale ones are dropped at the next change).

create-symlinks and update-ldcache are createContainer hooks a spec with the
driver's libraries names (mig-cdi-gen writes them): inside the container root,
never following a link out of it and running nothing from the image, they
make the libraries' soname links and add them to the image's loader cache
(/etc/ld.so.cache, rewritten atomically with the image's entries kept).

For engines without hook configuration or CDI (docker without CDI,
containerd 1.6, Kubernetes RuntimeClasses), the same binary called as
mig-cdi-runtime is an OCI runtime wrapper that writes the device into
config.json before runc or crun creates it, so the runtime owns the nodes
and device rules (see `mig-cdi-runtime --mig-cdi-help`).

OPTIONS:
    --spec-dir DIR   CDI spec directory; repeat for several, later ones win
                     (default: /etc/cdi then /var/run/cdi)
    --root DIR       host root under which /proc and /dev are read (default /)
    --state-dir DIR  where leases are kept (default /run/mig-cdi)
    --share          give a named device even when another live container
                     holds it (the lease is marked shared); `any` never shares
    --json           with leases: one JSON document
    --log FILE       append a debug trail to FILE
    -h, --help       print this help
    -V, --version    print the version

EXIT STATUS:
    0 done, or nothing requested; 1 refused or failed (one line on stderr).
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Run,
    /// `verify`: check a config a CDI runtime made, record the lease.
    Verify,
    /// `poststop`: release the container's leases.
    Poststop,
    /// `leases`: list them.
    Leases {
        json: bool,
    },
    /// `create-symlinks`: `(link, target)` in the container.
    CreateSymlinks(Vec<(String, String)>),
    /// `update-ldcache`: `(soname, path)` entries for the container's cache.
    UpdateLdcache(Vec<(String, String)>),
    Help,
    Version,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub action: Action,
    pub spec_dirs: Vec<PathBuf>,
    pub root: PathBuf,
    pub log: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub share: bool,
}

impl Settings {
    pub fn from_args(args: Vec<OsString>) -> Result<Self, HookError> {
        let mut settings = Settings {
            action: Action::Run,
            spec_dirs: Vec::new(),
            root: PathBuf::from("/"),
            log: None,
            state_dir: PathBuf::from(crate::lease::DEFAULT_STATE_DIR),
            share: false,
        };
        let mut json = false;
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let text = arg
                .to_str()
                .ok_or_else(|| HookError::Usage(format!("argument {arg:?} is not UTF-8")))?;
            let (flag, inline) = match text.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
                _ => (text, None),
            };
            let mut value = |name: &str| -> Result<PathBuf, HookError> {
                let value = match &inline {
                    Some(v) => Some(OsString::from(v)),
                    None => args.next(),
                };
                value
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
                    .ok_or_else(|| HookError::Usage(format!("{name} needs a value")))
            };
            match flag {
                "--spec-dir" => settings.spec_dirs.push(value(flag)?),
                "--root" => settings.root = value(flag)?,
                "--log" => settings.log = Some(value(flag)?),
                "--state-dir" => settings.state_dir = value(flag)?,
                "--share" => settings.share = true,
                "--json" => json = true,
                "verify" => settings.action = Action::Verify,
                "poststop" => settings.action = Action::Poststop,
                "leases" => settings.action = Action::Leases { json: false },
                "--link" | "--entry" => {
                    let pair = value(flag)?.display().to_string();
                    let (a, b) = pair
                        .split_once('=')
                        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
                        .ok_or_else(|| {
                            HookError::Usage(format!("{flag} takes NAME=VALUE, not {pair:?}"))
                        })?;
                    pairs.push((a.to_string(), b.to_string()));
                }
                "create-symlinks" => settings.action = Action::CreateSymlinks(Vec::new()),
                "update-ldcache" => settings.action = Action::UpdateLdcache(Vec::new()),
                "-h" | "--help" => settings.action = Action::Help,
                "-V" | "--version" => settings.action = Action::Version,
                // The stage, as NVIDIA's hook takes it: documentation only.
                "prestart" | "createRuntime" => {}
                other => {
                    return Err(HookError::Usage(format!(
                        "unexpected argument {other:?} (mig-cdi-hook runs as a prestart or \
                         createRuntime hook)"
                    )))
                }
            }
        }
        match &mut settings.action {
            Action::Leases { json: j } => *j = json,
            _ if json => return Err(HookError::Usage("--json goes with leases".into())),
            _ => {}
        }
        if !settings.state_dir.is_absolute() {
            return Err(HookError::Usage(format!(
                "--state-dir {} must be an absolute path",
                settings.state_dir.display()
            )));
        }
        match &mut settings.action {
            Action::CreateSymlinks(list) | Action::UpdateLdcache(list) => *list = pairs,
            _ if !pairs.is_empty() => {
                return Err(HookError::Usage(
                    "--link and --entry go with create-symlinks and update-ldcache".into(),
                ))
            }
            _ => {}
        }
        if settings.spec_dirs.is_empty() {
            settings.spec_dirs = DEFAULT_SPEC_DIRS.iter().map(PathBuf::from).collect();
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, HookError> {
        Settings::from_args(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn defaults() {
        let s = parse(&[]).unwrap();
        assert_eq!(
            s.spec_dirs,
            [PathBuf::from("/etc/cdi"), PathBuf::from("/var/run/cdi")]
        );
        assert_eq!(s.root, PathBuf::from("/"));
        assert_eq!(s.action, Action::Run);
    }

    #[test]
    fn flags_both_spellings_and_stage() {
        let s = parse(&[
            "prestart",
            "--spec-dir",
            "/a",
            "--spec-dir=/b",
            "--root=/fake",
            "--log",
            "/l",
        ])
        .unwrap();
        assert_eq!(s.spec_dirs, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(s.root, PathBuf::from("/fake"));
        assert_eq!(s.log, Some(PathBuf::from("/l")));
    }

    #[test]
    fn container_stages() {
        let s = parse(&[
            "create-symlinks",
            "--link",
            "/usr/lib64/libcuda.so.1=libcuda.so.580.1",
            "--link=/usr/lib64/libcuda.so=libcuda.so.1",
        ])
        .unwrap();
        assert_eq!(
            s.action,
            Action::CreateSymlinks(vec![
                ("/usr/lib64/libcuda.so.1".into(), "libcuda.so.580.1".into()),
                ("/usr/lib64/libcuda.so".into(), "libcuda.so.1".into()),
            ])
        );
        assert!(parse(&["update-ldcache", "--entry", "novalue"]).is_err());
        assert!(parse(&["--link", "/a=b"]).is_err());
    }

    #[test]
    fn lease_actions() {
        let s = parse(&["--state-dir=/s", "leases", "--json"]).unwrap();
        assert_eq!(s.action, Action::Leases { json: true });
        assert_eq!(s.state_dir, PathBuf::from("/s"));
        assert_eq!(parse(&["verify"]).unwrap().action, Action::Verify);
        let s = parse(&["--share", "poststop"]).unwrap();
        assert_eq!(s.action, Action::Poststop);
        assert!(s.share);
        assert_eq!(parse(&[]).unwrap().state_dir, PathBuf::from("/run/mig-cdi"));
    }

    #[test]
    fn bad_usage() {
        assert!(parse(&["--root"]).is_err());
        assert!(parse(&["--root="]).is_err());
        assert!(parse(&["poststart"]).is_err());
        assert!(parse(&["--json"]).is_err());
        assert!(parse(&["--state-dir", "rel", "leases"]).is_err());
        assert!(parse(&["--frobnicate"]).is_err());
        assert_eq!(parse(&["-h"]).unwrap().action, Action::Help);
        assert_eq!(parse(&["--version"]).unwrap().action, Action::Version);
    }
}
