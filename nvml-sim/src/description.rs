//! The machine description file format: what a test author writes.
//!
//! These are plain serde types (camelCase JSON, unknown fields rejected so
//! a typo fails loudly). They carry no invariant; [`crate::Machine`]
//! validates a description against the real driver's rules and derives
//! everything a description may leave out (GI and CI ids, MIG UUIDs, MIG
//! slot order). See `nvml-sim/README.md` for the format with examples.
//!
//! ```json
//! {
//!   "driverVersion": "580.159.04",
//!   "cudaVersion": "13.0",
//!   "gpus": [{
//!     "model": "H200", "minor": 0, "pciBusId": "0000:00:06.0",
//!     "uuid": "GPU-866b5d23-5f64-aec2-09af-f17711608a22",
//!     "migMode": "enabled",
//!     "gpuInstances": [
//!       { "profile": "3g.71gb", "placement": 0,
//!         "computeInstances": [ { "slices": 2, "placement": 0 },
//!                               { "slices": 1, "placement": 2 } ] },
//!       { "profile": 19, "placement": 4 }
//!     ]
//!   }]
//! }
//! ```

use serde::{Deserialize, Serialize};

/// A whole machine: the driver and its GPUs in NVML index order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MachineDescription {
    /// Free text for the reader of the file; ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Driver version, `nvmlSystemGetDriverVersion` (e.g. `580.159.04`).
    pub driver_version: String,
    /// CUDA version the driver supports, `major.minor` (e.g. `13.0`);
    /// `nvmlSystemGetCudaDriverVersion` returns `major * 1000 + minor * 10`.
    pub cuda_version: String,
    /// `nvmlSystemGetNVMLVersion`; default `<cuda major>.<driverVersion>`
    /// (`13.580.159.04`), as real NVML prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvml_version: Option<String>,
    /// GPUs in NVML index order, which NVML makes ascending PCI bus order.
    pub gpus: Vec<GpuDescription>,
    /// Host faults `make-root` plants in the fake root (what a broken host
    /// shows); absent: the root the driver would make.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fake_root: Option<FakeRootDescription>,
}

/// Faults of the driver's host side, planted by `make-root`. NVML is not
/// affected: these are the cases where the host disagrees with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FakeRootDescription {
    /// Free text; ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// `"devfs"` (default: `/dev/nvidia-caps` nodes of the `nvidia-caps`
    /// major) or `"proc"`: the deprecated model of `nv_cap_enable_devfs=0`
    /// (no `nvidia-caps` major, no capability nodes,
    /// `sys/module/nvidia/parameters/nv_cap_enable_devfs` is `0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability_model: Option<CapabilityModel>,
    /// Nodes the driver would have made that are missing, as container
    /// paths (`/dev/nvidia-caps/nvidia-cap21`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_nodes: Vec<String>,
    /// Nodes that carry another device number than the driver's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wrong_nodes: Vec<WrongNodeDescription>,
}

/// How the driver exposes MIG capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CapabilityModel {
    /// `/dev/nvidia-caps/nvidia-cap<M>` char devices (`nv_cap_enable_devfs=1`).
    Devfs,
    /// Only `/proc/driver/nvidia/capabilities` (`nv_cap_enable_devfs=0`,
    /// deprecated since 450.51.06).
    Proc,
}

/// A node with the wrong number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WrongNodeDescription {
    /// Container path of a node the driver makes, e.g. `/dev/nvidia0`.
    pub path: String,
    /// The major it carries instead.
    pub major: u32,
    /// The minor it carries instead.
    pub minor: u32,
}

/// One physical GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GpuDescription {
    /// Free text; ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Board: a key of [`crate::profiles::Model`] (`A100-SXM4-80GB`,
    /// `H100-80GB-HBM3`, `H200`, `L40S`, ...). Selects the name, the
    /// architecture and the MIG profile table.
    pub model: String,
    /// Minor number of `/dev/nvidia<minor>` (not the NVML index in general).
    pub minor: u32,
    /// PCI address, `0000:BB:DD.F` (the /proc form) or `00000000:BB:DD.F`.
    pub pci_bus_id: String,
    /// `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lowercase hex.
    pub uuid: String,
    /// `"enabled"`, `"disabled"`, `"unsupported"` (a GPU without MIG), or
    /// `{"current": "enabled", "pending": "disabled"}` when a mode change
    /// waits for a reset.
    pub mig_mode: MigModeDescription,
    /// Existing GPU instances; only when the current MIG mode is enabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_instances: Vec<GpuInstanceDescription>,
    /// `Video BIOS:` in /proc; default per model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vbios: Option<String>,
    /// `IRQ:` in /proc; default `41 + index`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub irq: Option<u32>,
    /// Total memory reported by `nvmlDeviceGetMemoryInfo`, MiB; default per
    /// model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_total_mib: Option<u64>,
}

/// MIG mode, current and pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MigModeDescription {
    /// Current and pending are the same (or MIG is unsupported).
    Same(MigSetting),
    /// Current and pending differ until the next GPU reset.
    Split {
        /// The mode in effect.
        current: MigSetting,
        /// The mode after the next reset.
        pending: MigSetting,
    },
}

/// One MIG mode value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigSetting {
    /// `NVML_DEVICE_MIG_ENABLE`.
    Enabled,
    /// `NVML_DEVICE_MIG_DISABLE`.
    Disabled,
    /// The GPU has no MIG at all (`nvmlDeviceGetMigMode` answers
    /// `NVML_ERROR_NOT_SUPPORTED`).
    Unsupported,
}

/// A GPU instance by profile and memory placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GpuInstanceDescription {
    /// Profile name (`"1g.10gb"`, `"MIG 1g.10gb"`) or profile id (`19`).
    pub profile: ProfileRef,
    /// Placement start in memory slots (`nvidia-smi mig -lgipp`).
    pub placement: u32,
    /// GPU instance id; default from the placement (see
    /// [`crate::profiles::gpu_instance_id`]). Give it only to reproduce a
    /// board whose listing differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    /// Compute instances; absent means one CI over the whole GI (what
    /// `nvidia-smi mig -cgi ... -C` makes); `[]` means a GI without any CI,
    /// which yields no MIG device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_instances: Option<Vec<ComputeInstanceDescription>>,
}

/// A compute instance inside its GPU instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComputeInstanceDescription {
    /// Compute slices; default all of the GI's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slices: Option<u32>,
    /// Placement start in compute slices; default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<u32>,
    /// Compute instance id; default the placement start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    /// Slot of this MIG device under its parent
    /// (`nvmlDeviceGetMigDeviceHandleByIndex`); default the lowest free
    /// slot in (GI id, CI id) order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig_index: Option<u32>,
    /// `MIG-...` UUID; default derived from the parent UUID, GI and CI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

/// A profile named by id or by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProfileRef {
    /// Profile id, e.g. `19`.
    Id(u32),
    /// Profile name, e.g. `"1g.10gb"`.
    Name(String),
}

impl std::fmt::Display for ProfileRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProfileRef::Id(id) => write!(f, "profile id {id}"),
            ProfileRef::Name(name) => write!(f, "profile {name:?}"),
        }
    }
}
