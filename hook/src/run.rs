//! One hook run, step by step: every check before the first change.

use mig_cdi_core::nodes::{NodeRole, CAPS_MAJOR_NAME};

use crate::cli::Settings;
use crate::config::Config;
use crate::error::HookError;
use crate::fresh::{self, CapKey, Live, LiveDriver};
use crate::kernel::{self, Kernel};
use crate::log::Log;
use crate::plan::{self, PlanInput};
use crate::request;
use crate::spec::Catalog;
use crate::state::State;

pub fn run(
    settings: &Settings,
    stdin: &[u8],
    kernel: &mut dyn Kernel,
    log: &mut Log,
) -> Result<(), HookError> {
    let state = State::parse(stdin)?;
    let config = Config::load(&state.bundle)?;
    let Some(request) = request::from_config(&config, &state)? else {
        log.line(format_args!(
            "container {}: no MIG device requested",
            state.bundle.display()
        ));
        return Ok(());
    };
    log.line(format_args!("request: {}", request.source));
    let pid = state.pid()?;
    let root = config.root_path(&state.bundle)?;

    let catalog = Catalog::load(&settings.spec_dirs, &request.wanted, log);
    let device = plan::one_device(catalog.resolve(&request.wanted)?, &request)?;
    log.line(format_args!(
        "resolved {} to {}={} from {}",
        device.names.join(", "),
        device.device.kind,
        device.device.name,
        device.device.file.display()
    ));

    let privileged = config.bounding_has("CAP_SYS_ADMIN");
    plan::check_management(&request, privileged)?;
    let rules = config.device_rules()?;
    let owner = config.root_owner()?;

    let live = LiveDriver::load(&settings.root)?;
    log.line(format_args!(
        "driver tables read under {}",
        settings.root.display()
    ));
    let mut nodes = fresh::check_device(&device, &live)?;
    for (wanted, role) in [
        (request.mig_config, NodeRole::MigConfig),
        (request.mig_monitor, NodeRole::MigMonitor),
    ] {
        if wanted {
            nodes.push(fresh::management_node(role, &live)?);
        }
    }
    log.line(format_args!(
        "nodes checked against the driver and host /dev"
    ));
    let cgroup = crate::cgroupfs::detect(pid)?;
    log.line(format_args!("cgroup: {cgroup:?}"));
    let plan = plan::build(PlanInput {
        pid,
        root,
        owner,
        nodes,
        rules: &rules,
        privileged,
        caps_major: live.major(CAPS_MAJOR_NAME),
        management_minors: [CapKey::Config, CapKey::Monitor]
            .into_iter()
            .map(|key| live.management(key))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .map(|c| c.minor)
            .collect(),
        cgroup,
    })?;
    let (effective, euid, egid) = kernel::own_privileges().map_err(|source| HookError::Io {
        op: "read",
        path: "/proc/self/status (own capabilities)".into(),
        source,
    })?;
    plan::missing_own_caps(&plan, &effective, euid, egid)?;
    log.line(format_args!("plan: {plan:?}"));

    let report = crate::inject::apply(&plan, kernel, log)?;
    log.line(format_args!(
        "done: created {:?}, kept {:?}, cgroup {:?}",
        report.created, report.kept, report.cgroup_lines
    ));
    Ok(())
}
