//! `mig-cdi-gen list`: what discovery found, for people (a table) and for
//! tools (`--json`).

use std::fmt::Write as _;
use std::io::Write as _;

use std::process::ExitCode;

use anyhow::Result;
use mig_cdi_core::nodes::{DeviceKind, DeviceNode};
use mig_cdi_core::snapshot::{Gpu, Snapshot};
use serde_json::json;

use crate::args::{self, HostArgs};
use crate::discover::{self, Discovery};
use crate::nvml::Reads;

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// List the GPU-instance profiles of each GPU (like `nvidia-smi mig -lgip`).
    #[arg(long)]
    pub profiles: bool,
    /// Refused: list never changes the host (see `generate`).
    #[arg(long, hide = true)]
    pub create_device_nodes: bool,
}

pub fn run(host: &HostArgs, args: &ListArgs) -> Result<ExitCode> {
    if args.create_device_nodes {
        return Err(args::refuse_create_device_nodes("list"));
    }
    // The profile tables cost NVML calls nothing but --profiles uses.
    let reads = Reads {
        profiles: args.profiles,
        ..Reads::default()
    };
    let found = discover::discover(&host.discover_options(reads))?;
    for warning in found.warnings() {
        eprintln!("mig-cdi-gen: warning: {warning}");
    }
    found.require_host_nodes(false)?;
    print(&found, args)?;
    Ok(ExitCode::SUCCESS)
}

fn print(found: &Discovery, args: &ListArgs) -> Result<()> {
    let text = match (args.json, args.profiles) {
        (true, false) => serde_json::to_string_pretty(&devices_json(found))? + "\n",
        (true, true) => serde_json::to_string_pretty(&profiles_json(&found.snapshot))? + "\n",
        (false, false) => devices_table(found),
        (false, true) => profiles_table(&found.snapshot),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn devices_json(found: &Discovery) -> serde_json::Value {
    let gpus: Vec<_> = found
        .snapshot
        .gpus
        .iter()
        .map(|g| {
            json!({
                "index": g.index,
                "minor": g.minor,
                "uuid": g.uuid,
                "name": g.name,
                "pciBusId": g.pci_bus_id,
                "mig": g.mig,
            })
        })
        .collect();
    json!({
        "driverVersion": found.driver_version,
        "cudaVersion": found.snapshot.cuda_version,
        "gpus": gpus,
        "devices": found.inventory.devices.iter().map(|d| {
            let mut v = serde_json::to_value(d).unwrap_or_default();
            v["name"] = json!(d.index_name());
            v
        }).collect::<Vec<_>>(),
        "controlNodes": found.inventory.control_nodes,
    })
}

fn mig_state(gpu: &Gpu) -> String {
    match gpu.mig {
        None => "not supported".into(),
        Some(m) if m.current == m.pending => on_off(m.current).into(),
        Some(m) => format!(
            "{} (pending {} after reset)",
            on_off(m.current),
            on_off(m.pending)
        ),
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "enabled"
    } else {
        "disabled"
    }
}

fn node_text(node: &DeviceNode) -> String {
    format!("{} {}:{}", node.path, node.major, node.minor)
}

/// Left-aligned columns, two spaces apart.
fn columns(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..width)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn devices_table(found: &Discovery) -> String {
    let s = &found.snapshot;
    let mut out = format!(
        "Driver {}{}\n\n",
        found.driver_version,
        s.cuda_version
            .as_deref()
            .map(|c| format!(", CUDA {c}"))
            .unwrap_or_default()
    );
    let mut rows = vec![vec!["GPU", "MINOR", "NAME", "UUID", "PCI BUS ID", "MIG"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()];
    for g in &s.gpus {
        rows.push(vec![
            g.index.to_string(),
            g.minor.to_string(),
            g.name.clone(),
            g.uuid.clone(),
            g.pci_bus_id.clone(),
            mig_state(g),
        ]);
    }
    out.push_str(&columns(&rows));
    out.push('\n');
    let mut rows = vec![vec!["DEVICE", "UUID", "PROFILE", "GI", "CI", "NODES"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()];
    for d in &found.inventory.devices {
        let (profile, gi, ci) = match &d.kind {
            DeviceKind::Gpu => ("-".to_string(), "-".to_string(), "-".to_string()),
            DeviceKind::Mig {
                profile, gi, ci, ..
            } => (profile.clone(), gi.to_string(), ci.to_string()),
        };
        let nodes: Vec<String> = d.nodes.iter().map(node_text).collect();
        rows.push(vec![
            d.index_name(),
            d.uuid.clone(),
            profile,
            gi,
            ci,
            nodes.join(", "),
        ]);
    }
    if rows.len() == 1 {
        out.push_str("No devices: every GPU is in MIG mode with no MIG devices.\n");
    } else {
        out.push_str(&columns(&rows));
    }
    let control: Vec<String> = found
        .inventory
        .control_nodes
        .iter()
        .map(node_text)
        .collect();
    let _ = writeln!(
        out,
        "\nControl nodes (every container): {}",
        control.join(", ")
    );
    out
}

fn gib(mib: u64) -> String {
    format!("{:.2}", mib as f64 / 1024.0)
}

fn profiles_table(s: &Snapshot) -> String {
    let mut rows = vec![[
        "GPU",
        "NAME",
        "ID",
        "FREE/TOTAL",
        "MEMORY GiB",
        "P2P",
        "SM",
        "DEC",
        "ENC",
        "CE",
        "JPEG",
        "OFA",
    ]
    .map(String::from)
    .to_vec()];
    for g in &s.gpus {
        for p in &g.profiles {
            rows.push(vec![
                g.index.to_string(),
                format!("MIG {}", p.name),
                p.id.to_string(),
                format!("{}/{}", p.instances_free, p.instances_total),
                gib(p.memory_mib),
                if p.p2p { "Yes" } else { "No" }.to_string(),
                p.sm_count.to_string(),
                p.decoders.to_string(),
                p.encoders.to_string(),
                p.copy_engines.to_string(),
                p.jpeg_decoders.to_string(),
                p.ofa.to_string(),
            ]);
        }
    }
    if rows.len() == 1 {
        return "No GPU supports MIG.\n".to_string();
    }
    columns(&rows)
}

fn profiles_json(s: &Snapshot) -> serde_json::Value {
    json!({
        "gpus": s.gpus.iter().map(|g| json!({
            "index": g.index,
            "uuid": g.uuid,
            "name": g.name,
            "profiles": g.profiles,
        })).collect::<Vec<_>>(),
    })
}
