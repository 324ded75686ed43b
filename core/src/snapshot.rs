//! What NVML said about the node, taken once and sorted.
//!
//! The generator fills a [`Snapshot`] from NVML (or from the simulator,
//! through the same code path) and everything downstream renders it with
//! pure functions, so the same hardware always gives the same output
//! whatever order NVML enumerated it in.

use serde::{Deserialize, Serialize};

/// Every GPU NVML reported, sorted by NVML index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Driver version as NVML reports it, e.g. `580.159.04`.
    pub driver_version: String,
    /// CUDA driver API version, e.g. `13.0`, when NVML reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_version: Option<String>,
    pub gpus: Vec<Gpu>,
}

/// A physical GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gpu {
    /// NVML index: the order CUDA and nvidia-smi number GPUs in.
    pub index: u32,
    /// Device minor number: `/dev/nvidia<minor>` and the key of the
    /// capability tables. Not the index in general.
    pub minor: u32,
    /// `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    pub uuid: String,
    /// Product name, e.g. `NVIDIA H200`.
    pub name: String,
    /// PCI bus id in NVML's form, e.g. `00000000:00:06.0`.
    pub pci_bus_id: String,
    /// MIG mode; `None` when the GPU does not support MIG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig: Option<MigMode>,
    /// MIG devices, sorted by their index under this GPU.
    #[serde(default)]
    pub mig_devices: Vec<MigDevice>,
    /// GPU-instance profiles the GPU supports, in `nvidia-smi mig -lgip`
    /// order: by slices, then memory, then profile id.
    #[serde(default)]
    pub profiles: Vec<GiProfile>,
    /// What only `doctor` reads (architecture, vBIOS, GPU instances);
    /// `None` when not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<GpuDetails>,
}

/// A GPU's facts beyond what a spec needs: what `doctor` checks the MIG
/// prerequisites against. Each field is `None` (or
/// [`GpuInstances::Unreadable`]) when NVML could not say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuDetails {
    /// NVML's architecture name: `Ampere`, `Hopper`, `Blackwell`, `Ada`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// CUDA compute capability, `(major, minor)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_capability: Option<(u32, u32)>,
    /// `nvmlDeviceGetVbiosVersion`, e.g. `96.00.a5.00.1a`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vbios: Option<String>,
    /// The GPU instances that exist now (MIG enabled only).
    pub gpu_instances: GpuInstances,
}

/// The GPU instances of a GPU, as NVML lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum GpuInstances {
    /// MIG is not enabled now: there are none to list.
    NotApplicable,
    /// Every GPU instance, by id.
    Listed { instances: Vec<GpuInstance> },
    /// NVML refused or failed (e.g. "Insufficient Permissions" without
    /// root): the reason.
    Unreadable { reason: String },
}

/// One GPU instance (`nvidia-smi mig -lgi`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuInstance {
    /// GPU-instance id.
    pub id: u32,
    /// Profile id (19 for `1g.*` on 8-slot boards).
    pub profile_id: u32,
    /// Profile name without the `MIG ` prefix, e.g. `1g.18gb`.
    pub profile: String,
    /// Placement start and size, in memory slots.
    pub placement: (u32, u32),
}

impl Gpu {
    /// MIG is enabled now (not merely pending).
    pub fn mig_enabled(&self) -> bool {
        self.mig.is_some_and(|m| m.current)
    }
}

/// MIG mode as NVML reports it: current, and pending until the next reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigMode {
    pub current: bool,
    pub pending: bool,
}

/// A MIG device: one compute instance inside one GPU instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigDevice {
    /// Index under the parent GPU (the slot NVML returned it from); the
    /// `<gpu>:<mig>` names use it.
    pub index: u32,
    /// `MIG-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    pub uuid: String,
    /// GPU-instance id.
    pub gi: u32,
    /// Compute-instance id inside the GPU instance.
    pub ci: u32,
    /// Profile name without the `MIG ` prefix: `1g.18gb`, `2c.4g.20gb`,
    /// `1g.18gb+me`.
    pub profile: String,
    pub memory_mib: u64,
    pub sm_count: u32,
    pub gi_slices: u32,
    pub ci_slices: u32,
}

/// One row of the GPU-instance profile table (`nvidia-smi mig -lgip`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GiProfile {
    pub id: u32,
    /// Name without the `MIG ` prefix, e.g. `1g.18gb+me`.
    pub name: String,
    pub slices: u32,
    pub instances_free: u32,
    pub instances_total: u32,
    pub memory_mib: u64,
    pub sm_count: u32,
    pub copy_engines: u32,
    pub decoders: u32,
    pub encoders: u32,
    pub jpeg_decoders: u32,
    pub ofa: u32,
    pub p2p: bool,
}

impl Snapshot {
    /// Put everything in canonical order: GPUs by index, MIG devices by
    /// index, profiles as `nvidia-smi mig -lgip` lists them. Call after
    /// filling it from any source.
    pub fn sort(&mut self) {
        self.gpus.sort_by_key(|g| g.index);
        for gpu in &mut self.gpus {
            gpu.mig_devices.sort_by_key(|m| m.index);
            gpu.profiles.sort_by_key(|p| (p.slices, p.memory_mib, p.id));
            if let Some(GpuDetails {
                gpu_instances: GpuInstances::Listed { instances },
                ..
            }) = &mut gpu.details
            {
                instances.sort_by_key(|gi| gi.id);
            }
        }
    }
}
