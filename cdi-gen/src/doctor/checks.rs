//! From facts to findings: pure functions, one per area, in the order the
//! report shows them. Each problem says what was found and the command or
//! setting that fixes it; a passed check says what was checked.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use mig_cdi_core::cdi::folders::{self, Definition, Pick};
use mig_cdi_core::cdi::version::{oldest_reader, Runtime};
use mig_cdi_core::cdi::CdiVersion;
use mig_cdi_core::nodes::{DeviceKind, HostNodeIssue, HostProblem, NodeRole};
use mig_cdi_core::paths::{self, CapKey};
use mig_cdi_core::snapshot::{Gpu, GpuInstances, Snapshot};

use super::facts::{role_text, Currency, Facts, SpecFile};
use super::report::{Finding, Severity};
use super::requirements::{self, compare_versions, parse_cuda};
use crate::discover::Discovery;

const DRIVER: &str = "Driver";
const BOOT: &str = "MIG at boot";
const NODES: &str = "Capabilities and device nodes";
const CDI: &str = "CDI specs";
const PROCESSES: &str = "Processes holding NVIDIA device nodes";
const RUNTIMES: &str = "Hook and runtime wrapper (for runtimes without CDI)";

/// Every finding, in report order.
pub fn check(facts: &Facts) -> Vec<Finding> {
    let mut out = driver(facts);
    if let Ok(snapshot) = &facts.nvml {
        for gpu in &snapshot.gpus {
            out.extend(gpu_findings(snapshot, gpu));
        }
        out.extend(boot(facts, snapshot));
    }
    out.extend(nodes(facts));
    out.extend(cdi(facts));
    out.extend(processes(facts));
    out.extend(runtimes(facts));
    out
}

fn code(text: &str) -> String {
    format!("`{text}`")
}

/// `a, b, c and 2 more`.
fn some_of(names: &[String], max: usize) -> String {
    let shown: Vec<&str> = names.iter().take(max).map(String::as_str).collect();
    match names.len().saturating_sub(max) {
        0 => shown.join(", "),
        rest => format!("{} and {rest} more", shown.join(", ")),
    }
}

fn architecture(gpu: &Gpu) -> Option<&str> {
    gpu.details.as_ref()?.architecture.as_deref()
}

/// Ampere keeps the MIG mode in its InfoROM and applies a change at a GPU
/// reset; Hopper and newer do not keep it across a reboot.
fn is_ampere(gpu: &Gpu) -> bool {
    architecture(gpu) == Some("Ampere")
}

fn gpu_section(gpu: &Gpu) -> String {
    format!("GPU {}: {} ({})", gpu.index, gpu.name, gpu.pci_bus_id)
}

// ---- driver -----------------------------------------------------------------

fn driver(facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Err(why) = &facts.module {
        out.push(
            Finding::new(
                "driver.not-loaded",
                Severity::Error,
                DRIVER,
                format!("the NVIDIA kernel module does not seem loaded: {why}"),
            )
            .fix(format!(
                "load it: {} (or run {}, which loads it); with --root, point it at the host's root",
                code("modprobe nvidia"),
                code("nvidia-smi")
            )),
        );
    }
    match (&facts.module, &facts.nvml) {
        (_, Err(why)) => out.push(
            Finding::new(
                "driver.nvml",
                Severity::Error,
                DRIVER,
                format!("NVML could not be read: {why}"),
            )
            .fix(
                "install the driver's libnvidia-ml.so.1 (it comes with the driver, same version \
                 as the kernel module) or point --nvml-lib at it",
            ),
        ),
        (Ok(module), Ok(snapshot)) => {
            let cuda = snapshot.cuda_version.as_deref().unwrap_or("unknown");
            out.push(Finding::new(
                "driver.loaded",
                Severity::Ok,
                DRIVER,
                format!(
                    "NVIDIA kernel module {} loaded; NVML driver {}, CUDA {cuda}, {} GPU(s)",
                    module.version,
                    snapshot.driver_version,
                    snapshot.gpus.len()
                ),
            ));
            if module.version != snapshot.driver_version {
                out.push(
                    Finding::new(
                        "driver.mismatch",
                        Severity::Warning,
                        DRIVER,
                        format!(
                            "the kernel module is {} but NVML is {}: the driver was upgraded \
                             without reloading the module",
                            module.version, snapshot.driver_version
                        ),
                    )
                    .fix("reboot (or reload the nvidia modules) so that both are the same version"),
                );
            }
        }
        (Err(_), Ok(_)) => {}
    }
    if let Ok(snapshot) = &facts.nvml {
        if snapshot.gpus.is_empty() {
            out.push(
                Finding::new(
                    "driver.no-gpus",
                    Severity::Warning,
                    DRIVER,
                    "NVML lists no GPU".to_string(),
                )
                .fix(format!(
                    "check {} and that the GPUs are bound to the nvidia driver ({})",
                    code("nvidia-smi -L"),
                    code("lspci -k -d 10de:")
                )),
            );
        }
    }
    out
}

// ---- one GPU ----------------------------------------------------------------

fn gpu_findings(snapshot: &Snapshot, gpu: &Gpu) -> Vec<Finding> {
    let section = gpu_section(gpu);
    let i = gpu.index;
    let mut out = Vec::new();
    let Some(mig) = gpu.mig else {
        out.push(
            Finding::new(
                "gpu.no-mig",
                Severity::Warning,
                &section,
                format!(
                    "{} cannot do MIG (nvmlDeviceGetMigMode: not supported): containers can get \
                     it only whole, as device {i}",
                    gpu.name
                ),
            )
            .fix(
                "use it as a whole GPU, or run MIG on a GPU that has it (A100, A30, H100, H200, \
                 B200, RTX PRO 6000 Blackwell: NVIDIA's MIG user guide, Supported GPUs)",
            ),
        );
        return out;
    };
    out.extend(requirement_findings(snapshot, gpu, &section));
    let arch = architecture(gpu).unwrap_or("unknown architecture");
    let node = paths::gpu_node_path(gpu.minor);
    if mig.current != mig.pending {
        let (now, after) = if mig.current {
            ("enabled", "disabled")
        } else {
            ("disabled", "enabled")
        };
        let fix = if is_ampere(gpu) {
            format!(
                "reset the GPU: {} (as root; {arch} applies a MIG mode change only at a GPU \
                 reset or a reboot); the reset fails while any process holds {node}: stop them \
                 first (see below)",
                code(&format!("nvidia-smi -i {i} -r"))
            )
        } else {
            format!(
                "stop the processes holding {node} (see below): {arch} applies the change once \
                 nothing holds the GPU; or reset it: {}",
                code(&format!("nvidia-smi -i {i} -r"))
            )
        };
        out.push(
            Finding::new(
                "mig.pending",
                Severity::Error,
                &section,
                format!("MIG mode is {now} now and {after} after the next GPU reset"),
            )
            .fix(fix),
        );
        return out;
    }
    let create = code(&format!("nvidia-smi mig -i {i} -cgi <profile ids> -C"));
    let list = code(&format!("nvidia-smi mig -i {i} -lgip"));
    if !mig.current {
        let reset = if is_ampere(gpu) {
            format!(
                ", then reset the GPU ({}) or reboot",
                code(&format!("nvidia-smi -i {i} -r"))
            )
        } else {
            String::new()
        };
        out.push(
            Finding::new(
                "mig.disabled",
                Severity::Warning,
                &section,
                format!("MIG mode is disabled: containers can get only the whole GPU (device {i})"),
            )
            .fix(format!(
                "{} (as root: it needs CAP_SYS_ADMIN){reset}, then create instances: {create} \
                 ({list} lists the profiles), then {}",
                code(&format!("nvidia-smi -i {i} -mig 1")),
                code("mig-cdi-gen generate")
            )),
        );
        return out;
    }
    let instances = match gpu.details.as_ref().map(|d| &d.gpu_instances) {
        Some(GpuInstances::Listed { instances }) => instances,
        Some(GpuInstances::Unreadable { reason }) => {
            out.push(
                Finding::new(
                    "mig.instances-unreadable",
                    Severity::Warning,
                    &section,
                    format!("MIG mode is enabled; the GPU instances could not be listed: {reason}"),
                )
                .fix("run doctor as root"),
            );
            return out;
        }
        _ => return out,
    };
    if instances.is_empty() {
        out.push(
            Finding::new(
                "mig.no-instances",
                Severity::Warning,
                &section,
                "MIG mode is enabled but there is no GPU instance: no MIG device to give a \
                 container, and no whole GPU either"
                    .to_string(),
            )
            .fix(format!(
                "create instances: {create} (-C also creates their compute instances; {list} \
                 lists the profiles), then {}; or disable MIG: {}",
                code("mig-cdi-gen generate"),
                code(&format!("nvidia-smi -i {i} -mig 0"))
            )),
        );
        return out;
    }
    let mut bare = 0;
    for gi in instances {
        if gpu.mig_devices.iter().any(|m| m.gi == gi.id) {
            continue;
        }
        bare += 1;
        out.push(
            Finding::new(
                "mig.gi-without-ci",
                Severity::Error,
                &section,
                format!(
                    "GPU instance {} ({}, placement {}:{}) has no compute instance: it is not a \
                     MIG device, and CUDA cannot run in it",
                    gi.id, gi.profile, gi.placement.0, gi.placement.1
                ),
            )
            .fix(format!(
                "create its compute instance: {} (the whole-instance profile), then {}; or \
                 destroy it: {}",
                code(&format!("nvidia-smi mig -i {i} -gi {} -cci", gi.id)),
                code("mig-cdi-gen generate"),
                code(&format!("nvidia-smi mig -i {i} -dgi -gi {}", gi.id))
            )),
        );
    }
    if !gpu.mig_devices.is_empty() {
        out.push(Finding::new(
            "mig.enabled",
            Severity::Ok,
            &section,
            format!(
                "MIG enabled: {} MIG device(s) in {} GPU instance(s){}",
                gpu.mig_devices.len(),
                instances.len(),
                match bare {
                    0 => String::new(),
                    n => format!(", {n} of them without compute instance"),
                }
            ),
        ));
    }
    out
}

fn requirement_findings(snapshot: &Snapshot, gpu: &Gpu, section: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let arch = architecture(gpu).unwrap_or("unknown architecture");
    let Some(need) = requirements::for_gpu(&gpu.name) else {
        out.push(Finding::new(
            "gpu.requirements-unknown",
            Severity::Info,
            section,
            format!(
                "{} ({arch}) supports MIG, but doctor knows no minimum driver for it",
                gpu.name
            ),
        ));
        return out;
    };
    let driver = &snapshot.driver_version;
    let (cuda_major, cuda_minor) = need.min_cuda;
    let mut fine = true;
    if compare_versions(driver, need.min_driver) == Some(Ordering::Less) {
        fine = false;
        out.push(
            Finding::new(
                "gpu.driver-too-old",
                Severity::Error,
                section,
                format!(
                    "MIG on {} ({arch}) needs driver {} or later; this node runs {driver}",
                    need.product, need.min_driver
                ),
            )
            .fix(format!(
                "install an NVIDIA datacenter driver {} or later (NVIDIA's MIG user guide, \
                 Deployment Considerations), then reboot",
                need.min_driver
            )),
        );
    }
    let cuda = snapshot.cuda_version.as_deref();
    if let Some((major, minor)) = cuda.and_then(parse_cuda) {
        if (major, minor) < need.min_cuda {
            fine = false;
            out.push(
                Finding::new(
                    "gpu.cuda-too-old",
                    Severity::Error,
                    section,
                    format!(
                        "MIG on {} needs CUDA {cuda_major}.{cuda_minor}; the driver supports \
                         CUDA {major}.{minor}",
                        need.product
                    ),
                )
                .fix(format!(
                    "install a driver whose CUDA version is {cuda_major}.{cuda_minor} or later"
                )),
            );
        }
    }
    if fine {
        out.push(Finding::new(
            "gpu.requirements",
            Severity::Ok,
            section,
            format!(
                "{} ({arch}): driver {driver} >= {}, CUDA {} >= {cuda_major}.{cuda_minor}",
                need.product,
                need.min_driver,
                cuda.unwrap_or("unknown")
            ),
        ));
    }
    if need.vbios_requirement {
        let vbios = gpu
            .details
            .as_ref()
            .and_then(|d| d.vbios.as_deref())
            .unwrap_or("unknown");
        out.push(
            Finding::new(
                "gpu.vbios",
                Severity::Info,
                section,
                format!(
                    "NVIDIA's MIG user guide also asks a minimum vBIOS for MIG on {}; doctor did \
                     not find that version in the guide and does not check it (this GPU has \
                     vBIOS {vbios})",
                    need.product
                ),
            )
            .fix("compare it with NVIDIA's MIG user guide and your vendor's firmware notes"),
        );
    }
    out
}

// ---- boot -------------------------------------------------------------------

fn boot(facts: &Facts, snapshot: &Snapshot) -> Vec<Finding> {
    let wanted: Vec<&Gpu> = snapshot
        .gpus
        .iter()
        .filter(|g| g.mig.is_some_and(|m| m.current || m.pending))
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let list: Vec<String> = wanted.iter().map(|g| g.index.to_string()).collect();
    if facts.units.is_empty() {
        let lost = if wanted.iter().all(|g| is_ampere(g)) {
            "every GPU instance is lost at reboot (Ampere keeps the MIG mode in its InfoROM, \
             not the instances)"
        } else {
            "Hopper and newer GPUs lose the MIG mode and every GPU instance at reboot"
        };
        out.push(
            Finding::new(
                "boot.no-unit",
                Severity::Warning,
                BOOT,
                format!(
                    "MIG is in use on GPU {}, {lost}, and no boot unit restores it (looked for \
                     nvidia-mig-manager.service, mig-cdi*.service and units running \
                     nvidia-mig-parted or nvidia-smi mig -cgi in {})",
                    list.join(", "),
                    super::host::UNIT_DIRS
                        .iter()
                        .map(|d| format!("/{d}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .fix(format!(
                "install mig-parted's nvidia-mig-manager.service with this geometry, or a unit \
                 of your own in /etc/systemd/system that enables MIG, creates the instances and \
                 then runs {} (mig-cdi's examples/systemd/mig-cdi.service is one); enable it: {}",
                code("mig-cdi-gen generate --output /var/run/cdi/nvidia.com-gpu.json"),
                code("systemctl enable <unit>")
            )),
        );
        return out;
    }
    for unit in &facts.units {
        let path = unit.path.display();
        if !unit.enabled {
            out.push(
                Finding::new(
                    "boot.unit-disabled",
                    Severity::Warning,
                    BOOT,
                    format!("{path} restores MIG but is not enabled: it does not run at boot"),
                )
                .fix(code(&format!("systemctl enable {}", unit.name))),
            );
        }
        if !unit.regenerates_spec {
            out.push(
                Finding::new(
                    "boot.spec-not-regenerated",
                    Severity::Warning,
                    BOOT,
                    format!(
                        "{path} restores MIG but does not run {}: after a reboot the CDI spec \
                         may name instances that no longer exist",
                        code("mig-cdi-gen generate")
                    ),
                )
                .fix(format!(
                    "add {} to it ({}), or an apply-exit hook to \
                     /etc/nvidia-mig-manager/hooks.yaml for mig-parted",
                    code("ExecStartPost=/usr/local/bin/mig-cdi-gen generate --output /var/run/cdi/nvidia.com-gpu.json"),
                    code(&format!("systemctl edit {}", unit.name))
                )),
            );
        }
        if unit.enabled && unit.regenerates_spec {
            out.push(Finding::new(
                "boot.unit",
                Severity::Ok,
                BOOT,
                format!("{path} restores MIG at boot and regenerates the CDI spec"),
            ));
        }
    }
    out
}

// ---- capabilities and nodes ---------------------------------------------------

fn nodes(facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    let snapshot = facts.nvml.as_ref().ok();
    let any_mig_capable = snapshot.is_some_and(|s| s.gpus.iter().any(|g| g.mig.is_some()));
    let any_mig_on = snapshot.is_some_and(|s| s.gpus.iter().any(|g| g.mig_enabled()));
    let model = &facts.caps_model;
    if any_mig_capable && facts.char_devices.is_some() {
        let param = match &model.devfs_param {
            Some(value) => format!("nv_cap_enable_devfs={value}"),
            None => "nv_cap_enable_devfs not in /sys/module/nvidia/parameters".to_string(),
        };
        if model.is_proc() {
            out.push(
                Finding::new(
                    "caps.proc-model",
                    if any_mig_on {
                        Severity::Error
                    } else {
                        Severity::Warning
                    },
                    NODES,
                    format!(
                        "the driver exposes MIG capabilities only under /proc ({param}{}): that \
                         model is deprecated since driver 450.51.06, and containers need \
                         /dev/nvidia-caps nodes",
                        if model.caps_major.is_none() {
                            "; no \"nvidia-caps\" major in /proc/devices"
                        } else {
                            ""
                        }
                    ),
                )
                .fix(format!(
                    "{}, reload the nvidia modules (or reboot), then create the nodes: {} (or {})",
                    code("echo 'options nvidia nv_cap_enable_devfs=1' > /etc/modprobe.d/nvidia-caps.conf"),
                    code("nvidia-modprobe -f /proc/driver/nvidia/capabilities/mig/config -f /proc/driver/nvidia/capabilities/mig/monitor"),
                    code("mig-cdi-gen generate --create-device-nodes")
                )),
            );
        } else if let Some(major) = model.caps_major {
            out.push(Finding::new(
                "caps.devfs",
                Severity::Ok,
                NODES,
                format!("MIG capabilities are /dev/nvidia-caps nodes of major {major} ({param})"),
            ));
        }
    }
    let found = match &facts.host {
        None => return out,
        Some(Err(why)) => {
            if model.is_proc() && why.contains("nv_cap_enable_devfs") {
                out.push(Finding::new(
                    "nodes.not-checked",
                    Severity::Info,
                    NODES,
                    "the device nodes of MIG devices are not checked while the /proc model is in \
                     use"
                    .to_string(),
                ));
            } else {
                out.push(
                    Finding::new(
                        "driver.tables",
                        Severity::Error,
                        NODES,
                        format!("the device nodes cannot be planned: {why}"),
                    )
                    .fix("do what the message says, then run doctor again"),
                );
            }
            return out;
        }
        Some(Ok(found)) => found,
    };
    let before = out.len();
    for issue in &found.host_issues {
        out.push(node_issue(issue, found, None));
    }
    for extra in &facts.extra_caps {
        if let Some(issue) = &extra.issue {
            out.push(node_issue(issue, found, Some((extra.gpu_index, extra.key))));
        }
    }
    for (gpu, why) in &facts.caps_unreadable {
        out.push(
            Finding::new(
                "caps.unreadable",
                Severity::Warning,
                NODES,
                format!("the capability files of GPU {gpu} could not be read: {why}"),
            )
            .fix("run doctor as root"),
        );
    }
    for m in &facts.mode_mismatches {
        out.push(
            Finding::new(
                "node.mode",
                Severity::Warning,
                NODES,
                format!(
                    "{} has mode {:o}, but the driver gives its {} mode {:o}: users get other \
                     rights in containers than the driver intends",
                    m.host_path.display(),
                    m.mode & 0o7777,
                    role_text(m.node.role),
                    m.node.mode
                ),
            )
            .fix(code(&format!(
                "chmod {:o} {}",
                m.node.mode,
                m.host_path.display()
            ))),
        );
    }
    for issue in &found.dropped_management {
        let which = if issue.node.role == NodeRole::MigConfig {
            "config"
        } else {
            "monitor"
        };
        out.push(
            Finding::new(
                "node.management-missing",
                Severity::Info,
                NODES,
                format!(
                    "{}: missing; only privileged containers use it, for MIG {which} rights",
                    issue.host_path.display()
                ),
            )
            .fix(code(&format!(
                "nvidia-modprobe -f /proc/driver/nvidia/capabilities/mig/{which}"
            ))),
        );
    }
    if out.len() == before {
        let inventory = &found.inventory;
        let mut paths: Vec<&str> = inventory
            .control_nodes
            .iter()
            .chain(inventory.devices.iter().flat_map(|d| d.nodes.iter()))
            .chain(inventory.mig_management.iter().flat_map(|(_, n)| n.iter()))
            .map(|n| n.path.as_str())
            .chain(facts.extra_caps.iter().map(|e| e.node.path.as_str()))
            .collect();
        paths.sort_unstable();
        paths.dedup();
        out.push(Finding::new(
            "nodes.ok",
            Severity::Ok,
            NODES,
            format!(
                "all {} device nodes are on the host with the driver's numbers and modes",
                paths.len()
            ),
        ));
    }
    out
}

/// The capability a node of the inventory stands for.
fn cap_key_of(issue: &HostNodeIssue, found: &Discovery) -> Option<CapKey> {
    found.inventory.devices.iter().find_map(|d| {
        let DeviceKind::Mig { gi, ci, .. } = d.kind else {
            return None;
        };
        d.nodes.iter().find(|n| n.path == issue.node.path)?;
        Some(match issue.node.role {
            NodeRole::GiAccess => CapKey::Gi {
                gpu: d.gpu_minor,
                gi,
            },
            _ => CapKey::Ci {
                gpu: d.gpu_minor,
                gi,
                ci,
            },
        })
    })
}

/// How to make the node the driver expects.
fn recreate(issue: &HostNodeIssue, key: Option<CapKey>) -> String {
    match (issue.node.role, key) {
        (NodeRole::GiAccess | NodeRole::CiAccess, Some(key)) => format!(
            "{} (or {})",
            code(&format!(
                "nvidia-modprobe -f /proc/driver/nvidia/capabilities/{}",
                key.file()
            )),
            code("mig-cdi-gen generate --create-device-nodes --output <spec>")
        ),
        (NodeRole::Gpu, _) => code(&format!("nvidia-modprobe -c {}", issue.node.minor)),
        (NodeRole::Control, _) if issue.node.path.starts_with("/dev/nvidia-uvm") => {
            code("nvidia-modprobe -u -c 0")
        }
        _ => code("nvidia-modprobe"),
    }
}

fn node_issue(issue: &HostNodeIssue, found: &Discovery, extra: Option<(u32, CapKey)>) -> Finding {
    let key = extra.map(|(_, k)| k).or_else(|| cap_key_of(issue, found));
    let role = role_text(issue.node.role);
    let want = format!("char {}:{}", issue.node.major, issue.node.minor);
    let path = issue.host_path.display();
    let users: Vec<String> = found
        .inventory
        .devices
        .iter()
        .filter(|d| d.nodes.iter().any(|n| n.path == issue.node.path))
        .map(|d| d.index_name())
        .collect();
    let whose = match (extra, issue.node.role, users.is_empty()) {
        (Some((gpu, CapKey::Gi { gi, .. })), _, _) => {
            format!(" (GPU {gpu}, GPU instance {gi} without compute instance)")
        }
        (_, NodeRole::Control, _) => " (every GPU container needs it)".to_string(),
        (_, _, false) => format!(" (needed by {})", some_of(&users, 4)),
        _ => String::new(),
    };
    let fix = recreate(issue, key);
    match &issue.problem {
        HostProblem::Missing => Finding::new(
            "node.missing",
            Severity::Error,
            NODES,
            format!("{path} is missing: the {role}, {want}{whose}"),
        )
        .fix(format!("create it: {fix}")),
        HostProblem::WrongNumber { major, minor } => Finding::new(
            "node.wrong",
            Severity::Error,
            NODES,
            format!(
                "{path} is char {major}:{minor}, but the {role} is {want}{whose}: a container \
                 given it would get another device"
            ),
        )
        .fix(format!(
            "remove it ({}) and create it again: {fix}",
            code(&format!("rm {path}"))
        )),
        HostProblem::NotCharDevice => Finding::new(
            "node.wrong",
            Severity::Error,
            NODES,
            format!("{path} is not a character device; the {role} is {want}{whose}"),
        )
        .fix(format!(
            "remove it ({}) and create it again: {fix}",
            code(&format!("rm {path}"))
        )),
        HostProblem::Unreadable { error } => Finding::new(
            "node.unreadable",
            Severity::Error,
            NODES,
            format!("{path} cannot be examined: {error}"),
        )
        .fix("run doctor as root"),
    }
}

// ---- CDI specs ------------------------------------------------------------------

/// `podman 4.1+, containerd 1.7+, ...` for a cdiVersion.
fn readers(version: CdiVersion) -> String {
    let (known, unknown): (Vec<Runtime>, Vec<Runtime>) = Runtime::ALL
        .into_iter()
        .partition(|&r| oldest_reader(r, version).is_some());
    let mut text: Vec<String> = known
        .iter()
        .map(|&r| format!("{} {}+", r.name(), oldest_reader(r, version).unwrap_or("?")))
        .collect();
    if !unknown.is_empty() {
        let names: Vec<&str> = unknown.iter().map(|r| r.name()).collect();
        text.push(format!("no known release of {}", names.join(" or ")));
    }
    text.join(", ")
}

fn cdi(facts: &Facts) -> Vec<Finding> {
    let settings = &facts.settings;
    let kind = settings.kind();
    let mut out = Vec::new();
    for (dir, why) in &facts.unlisted_dirs {
        out.push(
            Finding::new(
                "cdi.unlisted",
                Severity::Warning,
                CDI,
                format!("{} cannot be listed: {why}", dir.display()),
            )
            .fix("run doctor as root"),
        );
    }
    let ours: Vec<&SpecFile> = facts.spec_files.iter().filter(|f| f.ours).collect();
    if ours.is_empty() {
        let dirs: Vec<String> = settings
            .spec_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        out.push(
            Finding::new(
                "cdi.no-spec",
                Severity::Warning,
                CDI,
                format!(
                    "no {kind} spec ({v}-{c}.json or .yaml) in {}: runtimes with CDI cannot find \
                     the MIG devices",
                    dirs.join(" or "),
                    v = settings.vendor,
                    c = settings.class
                ),
            )
            .fix(format!(
                "{} (at boot; /etc/cdi for a static spec)",
                code(&format!(
                    "mig-cdi-gen generate --output /var/run/cdi/{}-{}.json",
                    settings.vendor, settings.class
                ))
            )),
        );
    }
    for file in &ours {
        out.extend(our_file(file));
    }
    out.extend(conflicts(facts, &kind));
    out
}

fn our_file(file: &SpecFile) -> Vec<Finding> {
    let mut out = Vec::new();
    let path = file.path.display();
    let checked = match &file.checked {
        Ok(checked) => checked,
        Err(why) => {
            out.push(
                Finding::new(
                    "cdi.unreadable",
                    Severity::Error,
                    CDI,
                    format!("{path} cannot be read: {why}"),
                )
                .fix(format!(
                    "replace it with the spec: {}",
                    code(&format!("mig-cdi-gen generate --output {path}"))
                )),
            );
            return out;
        }
    };
    if let Some(mode) = file.mode.filter(|m| m & 0o004 == 0) {
        out.push(
            Finding::new(
                "cdi.mode",
                Severity::Warning,
                CDI,
                format!(
                    "{path} has mode {mode:04o}: rootless podman (any user but its owner) cannot \
                     read it"
                ),
            )
            .fix(format!(
                "{} (generate writes 0644)",
                code(&format!("chmod 0644 {path}"))
            )),
        );
    }
    if !checked.is_valid() {
        let problems: Vec<String> = checked.problems.iter().map(|p| p.to_string()).collect();
        out.push(
            Finding::new(
                "cdi.invalid",
                Severity::Error,
                CDI,
                format!(
                    "{path} breaks {} CDI rule(s), and runtimes refuse the whole file: {}",
                    problems.len(),
                    some_of(&problems, 2)
                ),
            )
            .fix(format!(
                "{} explains each; {} rewrites it",
                code(&format!("mig-cdi-gen validate {path}")),
                code(&format!("mig-cdi-gen generate --output {path}"))
            )),
        );
    }
    match &file.currency {
        Some(Ok(Currency::Current)) => {
            let spec = file.spec();
            out.push(Finding::new(
                "cdi.current",
                Severity::Ok,
                CDI,
                format!(
                    "{path} is what generate writes now ({} device names)",
                    spec.map_or(0, |s| s.devices.len())
                ),
            ));
        }
        Some(Ok(Currency::Stale {
            added,
            removed,
            changed,
            spec_level,
        })) => {
            let mut parts = Vec::new();
            for (word, names) in [("added", added), ("removed", removed), ("changed", changed)] {
                if !names.is_empty() {
                    parts.push(format!("{word} {}", some_of(names, 3)));
                }
            }
            if parts.is_empty() {
                parts.push(if spec_level.is_empty() {
                    "same devices, another layout".to_string()
                } else {
                    some_of(spec_level, 2)
                });
            }
            out.push(
                Finding::new(
                    "cdi.stale",
                    Severity::Error,
                    CDI,
                    format!(
                        "{path} is out of date ({}): containers would get devices or nodes that \
                         are not there now",
                        parts.join("; ")
                    ),
                )
                .fix(format!(
                    "{} ({} shows the difference node by node)",
                    code(&format!("mig-cdi-gen generate --output {path}")),
                    code("--check")
                )),
            );
        }
        Some(Err(why)) => out.push(Finding::new(
            "cdi.not-checked",
            Severity::Info,
            CDI,
            format!("whether {path} is current was not checked: {why}"),
        )),
        None => {}
    }
    if let Some(version) = file.spec().and_then(|s| CdiVersion::parse(&s.cdi_version)) {
        out.push(Finding::new(
            "cdi.runtimes",
            Severity::Info,
            CDI,
            format!(
                "{path} declares cdiVersion {version}: read by {} (with CDI on; older releases \
                 refuse the file)",
                readers(version)
            ),
        ));
    }
    out
}

/// Other spec files that define the same devices as ours: at equal
/// priority every such device is unusable; at a higher one the runtime
/// uses theirs.
fn conflicts(facts: &Facts, kind: &str) -> Vec<Finding> {
    let valid: Vec<&SpecFile> = facts
        .spec_files
        .iter()
        .filter(|f| f.checked.as_ref().is_ok_and(|c| c.is_valid()))
        .collect();
    let mut out = Vec::new();
    for ours in valid.iter().filter(|f| f.ours) {
        let Some(spec) = ours.spec().filter(|s| s.kind == kind) else {
            continue;
        };
        let mut clashes: Vec<(PathBuf, bool, Vec<String>)> = Vec::new();
        for device in &spec.devices {
            let definitions = valid
                .iter()
                .filter(|f| {
                    f.spec().is_some_and(|s| {
                        s.kind == kind && s.devices.iter().any(|d| d.name == device.name)
                    })
                })
                .map(|f| Definition {
                    file: f.path.clone(),
                    priority: f.priority,
                    item: (),
                })
                .collect();
            let (others, equal): (Vec<PathBuf>, bool) = match folders::pick(definitions) {
                Pick::Conflict { files } => (files, true),
                Pick::One { chosen, .. } if chosen.file != ours.path => (vec![chosen.file], false),
                _ => continue,
            };
            for other in others.into_iter().filter(|f| *f != ours.path) {
                match clashes
                    .iter_mut()
                    .find(|(f, e, _)| *f == other && *e == equal)
                {
                    Some((_, _, names)) => names.push(device.name.clone()),
                    None => clashes.push((other, equal, vec![device.name.clone()])),
                }
            }
        }
        for (other, equal, names) in clashes {
            let named: Vec<String> = names.iter().map(|n| format!("{kind}={n}")).collect();
            let (id, severity, found, fix) = if equal {
                (
                    "cdi.conflict",
                    Severity::Error,
                    format!(
                        "{} also defines {}, in the same folder as {}: runtimes refuse every \
                         device defined twice there",
                        other.display(),
                        some_of(&named, 2),
                        ours.path.display()
                    ),
                    "remove one of the two files (another tool's spec of the same kind, such as \
                     NVIDIA's nvidia.yaml, or an old copy), or write ours under another \
                     --vendor/--class"
                        .to_string(),
                )
            } else {
                (
                    "cdi.shadowed",
                    Severity::Warning,
                    format!(
                        "{} also defines {}, in a folder of higher priority: runtimes use it, not \
                         {}",
                        other.display(),
                        some_of(&named, 2),
                        ours.path.display()
                    ),
                    format!("remove {}, or write the spec there", other.display()),
                )
            };
            out.push(Finding::new(id, severity, CDI, found).fix(fix));
        }
    }
    out
}

// ---- processes ------------------------------------------------------------------

fn processes(facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    let scan = &facts.processes;
    let gpus: Vec<&Gpu> = facts
        .nvml
        .as_ref()
        .map(|s| s.gpus.iter().collect())
        .unwrap_or_default();
    for holder in &scan.holders {
        let pending: Vec<&&Gpu> = gpus
            .iter()
            .filter(|g| g.mig.is_some_and(|m| m.current != m.pending))
            .filter(|g| holder.nodes.contains(&paths::gpu_node_path(g.minor)))
            .collect();
        let held = some_of(&holder.nodes, 4);
        if pending.is_empty() {
            out.push(Finding::new(
                "process.holds-gpu",
                Severity::Info,
                PROCESSES,
                format!(
                    "{} (pid {}) holds {held}: it would block a MIG mode change of that GPU",
                    holder.name, holder.pid
                ),
            ));
        } else {
            let which: Vec<String> = pending.iter().map(|g| g.index.to_string()).collect();
            out.push(
                Finding::new(
                    "process.blocks-mig-change",
                    Severity::Warning,
                    PROCESSES,
                    format!(
                        "{} (pid {}) holds {held}: the MIG mode change pending on GPU {} cannot \
                         apply while it does",
                        holder.name,
                        holder.pid,
                        which.join(", ")
                    ),
                )
                .fix(format!(
                    "stop it before the GPU reset: {} for a service (nvidia-persistenced, nvsm, \
                     dcgm, nvidia-dcgm, dcgm-exporter), else {}",
                    code("systemctl stop <service>"),
                    code(&format!("kill {}", holder.pid))
                )),
            );
        }
    }
    if scan.unreadable > 0 {
        out.push(
            Finding::new(
                "process.unreadable",
                Severity::Info,
                PROCESSES,
                format!(
                    "the open files of {} process(es) in {} could not be read",
                    scan.unreadable,
                    scan.proc_dir.display()
                ),
            )
            .fix("run doctor as root to see them"),
        );
    }
    if scan.holders.is_empty() {
        out.push(Finding::new(
            "process.none",
            Severity::Ok,
            PROCESSES,
            format!(
                "no process holds an NVIDIA device node of this root (read from {})",
                scan.proc_dir.display()
            ),
        ));
    }
    out
}

// ---- runtimes -----------------------------------------------------------------

fn runtimes(facts: &Facts) -> Vec<Finding> {
    let config = &facts.runtimes;
    let mut out = Vec::new();
    for (file, hook, stages) in &config.podman_hooks {
        out.push(Finding::new(
            "runtime.podman-hook",
            Severity::Info,
            RUNTIMES,
            format!(
                "podman: {} runs {hook} at {}",
                file.display(),
                if stages.is_empty() {
                    "no stage".to_string()
                } else {
                    stages.join(", ")
                }
            ),
        ));
    }
    for (file, name, path) in &config.docker_runtimes {
        out.push(Finding::new(
            "runtime.docker",
            Severity::Info,
            RUNTIMES,
            format!(
                "docker: {} has runtime \"{name}\" = {path} (docker run --runtime={name})",
                file.display()
            ),
        ));
    }
    for (file, line, text) in &config.containerd_lines {
        out.push(Finding::new(
            "runtime.containerd",
            Severity::Info,
            RUNTIMES,
            format!("containerd: {}:{line}: {text}", file.display()),
        ));
    }
    if out.is_empty() {
        out.push(Finding::new(
            "runtime.none",
            Severity::Info,
            RUNTIMES,
            format!(
                "no mig-cdi-hook in podman's hooks.d ({}) and no mig-cdi-runtime in {} or {}: \
                 only runtimes with CDI get MIG devices here",
                super::host::PODMAN_HOOK_DIRS
                    .iter()
                    .map(|d| format!("/{d}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                Path::new("/")
                    .join(super::host::DOCKER_DAEMON_JSON)
                    .display(),
                Path::new("/")
                    .join(super::host::CONTAINERD_CONFIG)
                    .display()
            ),
        ));
    }
    out
}
