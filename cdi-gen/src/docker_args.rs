//! `mig-cdi-gen docker-args NAME`: the `--device` flags that give a plain
//! `docker run` / `podman run` (no CDI) the same nodes as the CDI device
//! NAME: the control nodes and the device's own, with the same cgroup
//! access. They come from the very spec `generate` would write, so the two
//! cannot disagree. With the driver's files (the default, as in the
//! spec) it adds a read-only `--volume` per file; what docker without CDI
//! cannot do — the soname links and the loader cache, which a CDI runtime
//! makes with the spec's hooks — is said on stderr, with what to use
//! instead.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use mig_cdi_core::cdi::{rules, Format, NameStrategy, RenderOptions, SchemaValidator};
use serde::Serialize;

use crate::args::{self, DriverArgs, HostArgs, NamingArgs};
use crate::discover;
use crate::nvml::Reads;
use crate::render::render_checked;

#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
One flag per line, so a shell can splice them in:\n  \
docker run --rm $(mig-cdi-gen docker-args 0:1) IMAGE nvidia-smi -L\n\n\
The driver's files come as read-only --volume flags; docker without CDI cannot make their \
soname links or loader cache (CDI runtimes run the spec's hooks for that), so use \
mig-cdi-runtime (docker --runtime=mig-cdi) or docker 25+ with CDI for CUDA, or \
--no-driver-files for the device nodes alone.\n\n\
A container must get one MIG device: CUDA uses only the first it sees.\n\n\
Exit status: 0 success, 2 error (unknown device: the valid names are listed).")]
pub struct DockerArgsArgs {
    /// The device, named as the spec names it: an index name (0:1, 0), a
    /// UUID (MIG-…, GPU-…), a type-index name (mig0:1, gpu0) or qualified
    /// (nvidia.com/gpu=0:1).
    #[arg(value_name = "NAME")]
    pub name: String,
    #[command(flatten)]
    pub naming: NamingArgs,
    #[command(flatten)]
    pub driver: DriverArgs,
    /// Print {devices: [{hostPath, path, major, minor, permissions}],
    /// volumes: [{hostPath, containerPath, options}], notes} as JSON instead.
    #[arg(long)]
    pub json: bool,
    /// Refused: docker-args never changes the host (see `generate`).
    #[arg(long, hide = true)]
    pub create_device_nodes: bool,
}

/// One node for `--device`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DockerDevice {
    host_path: String,
    path: String,
    major: i64,
    minor: i64,
    permissions: String,
}

impl DockerDevice {
    fn flag(&self) -> String {
        format!(
            "--device={}:{}:{}",
            self.host_path, self.path, self.permissions
        )
    }
}

pub fn run(host: &HostArgs, args: &DockerArgsArgs) -> Result<ExitCode> {
    if args.create_device_nodes {
        return Err(args::refuse_create_device_nodes("docker-args"));
    }
    args.naming.check()?;
    let name = match args.name.split_once('=') {
        Some(_) => {
            let q = rules::parse_qualified_name(&args.name).map_err(anyhow::Error::msg)?;
            let kind = format!("{}/{}", q.vendor, q.class);
            if kind != args.naming.kind() {
                bail!(
                    "{}: kind {kind} is not {} (give --vendor/--class to match)",
                    args.name,
                    args.naming.kind()
                );
            }
            q.name
        }
        None => {
            rules::check_device_name(&args.name).map_err(anyhow::Error::msg)?;
            args.name.as_str()
        }
    };
    let mut render = RenderOptions {
        vendor: args.naming.vendor.clone(),
        class: args.naming.class.clone(),
        strategies: NameStrategy::ALL.to_vec(),
        dev_root: host.host_path_root()?,
        driver: None,
        // No verify hooks: they are for CDI runtimes, and no flag carries
        // them.
        verify_hook: None,
    };
    let found = discover::discover(&host.discover_options(Reads::default()))?;
    render.driver = args.driver.edits(&host.root, &found.driver_version)?;
    for warning in found.warnings() {
        eprintln!("mig-cdi-gen: warning: {warning}");
    }
    found.require_host_nodes(false)?;
    let schema = SchemaValidator::new()?;
    let spec = render_checked(&found, &render, Format::Json, &schema)?.spec;
    let Some(device) = spec.devices.iter().find(|d| d.name == name) else {
        let index_names: Vec<String> = found
            .inventory
            .devices
            .iter()
            .map(|d| d.index_name())
            .collect();
        let uuids: Vec<&str> = found
            .inventory
            .devices
            .iter()
            .map(|d| d.uuid.as_str())
            .collect();
        bail!(
            "no device \"{name}\" on this node; devices: {} (or by UUID: {}; or type-index: \
             gpuN, migN:M)",
            index_names.join(", "),
            uuids.join(", ")
        );
    };
    let nodes: Vec<DockerDevice> = spec
        .container_edits
        .device_nodes
        .iter()
        .chain(&device.container_edits.device_nodes)
        .map(|n| DockerDevice {
            host_path: n.host_path.clone().unwrap_or_else(|| n.path.clone()),
            path: n.path.clone(),
            major: n.major.unwrap_or_default(),
            minor: n.minor.unwrap_or_default(),
            permissions: n.permissions.clone().unwrap_or_else(|| "rw".into()),
        })
        .collect();
    let volumes = &spec.container_edits.mounts;
    let mut notes = Vec::new();
    if !spec.container_edits.hooks.is_empty() {
        notes.push(
            "docker without CDI cannot make the driver libraries' soname links or add them to \
             the loader cache (a CDI runtime runs the spec's hooks for that): CUDA will not find \
             libcuda.so.1 from these flags alone — use mig-cdi-runtime (docker \
             --runtime=mig-cdi) or docker 25+ with CDI (--device nvidia.com/gpu=NAME)"
                .to_string(),
        );
    }
    let text = if args.json {
        serde_json::to_string_pretty(&serde_json::json!({
            "devices": nodes,
            "volumes": volumes,
            "notes": notes,
        }))? + "\n"
    } else {
        for note in &notes {
            eprintln!("mig-cdi-gen: note: {note}");
        }
        nodes
            .iter()
            .map(|n| n.flag() + "\n")
            .chain(
                volumes
                    .iter()
                    .map(|m| format!("--volume={}:{}:ro\n", m.host_path, m.container_path)),
            )
            .collect()
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}
