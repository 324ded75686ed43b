//! `mig-cdi-runtime`: an OCI runtime wrapper that does what a CDI runtime
//! does, for engines that cannot read CDI specs (docker without CDI,
//! containerd 1.6, Kubernetes RuntimeClasses, plain runc).
//!
//! For `create` and `run` it reads the bundle's `config.json`, finds the
//! request (`NVIDIA_VISIBLE_DEVICES`, the `mig-cdi/devices` annotation, the
//! `cdi.k8s.io/*` annotations), resolves it through the CDI spec folders,
//! applies the hook's checks — one device, freshness against the live
//! driver, CAP_SYS_ADMIN for config/monitor, over-broad device rules — and
//! writes the device's CDI edits into `config.json`: `linux.devices`,
//! matching `linux.resources.devices` allow rules with the spec's
//! permissions, and the spec's env, mounts and hooks. The file is replaced
//! atomically, and the real runtime is `exec`ed with the original
//! arguments. The real runtime then owns every node and every device rule,
//! on cgroup v1 and v2 alike, so a `systemctl daemon-reload` that
//! re-applies the device policy cannot take the device away.
//!
//! Every other command, and a container that requests nothing, passes
//! through with `config.json` byte for byte as it was. A refusal prints one
//! line on stderr and, where the engine gave `--log`, in the runtime's log
//! (containerd's shim and docker read the error from there), and leaves
//! `config.json` untouched.
//!
//! It is the hook binary called by another name (a link named
//! `mig-cdi-runtime`, or `mig-cdi-hook runtime ARGS`): one statically linked
//! program, so both share the pipeline and the hardening (no loader
//! variables), and one file to install.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mig_cdi_core::cdi::render::VerifyHook;
use mig_cdi_core::cdi::view::OtherEdits;
use mig_cdi_core::cgroup;
use serde_json::{json, Value};

use crate::alloc::{self, Claim};
use crate::error::HookError;
use crate::host::Host;
use crate::input::{self, Read};
use crate::lease::{Holder, Ledger};
use crate::log::Log;
use crate::plan::{self, Rules};
use crate::resolve::{self, Resolved};
use crate::verify::{self, CheckedNode};

/// Default configuration file.
pub const CONFIG_FILE: &str = "/etc/mig-cdi/runtime.conf";

pub const HELP: &str = "\
mig-cdi-runtime: an OCI runtime that gives a container the one MIG device it
asks for, by writing the device into its config.json before the real runtime
(runc, crun) creates it.

USAGE:
    mig-cdi-runtime [--mig-cdi-OPTION VALUE ...] RUNTIME-ARGS...

It is called by the engine exactly as runc is. For `create` and `run` it
reads the bundle's config.json; the request is NVIDIA_VISIBLE_DEVICES in the
container's environment, the annotation mig-cdi/devices, or cdi.k8s.io/*
annotations naming nvidia.com devices. It checks what mig-cdi-hook checks
(one MIG device, the spec against the live driver, CAP_SYS_ADMIN for
NVIDIA_MIG_CONFIG/MONITOR_DEVICES, device rules that would open other
instances, that no other live container holds the device), leases it,
adds linux.devices, linux.resources.devices allow rules, the spec's env,
mounts and hooks, and mig-cdi-hook's verify (createRuntime) and poststop
hooks, replaces config.json atomically and runs the real runtime with the
same arguments. NVIDIA_VISIBLE_DEVICES=any or any:<profile> picks a free MIG
device. `delete` releases the container's leases. Anything else passes
through.

SETTINGS (first found wins: option, environment, config file, default):
    --mig-cdi-runtime PATH    MIG_CDI_RUNTIME    runtime = PATH   the real runtime (runc)
    --mig-cdi-spec-dir DIR    MIG_CDI_SPEC_DIRS  spec-dir = DIR   CDI folders, repeatable
                              (colon-separated)                   (/etc/cdi, /var/run/cdi)
    --mig-cdi-root DIR        MIG_CDI_ROOT       root = DIR       host root of /proc and /dev (/)
    --mig-cdi-log FILE        MIG_CDI_LOG        log = FILE       debug trail
    --mig-cdi-state-dir DIR   MIG_CDI_STATE_DIR  state-dir = DIR  leases (/run/mig-cdi)
    --mig-cdi-share           MIG_CDI_SHARE=1    share = true     give a named device that
                                                                  another container holds
    --mig-cdi-config FILE     MIG_CDI_RUNTIME_CONFIG              the config file
                              (default: <this program's path>.conf if it exists, else
                              /etc/mig-cdi/runtime.conf; `key = value` lines, # comments)

The --mig-cdi-* options go before the runtime's own arguments (docker's
runtimeArgs, containerd's options put them there). mig-cdi-runtime never
runs itself as the real runtime.

EXIT STATUS:
    the real runtime's; 1 when a request is refused (config.json untouched).
";

/// Where the wrapper's settings came from, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSettings {
    /// The real runtime, as configured (a name looked up on PATH, or a path).
    pub runtime: OsString,
    pub spec_dirs: Vec<PathBuf>,
    pub root: PathBuf,
    pub log: Option<PathBuf>,
    /// Where leases are kept.
    pub state_dir: PathBuf,
    /// Give a named device another live container holds.
    pub share: bool,
}

/// The wrapper's command line, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub settings: RuntimeSettings,
    /// The real runtime's arguments, unchanged.
    pub args: Vec<OsString>,
    /// `create`, `run`, `delete`, ... (`None` for `--version` and the like).
    pub command: Option<String>,
    /// The bundle of `create`/`run` (default: the working directory).
    pub bundle: PathBuf,
    /// The container id of `create`, `run` and `delete` (their last
    /// argument).
    pub container: Option<String>,
    /// `--log FILE` and whether `--log-format json`.
    pub runtime_log: Option<(PathBuf, bool)>,
    pub help: bool,
}

/// runc's and crun's global options that take a value.
const GLOBAL_WITH_VALUE: &[&str] = &[
    "--root",
    "--log",
    "--log-format",
    "--log-level",
    "--criu",
    "--rootless",
    "--cgroup-manager",
];

fn usage(text: String) -> HookError {
    HookError::Usage(text)
}

/// `key = value` lines.
fn config_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

impl Invocation {
    /// Split `args` (without argv[0]); `env` and `read_config` give the
    /// environment and a config file's text; `beside` is
    /// `<argv[0]>.conf` when the program was called by a path.
    pub fn parse(
        args: Vec<OsString>,
        beside: Option<PathBuf>,
        env: impl Fn(&str) -> Option<OsString>,
        read_config: impl Fn(&Path) -> Option<String>,
    ) -> Result<Self, HookError> {
        let mut args = args.into_iter().peekable();
        let mut flag_runtime = None;
        let mut flag_dirs = Vec::new();
        let mut flag_root = None;
        let mut flag_log = None;
        let mut flag_config = None;
        let mut flag_state = None;
        let mut flag_share = false;
        let mut help = false;
        while let Some(arg) = args.peek() {
            let Some(text) = arg.to_str().filter(|t| t.starts_with("--mig-cdi-")) else {
                break;
            };
            let text = text.to_string();
            args.next();
            if text == "--mig-cdi-help" {
                help = true;
                continue;
            }
            if text == "--mig-cdi-share" {
                flag_share = true;
                continue;
            }
            let (flag, value) = match text.split_once('=') {
                Some((flag, value)) => (flag.to_string(), Some(OsString::from(value))),
                None => (text.clone(), args.next()),
            };
            let value = value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| usage(format!("{flag} needs a value")))?;
            match flag.as_str() {
                "--mig-cdi-runtime" => flag_runtime = Some(value),
                "--mig-cdi-spec-dir" => flag_dirs.push(PathBuf::from(value)),
                "--mig-cdi-root" => flag_root = Some(PathBuf::from(value)),
                "--mig-cdi-log" => flag_log = Some(PathBuf::from(value)),
                "--mig-cdi-config" => flag_config = Some(PathBuf::from(value)),
                "--mig-cdi-state-dir" => flag_state = Some(PathBuf::from(value)),
                other => return Err(usage(format!("unknown option {other}"))),
            }
        }
        let args: Vec<OsString> = args.collect();

        let config_path = flag_config
            .or_else(|| env("MIG_CDI_RUNTIME_CONFIG").map(PathBuf::from))
            .or_else(|| beside.filter(|p| read_config(p).is_some()))
            .unwrap_or_else(|| PathBuf::from(CONFIG_FILE));
        let file = read_config(&config_path)
            .map(|text| config_file(&text))
            .unwrap_or_default();
        let from_file = |key: &str| -> Vec<String> {
            file.iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .collect()
        };
        for (key, _) in &file {
            if !matches!(
                key.as_str(),
                "runtime" | "spec-dir" | "root" | "log" | "state-dir" | "share"
            ) {
                return Err(usage(format!(
                    "{}: unknown setting {key:?} (runtime, spec-dir, root, log, state-dir, share)",
                    config_path.display()
                )));
            }
        }
        let runtime = flag_runtime
            .or_else(|| env("MIG_CDI_RUNTIME"))
            .or_else(|| from_file("runtime").pop().map(OsString::from))
            .unwrap_or_else(|| OsString::from("runc"));
        let spec_dirs = if !flag_dirs.is_empty() {
            flag_dirs
        } else if let Some(dirs) = env("MIG_CDI_SPEC_DIRS") {
            std::env::split_paths(&dirs).collect()
        } else if !from_file("spec-dir").is_empty() {
            from_file("spec-dir")
                .into_iter()
                .map(PathBuf::from)
                .collect()
        } else {
            mig_cdi_core::cdi::folders::default_spec_dirs()
        };
        let root = flag_root
            .or_else(|| env("MIG_CDI_ROOT").map(PathBuf::from))
            .or_else(|| from_file("root").pop().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/"));
        let log = flag_log
            .or_else(|| env("MIG_CDI_LOG").map(PathBuf::from))
            .or_else(|| from_file("log").pop().map(PathBuf::from));

        let state_dir = flag_state
            .or_else(|| env("MIG_CDI_STATE_DIR").map(PathBuf::from))
            .or_else(|| from_file("state-dir").pop().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(crate::lease::DEFAULT_STATE_DIR));
        if !state_dir.is_absolute() {
            return Err(usage(format!(
                "the state dir {} must be an absolute path",
                state_dir.display()
            )));
        }
        let yes = |v: &str| matches!(v.trim(), "1" | "true" | "yes");
        let share = flag_share
            || env("MIG_CDI_SHARE").is_some_and(|v| yes(&v.to_string_lossy()))
            || from_file("share").pop().is_some_and(|v| yes(&v));

        let (command, bundle, runtime_log) = split(&args);
        let container = match command.as_deref() {
            Some("create" | "run" | "delete") => args
                .last()
                .map(|a| a.to_string_lossy().into_owned())
                .filter(|a| !a.starts_with('-') && Some(a.as_str()) != command.as_deref()),
            _ => None,
        };
        Ok(Self {
            settings: RuntimeSettings {
                runtime,
                spec_dirs,
                root,
                log,
                state_dir,
                share,
            },
            args,
            command,
            bundle,
            container,
            runtime_log,
            help,
        })
    }
}

/// The command, the bundle and the runtime's own log from its arguments.
fn split(args: &[OsString]) -> (Option<String>, PathBuf, Option<(PathBuf, bool)>) {
    let mut command = None;
    let mut log = None;
    let mut json = false;
    let mut at = 0;
    while at < args.len() {
        let text = args[at].to_string_lossy();
        if !text.starts_with('-') {
            command = Some(text.into_owned());
            at += 1;
            break;
        }
        let (flag, inline) = match text.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (text.to_string(), None),
        };
        let value = if GLOBAL_WITH_VALUE.contains(&flag.as_str()) && inline.is_none() {
            at += 1;
            args.get(at).map(|v| v.to_string_lossy().into_owned())
        } else {
            inline
        };
        match flag.as_str() {
            "--log" => log = value.map(PathBuf::from),
            "--log-format" => json = value.as_deref() == Some("json"),
            _ => {}
        }
        at += 1;
    }
    let mut bundle = PathBuf::from(".");
    while at < args.len() {
        let text = args[at].to_string_lossy();
        match text.split_once('=') {
            Some(("--bundle" | "-b", value)) => bundle = PathBuf::from(value),
            _ if text == "--bundle" || text == "-b" => {
                if let Some(value) = args.get(at + 1) {
                    bundle = PathBuf::from(value);
                    at += 1;
                }
            }
            _ => {}
        }
        at += 1;
    }
    (command, bundle, log.map(|path| (path, json)))
}

/// What [`edit_bundle`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Edited {
    /// Nothing requested: `config.json` untouched (why).
    Untouched(String),
    /// The device's edits were written; the nodes added.
    Device { name: String, nodes: Vec<String> },
}

/// How the wrapper leases: for which container, where, and which hooks
/// carry the lease on.
pub struct LeaseSettings<'a> {
    /// The container id from the command line.
    pub container: Option<&'a str>,
    /// This process (it becomes the real runtime's `create`).
    pub pid: i32,
    pub share: bool,
    pub state_dir: &'a Path,
    /// The host root the wrapper reads the driver under (`--root` of the
    /// hooks).
    pub root: &'a Path,
    /// Absolute path of this program, for the config's hooks.
    pub exe: &'a Path,
}

/// Check the request of `bundle/config.json`, lease its device, and write
/// the device in. On any refusal after the lease, the lease is dropped
/// again and `config.json` is untouched.
pub fn edit_bundle(
    host: &dyn Host,
    spec_dirs: &[PathBuf],
    bundle: &Path,
    ledger: &mut dyn Ledger,
    leasing: &LeaseSettings<'_>,
    log: &mut Log,
) -> Result<Edited, HookError> {
    let (bytes, config) = match input::config(host, bundle, None)? {
        Read::Nothing(why) => return Ok(Edited::Untouched(why)),
        Read::Request(read) => *read,
    };
    let Some(container) = input::container(&config, None)? else {
        return Ok(Edited::Untouched("no MIG device requested".into()));
    };
    log.line(format_args!("request: {}", container.request.source));
    let holder = Holder::of(host, leasing.container, leasing.pid)?;
    if !leasing.exe.is_absolute() {
        return Err(HookError::Usage(
            "cannot tell this program's own path (for the lease hooks); run it by an absolute \
             path"
                .into(),
        ));
    }
    let catalog = resolve::load(host, spec_dirs, &container.request.wanted, log);
    let claim = Claim {
        holder: &holder,
        by: "runtime",
        share: leasing.share,
    };
    let (device, lease) = alloc::give(host, ledger, &catalog, &container.request, &claim)?;
    log.line(format_args!("lease: {lease:?}"));
    let result = write_device(
        host,
        bundle,
        &bytes,
        &container,
        &device,
        leasing,
        lease.is_some(),
    );
    if let (Err(_), Some(lease)) = (&result, &lease) {
        let _ = alloc::release(ledger, &lease.container, Some(&lease.device));
    }
    result
}

fn write_device(
    host: &dyn Host,
    bundle: &Path,
    bytes: &[u8],
    container: &input::Container,
    device: &Resolved,
    leasing: &LeaseSettings<'_>,
    leased: bool,
) -> Result<Edited, HookError> {
    let verified = verify::verify(host, container, device)?;
    plan::check_rules(&Rules {
        nodes: &verified.nodes,
        rules: &container.rules,
        sys_admin: &container.sys_admin,
        caps_major: verified.caps_major,
        nvidia_major: verified.nvidia_major,
        management_minors: &verified.management_minors,
    })?;
    let mut value: Value =
        serde_json::from_str(&String::from_utf8_lossy(bytes)).map_err(|err| {
            input::InputError::Config {
                path: bundle.join("config.json"),
                at: input::position(&err),
            }
        })?;
    let mut other = device.device.spec_edits.clone();
    let own = &device.device.edits;
    other.env.extend(own.env.iter().cloned());
    other.mounts.extend(own.mounts.iter().cloned());
    other.hooks.extend(own.hooks.iter().cloned());
    // The spec's own lease hooks may name another state dir: the
    // wrapper's leases are carried by hooks of its own settings.
    other.hooks.retain(|h| !alloc::is_lease_hook(h));
    if leased {
        other.hooks.extend(lease_hooks(leasing));
    }
    apply_edits(&mut value, &verified.nodes, &container.rules, &other).map_err(|why| {
        HookError::Usage(format!(
            "cannot add {} to {}: {why}",
            device.qualified(),
            bundle.join("config.json").display()
        ))
    })?;
    write_config(bundle, &value)?;
    Ok(Edited::Device {
        name: device.qualified(),
        nodes: verified.nodes.iter().map(|n| n.path.clone()).collect(),
    })
}

/// `verify` at createRuntime moves the lease from this process (which
/// becomes the real runtime's `create`) to the container's own process;
/// `poststop` ends it when the runtime deletes the container. The same
/// hooks `mig-cdi-gen generate --hook-path` writes, with the wrapper's
/// state dir, `--root` and `--share`.
fn lease_hooks(leasing: &LeaseSettings<'_>) -> Vec<Value> {
    let mut extra = Vec::new();
    if leasing.root != Path::new("/") {
        extra.push("--root".to_string());
        extra.push(leasing.root.display().to_string());
    }
    if leasing.share {
        extra.push("--share".into());
    }
    VerifyHook {
        path: leasing.exe.display().to_string(),
        state_dir: Some(leasing.state_dir.display().to_string()),
        extra,
    }
    .hooks()
    .iter()
    .map(|hook| serde_json::to_value(hook).expect("a hook serializes"))
    .collect()
}

/// The CDI edits of one device, applied to an OCI config as a CDI runtime
/// applies them.
pub fn apply_edits(
    config: &mut Value,
    nodes: &[CheckedNode],
    rules: &[cgroup::DeviceRule],
    other: &OtherEdits,
) -> Result<(), String> {
    if !config.is_object() {
        return Err("config.json is not a JSON object".into());
    }
    let linux = object_at(config, "linux")?;
    let devices = array_at(linux, "devices")?;
    for node in nodes {
        let existing = devices
            .iter()
            .find(|d| d["path"].as_str() == Some(node.path.as_str()));
        match existing {
            Some(d) if d["major"] == node.major && d["minor"] == node.minor => {}
            Some(d) => {
                return Err(format!(
                    "linux.devices already has {} as {}:{}, not {}:{}",
                    node.path, d["major"], d["minor"], node.major, node.minor
                ))
            }
            None => devices.push(json!({
                "path": node.path, "type": "c", "major": node.major, "minor": node.minor,
                "fileMode": node.mode, "uid": 0, "gid": 0,
            })),
        }
    }
    let resources = object_at(linux, "resources")?;
    let allow = array_at(resources, "devices")?;
    for node in nodes {
        let rule = json!({
            "allow": true, "type": "c", "major": node.major, "minor": node.minor,
            "access": node.access.to_string(),
        });
        if !cgroup::missing(rules, node.major, node.minor, node.access).is_empty()
            && !allow.contains(&rule)
        {
            allow.push(rule);
        }
    }
    if !other.env.is_empty() {
        let env = array_at(object_at(config, "process")?, "env")?;
        for entry in &other.env {
            let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
            env.retain(|e| {
                e.as_str()
                    .is_none_or(|e| e.split_once('=').map_or(e, |(k, _)| k) != key)
            });
            env.push(json!(entry));
        }
    }
    if !other.mounts.is_empty() {
        let mounts = array_at(config, "mounts")?;
        for mount in &other.mounts {
            let (Some(source), Some(destination)) =
                (mount["hostPath"].as_str(), mount["containerPath"].as_str())
            else {
                return Err("a spec mount lacks hostPath or containerPath".into());
            };
            let mut entry = json!({"destination": destination, "source": source,
                "options": mount.get("options").cloned().unwrap_or(json!([]))});
            entry["type"] = mount.get("type").cloned().unwrap_or(json!("bind"));
            // Idempotent: a bundle edited twice (a retried create) gets
            // each edit once.
            if !mounts.contains(&entry) {
                mounts.push(entry);
            }
        }
    }
    for hook in &other.hooks {
        let (Some(stage), Some(path)) = (hook["hookName"].as_str(), hook["path"].as_str()) else {
            return Err("a spec hook lacks hookName or path".into());
        };
        // An explicit environment, never the container's (CVE-2025-23266).
        if hook["env"].as_array().is_none_or(Vec::is_empty) {
            return Err(format!(
                "the spec's {stage} hook {path} has no explicit env; refusing to run a hook that \
                 would inherit one"
            ));
        }
        let mut entry = json!({"path": path, "env": hook["env"]});
        for key in ["args", "timeout"] {
            if let Some(v) = hook.get(key) {
                entry[key] = v.clone();
            }
        }
        let hooks = array_at(object_at(config, "hooks")?, stage)?;
        if !hooks.contains(&entry) {
            hooks.push(entry);
        }
    }
    Ok(())
}

fn object_at<'a>(value: &'a mut Value, key: &str) -> Result<&'a mut Value, String> {
    let slot = &mut value[key];
    if slot.is_null() {
        *slot = json!({});
    }
    if slot.is_object() {
        Ok(slot)
    } else {
        Err(format!("{key} is not an object"))
    }
}

fn array_at<'a>(value: &'a mut Value, key: &str) -> Result<&'a mut Vec<Value>, String> {
    let slot = &mut value[key];
    if slot.is_null() {
        *slot = json!([]);
    }
    slot.as_array_mut()
        .ok_or_else(|| format!("{key} is not a list"))
}

/// Replace `bundle/config.json` with `value`, atomically, keeping its mode
/// (a symlink at that name is replaced, never written through). No fsync:
/// a bundle lives for one container start and does not outlast a reboot,
/// and the rename alone gives readers the old file or the new one, whole;
/// an fsync would add milliseconds to every start on some disks.
fn write_config(bundle: &Path, value: &Value) -> Result<(), HookError> {
    let path = bundle.join("config.json");
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| HookError::Io { op, path, source }
    };
    let mode = std::fs::symlink_metadata(&path)
        .ok()
        .filter(|m| m.is_file())
        .map_or(0o644, |m| m.permissions().mode() & 0o7777);
    let tmp = bundle.join(format!(
        ".config.json.mig-cdi-runtime.{}",
        std::process::id()
    ));
    let bytes = serde_json::to_vec(value).expect("a JSON value serializes");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(&bytes)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|err| {
        let _ = std::fs::remove_file(&tmp);
        io("rewrite", &path)(err)
    })
}

/// The real runtime as a path: a name is looked up on `PATH`; refused when
/// it is this program.
pub fn real_runtime(configured: &OsStr, path_var: Option<OsString>) -> Result<PathBuf, HookError> {
    let candidate = if Path::new(configured).components().count() > 1 {
        Some(PathBuf::from(configured))
    } else {
        path_var.and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(configured))
                .find(|p| p.is_file())
        })
    };
    let Some(found) = candidate.filter(|p| p.is_file()) else {
        return Err(usage(format!(
            "the real runtime {configured:?} is not found; set it with --mig-cdi-runtime, \
             MIG_CDI_RUNTIME or `runtime =` in {CONFIG_FILE}"
        )));
    };
    let me = std::fs::canonicalize("/proc/self/exe").ok();
    if me.is_some() && std::fs::canonicalize(&found).ok() == me {
        return Err(usage(format!(
            "the real runtime {} is mig-cdi-runtime itself; point --mig-cdi-runtime (or \
             MIG_CDI_RUNTIME, or `runtime =` in {CONFIG_FILE}) at runc or crun",
            found.display()
        )));
    }
    Ok(found)
}

/// Say a refusal where the engine looks: the runtime's `--log`, in its
/// format (containerd's shim reads the last error from there).
pub fn log_error(runtime_log: &Option<(PathBuf, bool)>, message: &str) {
    let Some((path, json)) = runtime_log else {
        return;
    };
    let line = if *json {
        format!(
            "{}\n",
            json!({"level": "error", "msg": message, "time": now_rfc3339()})
        )
    } else {
        format!(
            "time=\"{}\" level=error msg={}\n",
            now_rfc3339(),
            serde_json::to_string(message).expect("a string serializes")
        )
    };
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
    {
        let _ = file.write_all(line.as_bytes());
    }
}

/// The time as RFC 3339 in UTC, to the second.
fn now_rfc3339() -> String {
    crate::lease::rfc3339(crate::lease::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)], file: Option<&str>) -> Invocation {
        Invocation::parse(
            args.iter().map(OsString::from).collect(),
            None,
            |k| {
                env.iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| OsString::from(v))
            },
            |_| file.map(str::to_string),
        )
        .unwrap()
    }

    #[test]
    fn docker_shim_command_line() {
        let i = parse(
            &[
                "--root",
                "/var/run/docker/runtime-runc/moby",
                "--log",
                "/run/containerd/x/log.json",
                "--log-format",
                "json",
                "create",
                "--bundle",
                "/run/containerd/b",
                "--pid-file",
                "/run/p",
                "abc",
            ],
            &[],
            None,
        );
        assert_eq!(i.command.as_deref(), Some("create"));
        assert_eq!(i.bundle, PathBuf::from("/run/containerd/b"));
        assert_eq!(
            i.runtime_log,
            Some((PathBuf::from("/run/containerd/x/log.json"), true))
        );
        assert_eq!(i.settings.runtime, OsString::from("runc"));
        assert_eq!(i.args.len(), 12);
    }

    #[test]
    fn own_options_then_env_then_file() {
        let i = parse(
            &[
                "--mig-cdi-runtime",
                "/usr/bin/crun",
                "--mig-cdi-spec-dir=/s",
                "run",
                "-b",
                "/b",
                "x",
            ],
            &[("MIG_CDI_RUNTIME", "/env/runc")],
            Some("runtime = /file/runc\nroot = /fake\n# note\n"),
        );
        assert_eq!(i.settings.runtime, OsString::from("/usr/bin/crun"));
        assert_eq!(i.settings.spec_dirs, [PathBuf::from("/s")]);
        assert_eq!(i.settings.root, PathBuf::from("/fake"));
        assert_eq!(i.bundle, PathBuf::from("/b"));
        assert_eq!(i.args, ["run", "-b", "/b", "x"]);
        let i = parse(&["state", "x"], &[("MIG_CDI_RUNTIME", "/env/runc")], None);
        assert_eq!(i.settings.runtime, OsString::from("/env/runc"));
        assert_eq!(i.bundle, PathBuf::from("."));
        assert!(Invocation::parse(
            vec!["--mig-cdi-frob".into(), "x".into()],
            None,
            |_| None,
            |_| None
        )
        .is_err());
        assert!(
            Invocation::parse(vec![], None, |_| None, |_| Some("colour = red".into())).is_err()
        );
        // <argv0>.conf is read when it exists.
        let i = Invocation::parse(
            vec!["run".into()],
            Some("/opt/mig-cdi-runtime.conf".into()),
            |_| None,
            |p| (p == Path::new("/opt/mig-cdi-runtime.conf")).then(|| "runtime = /c".into()),
        )
        .unwrap();
        assert_eq!(i.settings.runtime, OsString::from("/c"));
    }

    #[test]
    fn never_itself() {
        let me = std::fs::canonicalize("/proc/self/exe").unwrap();
        let err = real_runtime(me.as_os_str(), None).unwrap_err().to_string();
        assert!(err.contains("is mig-cdi-runtime itself"), "{err}");
        let err = real_runtime(OsStr::new("no-such-runtime-x"), Some("/nonexistent".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not found"), "{err}");
        assert_eq!(
            real_runtime(OsStr::new("sh"), Some("/nonexistent:/bin".into())).unwrap(),
            PathBuf::from("/bin/sh")
        );
    }

    #[test]
    fn edits_nodes_rules_env_mounts_hooks() {
        use mig_cdi_core::cgroup::Access;
        use mig_cdi_core::nodes::NodeRole;
        let node = |path: &str, major, minor, access| CheckedNode {
            path: path.into(),
            major,
            minor,
            mode: 0o666,
            role: NodeRole::Gpu,
            access,
            cap: None,
        };
        let nodes = [
            node("/dev/nvidia0", 195, 0, Access::RW),
            node("/dev/nvidia-caps/nvidia-cap12", 241, 12, Access::READ),
        ];
        let rules = [cgroup::DeviceRule::allow_char(195, 0, Access::RW)];
        let mut config = json!({"process": {"env": ["A=1", "X=old"]}, "linux": {}});
        let other = OtherEdits {
            env: vec!["X=new".into()],
            mounts: vec![json!({"hostPath": "/h", "containerPath": "/c", "options": ["ro"]})],
            hooks: vec![json!({"hookName": "createContainer", "path": "/bin/h", "env": ["P=1"]})],
        };
        apply_edits(&mut config, &nodes, &rules, &other).unwrap();
        assert_eq!(config["linux"]["devices"].as_array().unwrap().len(), 2);
        assert_eq!(
            config["linux"]["resources"]["devices"],
            json!([{"allow": true, "type": "c", "major": 241, "minor": 12, "access": "r"}])
        );
        assert_eq!(config["process"]["env"], json!(["A=1", "X=new"]));
        assert_eq!(config["mounts"][0]["destination"], "/c");
        assert_eq!(config["hooks"]["createContainer"][0]["path"], "/bin/h");
        // Idempotent for nodes that are there with the same number.
        let mut again = config.clone();
        apply_edits(&mut again, &nodes, &rules, &OtherEdits::default()).unwrap();
        assert_eq!(again["linux"]["devices"], config["linux"]["devices"]);
        // And for the same edits again: one mount, one hook, one env entry.
        apply_edits(&mut again, &nodes, &rules, &other).unwrap();
        assert_eq!(again, config);
        // A hook without its own env is refused.
        let bad = OtherEdits {
            hooks: vec![json!({"hookName": "createContainer", "path": "/bin/h"})],
            ..Default::default()
        };
        assert!(apply_edits(&mut json!({}), &nodes, &rules, &bad)
            .unwrap_err()
            .contains("no explicit env"));
        // Another node at one of the paths is refused.
        let mut clash =
            json!({"linux": {"devices": [{"path": "/dev/nvidia0", "major": 1, "minor": 3}]}});
        assert!(apply_edits(&mut clash, &nodes, &rules, &OtherEdits::default()).is_err());
    }

    #[test]
    fn rfc3339_is_well_formed() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}
