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

use crate::cli::{Action, Settings};
use crate::container;
use crate::error::HookError;
use crate::host::Host;
use crate::inject::{self, Report};
use crate::input::{self, Read};
use crate::kernel::Kernel;
use crate::log::Log;
use crate::plan::{self, PlanInput};
use crate::resolve;
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
    let device = resolve::resolve(&catalog, &container.request)?;
    log.line(format_args!(
        "resolved {} to {} from {}",
        device.names.join(", "),
        device.qualified(),
        device.device.file.display()
    ));

    verify::nodes_only(&device)?;
    let verified = verify::verify(host, container, &device)?;
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
