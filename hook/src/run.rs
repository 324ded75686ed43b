//! One hook run as a pipeline of typed stages, every check before the
//! first change:
//!
//! input (state, config, request) → resolve (spec folders, one-device
//! rule) → verify (freshness against the live driver, privileges, cgroup
//! mode) → plan (device rules, own capabilities) → apply (the kernel).
//!
//! Every read goes through [`Host`] and every write through [`Kernel`],
//! both passed in, so the whole run is tested in memory (see the tests
//! below) and `main` only picks the real ones.

use crate::alloc::{self, Claim};
use crate::cdi_check;
use crate::cli::{Action, Settings};
use crate::container;
use crate::error::HookError;
use crate::host::Host;
use crate::inject::{self, Report};
use crate::input::{self, Read};
use crate::kernel::Kernel;
use crate::lease::{self, Holder, Lease, Ledger};
use crate::log::Log;
use crate::plan::{self, PlanInput};
use crate::resolve::{self, Resolved};
use crate::verify;

/// What a run did: nothing (and why), or the injection's report.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Nothing(String),
    Injected(Report),
}

pub fn run(
    settings: &Settings,
    stdin: &[u8],
    host: &dyn Host,
    kernel: &mut dyn Kernel,
    ledger: &mut dyn Ledger,
    log: &mut Log,
) -> Result<Outcome, HookError> {
    let input = match input::read(host, stdin)? {
        Read::Nothing(why) => {
            log.line(format_args!("{why}"));
            return Ok(Outcome::Nothing(why));
        }
        Read::Request(input) => input,
    };
    let container = &input.container;
    log.line(format_args!("request: {}", container.request.source));

    let catalog = resolve::load(host, &settings.spec_dirs, &container.request.wanted, log);
    let holder = Holder::of(host, input.state.id.as_deref(), input.pid)?;
    let claim = Claim {
        holder: &holder,
        by: "hook",
        share: settings.share,
    };
    let (device, lease) = alloc::give(host, ledger, &catalog, &container.request, &claim)?;
    log.line(format_args!(
        "resolved {} to {} from {}; lease: {lease:?}",
        device.names.join(", "),
        device.qualified(),
        device.device.file.display()
    ));
    let result = inject(settings, &input, &device, host, kernel, log);
    if let (Err(_), Some(lease)) = (&result, &lease) {
        // Nothing was given: the device is free again.
        let _ = alloc::release(ledger, &lease.container, Some(&lease.device));
    }
    result
}

/// Verify, plan and apply one resolved device.
fn inject(
    settings: &Settings,
    input: &input::Input,
    device: &Resolved,
    host: &dyn Host,
    kernel: &mut dyn Kernel,
    log: &mut Log,
) -> Result<Outcome, HookError> {
    let container = &input.container;
    verify::nodes_only(device)?;
    let verified = verify::verify(host, container, device)?;
    let cgroup = verify::cgroup_mode(host, input.pid)?;
    log.line(format_args!(
        "nodes checked against the driver and host /dev under {}; cgroup: {cgroup:?}",
        settings.root.display(),
    ));

    let plan = plan::build(PlanInput {
        pid: input.pid,
        root: input.root.clone(),
        owner: input.owner,
        nodes: verified.nodes,
        rules: &container.rules,
        sys_admin: container.sys_admin.clone(),
        caps_major: verified.caps_major,
        nvidia_major: verified.nvidia_major,
        management_minors: verified.management_minors,
        cgroup,
    })?;
    let own = host.privileges().map_err(|source| HookError::Io {
        op: "read",
        path: "/proc/self/status (own capabilities)".into(),
        source,
    })?;
    plan::missing_own_caps(&plan, &own)?;
    log.line(format_args!("plan: {plan:?}"));

    let report = inject::apply(&plan, kernel, log)?;
    log.line(format_args!(
        "done: created {:?}, kept {:?}, cgroup {:?}",
        report.created, report.kept, report.cgroup_lines
    ));
    Ok(Outcome::Injected(report))
}

/// What `verify` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No MIG device in the config (why).
    Nothing(String),
    /// One device, leased.
    Leased(Lease),
}

/// `verify`: check the config a CDI runtime (or mig-cdi-runtime) made and
/// lease its one MIG device. Changes nothing in the container.
pub fn verify_config(
    settings: &Settings,
    stdin: &[u8],
    host: &dyn Host,
    ledger: &mut dyn Ledger,
    log: &mut Log,
) -> Result<Verdict, HookError> {
    let state = crate::state::State::parse(stdin)?;
    let (_, config) = match input::config(host, &state.bundle, None)? {
        Read::Nothing(why) => return Ok(Verdict::Nothing(why)),
        Read::Request(read) => *read,
    };
    let Some(found) = cdi_check::check(host, &config)? else {
        let why = "no MIG device among the container's device nodes".to_string();
        log.line(format_args!("{why}"));
        return Ok(Verdict::Nothing(why));
    };
    log.line(format_args!(
        "verified: one MIG device, {} ({})",
        found.wanted.name, found.wanted.key
    ));
    let holder = Holder::of(host, state.id.as_deref(), state.pid()?)?;
    let lease = alloc::claim(
        host,
        ledger,
        &found.wanted,
        &Claim {
            holder: &holder,
            by: "verify",
            share: settings.share,
        },
    )?;
    log.line(format_args!("lease: {lease:?}"));
    Ok(Verdict::Leased(lease))
}

/// `poststop`: the container is gone; so are its leases. A lease store
/// that cannot be read or changed is said on stderr but fails nothing (the
/// container has stopped; its lease ends with its process anyway), and a
/// container that holds no lease takes no exclusive lock.
pub fn poststop(stdin: &[u8], ledger: &mut dyn Ledger, log: &mut Log) -> Result<usize, HookError> {
    let state = crate::state::State::parse(stdin)?;
    let Some(id) = state.id.as_deref().filter(|id| !id.is_empty()) else {
        log.line(format_args!("poststop: the state names no container id"));
        return Ok(0);
    };
    let held = match ledger.snapshot() {
        Ok(leases) => leases.iter().any(|l| l.container == id),
        Err(err) => {
            warn(log, &format!("poststop {id}: {err}"));
            return Ok(0);
        }
    };
    if !held {
        return Ok(0);
    }
    match alloc::release(ledger, id, None) {
        Ok(dropped) => {
            log.line(format_args!(
                "poststop: released {dropped} lease(s) of {id}"
            ));
            Ok(dropped)
        }
        Err(err) => {
            warn(log, &format!("poststop {id}: {err}"));
            Ok(0)
        }
    }
}

fn warn(log: &mut Log, message: &str) {
    log.line(format_args!("warning: {message}"));
    eprintln!("mig-cdi-hook: warning: {message}");
}

/// `leases`: the list, as text or JSON.
pub fn leases(host: &dyn Host, ledger: &dyn Ledger, json: bool) -> Result<String, HookError> {
    let leases = ledger.snapshot()?;
    let rows: Vec<(Lease, lease::Liveness)> = leases
        .into_iter()
        .map(|l| {
            let live = lease::liveness(host, &l);
            (l, live)
        })
        .collect();
    if json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|(l, live)| {
                serde_json::json!({
                    "device": l.name,
                    "nodes": l.device,
                    "profile": l.profile,
                    "container": l.container,
                    "pid": l.pid,
                    "since": lease::rfc3339(l.since),
                    "by": l.by,
                    "shared": l.shared,
                    "stale": !live.is_live(),
                    "state": live.to_string(),
                })
            })
            .collect();
        let doc = serde_json::json!({"file": ledger.place(), "leases": list});
        return Ok(serde_json::to_string_pretty(&doc).expect("JSON") + "\n");
    }
    if rows.is_empty() {
        return Ok(format!("no leases ({})\n", ledger.place()));
    }
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|(l, live)| {
            [
                l.name.clone(),
                l.device.to_string(),
                l.profile.clone().unwrap_or_else(|| "-".into()),
                l.container.clone(),
                l.pid.to_string(),
                lease::rfc3339(l.since),
                if l.shared {
                    format!("{live}, shared")
                } else {
                    live.to_string()
                },
            ]
        })
        .collect();
    let header = [
        "DEVICE",
        "NODES",
        "PROFILE",
        "CONTAINER",
        "PID",
        "SINCE",
        "STATE",
    ];
    let mut widths = header.map(str::len);
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header.map(String::from)).chain(table) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    Ok(out)
}

/// What a container stage did.
#[derive(Debug, PartialEq, Eq)]
pub enum StageOutcome {
    Nothing(String),
    Done(usize),
}

/// `create-symlinks` / `update-ldcache`, as `createContainer` hooks: the
/// runtime runs them in the container's mount namespace before
/// `pivot_root`, so `root.path` is opened from the hook's own namespace
/// (the state's pid is 0 or the container's own 1 there).
pub fn container_stage(
    settings: &Settings,
    stdin: &[u8],
    host: &dyn Host,
    kernel: &mut dyn Kernel,
    log: &mut Log,
) -> Result<StageOutcome, HookError> {
    let state = crate::state::State::parse(stdin)?;
    let (_, config) = match input::config(host, &state.bundle, None)? {
        Read::Nothing(why) => return Ok(StageOutcome::Nothing(why)),
        Read::Request(read) => *read,
    };
    let root = config.root_path(&state.bundle)?;
    let own = std::process::id() as i32;
    let dir = kernel
        .open_root(own, &root)
        .map_err(|source| HookError::Io {
            op: "open the container root",
            path: root.clone(),
            source,
        })?;
    let done = match &settings.action {
        Action::CreateSymlinks(links) => container::create_symlinks(kernel, dir, links, log)?,
        Action::UpdateLdcache(entries) => container::update_ldcache(kernel, dir, entries, log)?,
        _ => return Ok(StageOutcome::Nothing("not a container stage".into())),
    };
    Ok(StageOutcome::Done(done))
}
