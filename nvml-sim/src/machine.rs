//! A validated machine: what the simulated driver and the fake root serve.
//!
//! [`Machine`] is built from a [`MachineDescription`] and refuses anything a
//! real driver could not show: unknown boards, placements a profile does not
//! allow, overlapping GPU or compute instances, more instances than the
//! profile has, more than 7 compute slices, GIs while MIG is off, GPUs out
//! of PCI order. It fills in what the description may leave out (GI ids,
//! CI ids, MIG UUIDs, MIG slots) with the rules documented on each item, so
//! the NVML side and the /proc side can never disagree: both read this.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::description::{
    CapabilityModel, ComputeInstanceDescription, FakeRootDescription, GpuDescription,
    GpuInstanceDescription, MachineDescription, MigModeDescription, MigSetting, ProfileRef,
};
use crate::profiles::{self, GiProfile, Model};

/// Most MIG devices (compute slices) any board holds; a board's own count
/// is `Model::compute_slices` (what `nvmlDeviceGetMaxMigDeviceCount`
/// answers when MIG is enabled).
pub const MAX_MIG_DEVICES: u32 = 7;

/// Highest GPU minor that `/proc/driver/nvidia-caps/mig-minors` covers.
pub const MAX_MIG_GPU_MINOR: u32 = 31;

/// A machine description could not be loaded or is not a machine a real
/// driver could show.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// The file could not be read.
    #[error("failed to read machine description {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not a machine description.
    #[error("failed to parse machine description {origin}: {source}")]
    Parse {
        /// The file, or `<text>`.
        origin: String,
        /// Why.
        source: serde_json::Error,
    },
    /// A machine-wide field is wrong.
    #[error("invalid machine description: {0}")]
    Machine(String),
    /// Two GPUs or MIG devices share what must be unique.
    #[error("invalid machine description: {what} {value} appears twice")]
    Duplicate {
        /// What is duplicated (`GPU minor`, `UUID`, ...).
        what: &'static str,
        /// The value.
        value: String,
    },
    /// One GPU is wrong.
    #[error("invalid machine description: GPU {index}: {problem}")]
    Gpu {
        /// NVML index of the GPU.
        index: usize,
        /// What is wrong.
        problem: GpuProblem,
    },
}

/// What is wrong with one GPU of a description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuProblem {
    /// `model` is not a board the simulator knows.
    #[error("unknown model {0:?} (known: {known})", known = Model::keys())]
    UnknownModel(String),
    /// A board without MIG described with a MIG mode.
    #[error("{0} has no MIG: its migMode must be \"unsupported\"")]
    NoMigOnBoard(Model),
    /// `uuid` is not `GPU-` and a lowercase 8-4-4-4-12 hex UUID.
    #[error("bad GPU UUID {0:?}: want GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (lowercase hex)")]
    BadUuid(String),
    /// A compute instance's `uuid` is not a `MIG-` UUID.
    #[error("bad MIG UUID {0:?}: want MIG-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (lowercase hex)")]
    BadMigUuid(String),
    /// `pciBusId` does not parse.
    #[error("bad PCI bus id {0:?}: want 0000:BB:DD.F")]
    BadPciBusId(String),
    /// NVML orders GPUs by PCI bus id; this one comes after a higher one.
    #[error("PCI bus id {this} is not above the previous GPU's {previous}: NVML numbers GPUs in PCI bus order")]
    NotInPciOrder {
        /// The previous GPU's address.
        previous: String,
        /// This GPU's address.
        this: String,
    },
    /// Minors 254 and 255 belong to nvidia-modeset and nvidiactl.
    #[error("minor number {0} is out of range (0..=253)")]
    MinorOutOfRange(u32),
    /// The mig-minors table has capability minors for GPU minors 0..31 only.
    #[error("minor number {0} has no entries in mig-minors (GPU minors 0..=31), so it cannot hold MIG instances")]
    MinorWithoutMigCaps(u32),
    /// `unsupported` mixed with another mode.
    #[error("MIG mode \"unsupported\" cannot be current or pending alone")]
    PartlyUnsupported,
    /// GPU instances on a GPU whose current MIG mode is not enabled.
    #[error("GPU instances listed but the current MIG mode is not enabled")]
    InstancesWithoutMig,
    /// The profile is not in this board's table.
    #[error("{profile} does not exist on {model}")]
    UnknownProfile {
        /// As written.
        profile: String,
        /// The board.
        model: Model,
    },
    /// The placement is not one the profile allows.
    #[error("{profile} cannot be placed at {start} (allowed: {allowed:?})")]
    PlacementNotAllowed {
        /// Profile name.
        profile: String,
        /// Requested start.
        start: u32,
        /// Allowed starts.
        allowed: Vec<u32>,
    },
    /// Two GIs share memory slots.
    #[error("GPU instances overlap: {first} and {second}")]
    GpuInstancesOverlap {
        /// One GI, as `profile@start`.
        first: String,
        /// The other.
        second: String,
    },
    /// More instances of one profile than the board allows.
    #[error("too many {profile} instances: at most {max}")]
    TooManyInstances {
        /// Profile name.
        profile: String,
        /// Its instance count.
        max: u32,
    },
    /// The GIs together need more compute slices than the board has.
    #[error("GPU instances use {used} compute slices, more than the GPU's {max}")]
    ComputeSlicesExceeded {
        /// Sum of GI slices.
        used: u32,
        /// The board's compute slices.
        max: u32,
    },
    /// An explicit GI id is not one the profile's size can have.
    #[error(
        "GPU instance id {id} cannot hold {profile} ({slots} memory slots take ids {range:?})"
    )]
    BadGpuInstanceId {
        /// The id.
        id: u32,
        /// Profile name.
        profile: String,
        /// Memory slots of the profile.
        slots: u32,
        /// Ids of that size.
        range: Range<u32>,
    },
    /// Two GIs get the same or overlapping ids.
    #[error("GPU instance ids {first} and {second} overlap in the driver's id tree")]
    GpuInstanceIdClash {
        /// One id.
        first: u32,
        /// The other.
        second: u32,
    },
    /// A CI is larger than its GI.
    #[error(
        "GPU instance {gi}: compute instance of {slices} slices does not fit a GI of {gi_slices}"
    )]
    ComputeInstanceTooLarge {
        /// GI id.
        gi: u32,
        /// CI slices.
        slices: u32,
        /// GI slices.
        gi_slices: u32,
    },
    /// A CI placement the GI does not allow.
    #[error("GPU instance {gi}: a {slices}-slice compute instance cannot start at {start} (allowed: {allowed:?})")]
    ComputePlacementNotAllowed {
        /// GI id.
        gi: u32,
        /// CI slices.
        slices: u32,
        /// Requested start.
        start: u32,
        /// Allowed starts.
        allowed: Vec<u32>,
    },
    /// Two CIs share compute slices.
    #[error("GPU instance {gi}: compute instances overlap at slice {slice}")]
    ComputeInstancesOverlap {
        /// GI id.
        gi: u32,
        /// First shared slice.
        slice: u32,
    },
    /// A CI id out of 0..=7 or used twice.
    #[error("GPU instance {gi}: compute instance id {id} is out of range (0..=7) or used twice")]
    BadComputeInstanceId {
        /// GI id.
        gi: u32,
        /// CI id.
        id: u32,
    },
    /// A MIG slot out of 0..7 or used twice.
    #[error("MIG device index {0} is out of range (0..7) or used twice")]
    BadMigIndex(u32),
}

/// A PCI address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    domain: u32,
    bus: u8,
    device: u8,
    function: u8,
}

impl PciAddress {
    /// Parses `DDDD:BB:DD.F` or `DDDDDDDD:BB:DD.F` (hex, any case).
    pub fn parse(text: &str) -> Option<PciAddress> {
        let (domain, rest) = text.split_once(':')?;
        let (bus, rest) = rest.split_once(':')?;
        let (device, function) = rest.split_once('.')?;
        let hex = |s: &str, max_len: usize| -> Option<u32> {
            if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u32::from_str_radix(s, 16).ok()
        };
        if domain.len() != 4 && domain.len() != 8 {
            return None;
        }
        let address = PciAddress {
            domain: hex(domain, 8)?,
            bus: u8::try_from(hex(bus, 2)?).ok()?,
            device: u8::try_from(hex(device, 2)?).ok()?,
            function: u8::try_from(hex(function, 1)?).ok()?,
        };
        (address.device < 32 && address.function < 8).then_some(address)
    }

    /// PCI domain.
    pub fn domain(&self) -> u32 {
        self.domain
    }

    /// PCI bus.
    pub fn bus(&self) -> u8 {
        self.bus
    }

    /// PCI device.
    pub fn device(&self) -> u8 {
        self.device
    }

    /// PCI function.
    pub fn function(&self) -> u8 {
        self.function
    }

    /// `0000:3f:00.0`: the /proc/driver/nvidia/gpus folder name and
    /// `Bus Location:` line.
    pub fn proc_form(&self) -> String {
        format!(
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }

    /// `00000000:3F:00.0`: NVML's `busId` (`NVML_DEVICE_PCI_BUS_ID_FMT`).
    pub fn nvml_form(&self) -> String {
        format!(
            "{:08X}:{:02X}:{:02X}.{:X}",
            self.domain, self.bus, self.device, self.function
        )
    }

    /// `0000:3F:00.0`: NVML's `busIdLegacy`.
    pub fn nvml_legacy_form(&self) -> String {
        format!(
            "{:04X}:{:02X}:{:02X}.{:X}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.proc_form())
    }
}

/// MIG capability and mode of a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigState {
    /// No MIG on this GPU.
    Unsupported,
    /// MIG-capable.
    Supported {
        /// Mode in effect.
        current: bool,
        /// Mode after the next reset.
        pending: bool,
    },
}

impl MigState {
    /// MIG is supported and currently enabled.
    pub fn is_enabled(&self) -> bool {
        matches!(self, MigState::Supported { current: true, .. })
    }
}

/// A validated machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    driver_version: String,
    cuda_version: (u32, u32),
    nvml_version: String,
    gpus: Vec<Gpu>,
    fake_root: FakeRootDescription,
}

/// One GPU of a [`Machine`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    index: u32,
    model: Model,
    minor: u32,
    pci: PciAddress,
    uuid: String,
    mig: MigState,
    gpu_instances: Vec<GpuInstance>,
    /// `slots[i]` = (GI position, CI position) of MIG device slot i.
    slots: [Option<(usize, usize)>; MAX_MIG_DEVICES as usize],
    vbios: String,
    irq: u32,
    memory_total_mib: u64,
}

/// A GPU instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuInstance {
    id: u32,
    profile: &'static GiProfile,
    start: u32,
    compute_instances: Vec<ComputeInstance>,
}

/// A compute instance: one MIG device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputeInstance {
    id: u32,
    slices: u32,
    start: u32,
    uuid: String,
    mig_index: u32,
}

/// A MIG device seen from its parent: a compute instance with its GI and GPU.
#[derive(Debug, Clone, Copy)]
pub struct MigDevice<'a> {
    /// The parent GPU.
    pub gpu: &'a Gpu,
    /// The GPU instance.
    pub gpu_instance: &'a GpuInstance,
    /// The compute instance.
    pub compute_instance: &'a ComputeInstance,
}

impl Machine {
    /// Reads and validates a description file.
    pub fn load(path: &Path) -> Result<Machine, MachineError> {
        let text = std::fs::read_to_string(path).map_err(|source| MachineError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let description: MachineDescription =
            serde_json::from_str(&text).map_err(|source| MachineError::Parse {
                origin: path.display().to_string(),
                source,
            })?;
        Machine::from_description(&description)
    }

    /// Parses and validates description text.
    pub fn from_json(text: &str) -> Result<Machine, MachineError> {
        let description: MachineDescription =
            serde_json::from_str(text).map_err(|source| MachineError::Parse {
                origin: "<text>".to_owned(),
                source,
            })?;
        Machine::from_description(&description)
    }

    /// Validates a description.
    pub fn from_description(description: &MachineDescription) -> Result<Machine, MachineError> {
        let driver_version = description.driver_version.trim().to_owned();
        if driver_version.is_empty() || driver_version.contains(char::is_whitespace) {
            return Err(MachineError::Machine(format!(
                "bad driverVersion {:?}",
                description.driver_version
            )));
        }
        let cuda_version = parse_cuda_version(&description.cuda_version).ok_or_else(|| {
            MachineError::Machine(format!(
                "bad cudaVersion {:?}: want major.minor like \"13.0\"",
                description.cuda_version
            ))
        })?;
        let nvml_version = description
            .nvml_version
            .clone()
            .unwrap_or_else(|| format!("{}.{}", cuda_version.0, driver_version));

        let mut gpus = Vec::with_capacity(description.gpus.len());
        for (index, gpu) in description.gpus.iter().enumerate() {
            let built = build_gpu(index, gpu, gpus.last())
                .map_err(|problem| MachineError::Gpu { index, problem })?;
            gpus.push(built);
        }

        let machine = Machine {
            driver_version,
            cuda_version,
            nvml_version,
            gpus,
            fake_root: description.fake_root.clone().unwrap_or_default(),
        };
        machine.check_unique()?;
        machine.check_fake_root()?;
        Ok(machine)
    }

    fn check_unique(&self) -> Result<(), MachineError> {
        let mut minors = BTreeSet::new();
        let mut uuids = BTreeSet::new();
        for gpu in &self.gpus {
            if !minors.insert(gpu.minor) {
                return Err(MachineError::Duplicate {
                    what: "GPU minor",
                    value: gpu.minor.to_string(),
                });
            }
            let mig_uuids = gpu.mig_devices().map(|m| m.compute_instance.uuid.as_str());
            for uuid in std::iter::once(gpu.uuid.as_str()).chain(mig_uuids) {
                if !uuids.insert(uuid) {
                    return Err(MachineError::Duplicate {
                        what: "UUID",
                        value: uuid.to_owned(),
                    });
                }
            }
        }
        // PCI addresses are strictly ascending (checked per GPU), hence unique.
        Ok(())
    }

    /// Every planted node must be one the driver would make.
    fn check_fake_root(&self) -> Result<(), MachineError> {
        // Nothing planted (every machine but doctor's): no need to plan
        // the driver's whole tree, which formats the 4322-line mig-minors
        // table, in every process that loads the simulator.
        if self.fake_root.missing_nodes.is_empty() && self.fake_root.wrong_nodes.is_empty() {
            return Ok(());
        }
        let made = crate::fakeroot::node_paths(self);
        let planted = self
            .fake_root
            .missing_nodes
            .iter()
            .chain(self.fake_root.wrong_nodes.iter().map(|w| &w.path));
        for path in planted {
            if !made.contains(path) {
                return Err(MachineError::Machine(format!(
                    "fakeRoot names {path}, which is not a node of this machine (its nodes: {})",
                    made.iter().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Host faults planted in the fake root.
    pub fn fake_root(&self) -> &FakeRootDescription {
        &self.fake_root
    }

    /// The driver's capability model on this host.
    pub fn capability_model(&self) -> CapabilityModel {
        self.fake_root
            .capability_model
            .unwrap_or(CapabilityModel::Devfs)
    }

    /// `nvmlSystemGetDriverVersion`.
    pub fn driver_version(&self) -> &str {
        &self.driver_version
    }

    /// CUDA version supported by the driver, (major, minor).
    pub fn cuda_version(&self) -> (u32, u32) {
        self.cuda_version
    }

    /// `nvmlSystemGetCudaDriverVersion`: `major * 1000 + minor * 10`.
    pub fn cuda_driver_version(&self) -> i32 {
        let (major, minor) = self.cuda_version;
        (major * 1000 + minor * 10) as i32
    }

    /// `nvmlSystemGetNVMLVersion`.
    pub fn nvml_version(&self) -> &str {
        &self.nvml_version
    }

    /// GPUs in NVML index order.
    pub fn gpus(&self) -> &[Gpu] {
        &self.gpus
    }
}

impl Gpu {
    /// NVML index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Board.
    pub fn model(&self) -> Model {
        self.model
    }

    /// `nvmlDeviceGetName`, e.g. `NVIDIA H200`.
    pub fn name(&self) -> &'static str {
        self.model.product_name()
    }

    /// Minor number of `/dev/nvidia<minor>`.
    pub fn minor(&self) -> u32 {
        self.minor
    }

    /// PCI address.
    pub fn pci(&self) -> PciAddress {
        self.pci
    }

    /// `GPU-...` UUID.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// MIG mode.
    pub fn mig(&self) -> MigState {
        self.mig
    }

    /// Existing GPU instances, as described.
    pub fn gpu_instances(&self) -> &[GpuInstance] {
        &self.gpu_instances
    }

    /// `nvmlDeviceGetMaxMigDeviceCount`: the board's compute slices (7, or
    /// 4 on 4-slice boards) when MIG is enabled, else 0.
    pub fn max_mig_devices(&self) -> u32 {
        if self.mig.is_enabled() {
            self.model.compute_slices()
        } else {
            0
        }
    }

    /// The MIG device in slot `index`, if any.
    pub fn mig_device(&self, index: u32) -> Option<MigDevice<'_>> {
        let (gi, ci) = (*self.slots.get(index as usize)?)?;
        let gpu_instance = &self.gpu_instances[gi];
        Some(MigDevice {
            gpu: self,
            gpu_instance,
            compute_instance: &gpu_instance.compute_instances[ci],
        })
    }

    /// MIG devices in slot order (gaps skipped).
    pub fn mig_devices(&self) -> impl Iterator<Item = MigDevice<'_>> + '_ {
        (0..MAX_MIG_DEVICES).filter_map(|slot| self.mig_device(slot))
    }

    /// `Video BIOS:` in /proc.
    pub fn vbios(&self) -> &str {
        &self.vbios
    }

    /// `IRQ:` in /proc.
    pub fn irq(&self) -> u32 {
        self.irq
    }

    /// Total memory, MiB.
    pub fn memory_total_mib(&self) -> u64 {
        self.memory_total_mib
    }

    /// `nvmlDeviceGetGpuInstanceRemainingCapacity`: how many more GIs of
    /// `profile` fit next to the existing ones (all of them when MIG is
    /// disabled: the real H200 with MIG off reports 7/7 for 1g.18gb).
    pub fn remaining_capacity(&self, profile: &GiProfile) -> u32 {
        let taken: Vec<Range<u32>> = self
            .gpu_instances
            .iter()
            .map(|gi| gi.memory_span())
            .collect();
        let free_placements = profile
            .placements
            .iter()
            .filter(|&&start| {
                let span = profile.span(start);
                taken.iter().all(|t| !overlaps(t, &span))
            })
            .count() as u32;
        let same_profile = self
            .gpu_instances
            .iter()
            .filter(|gi| gi.profile.id == profile.id)
            .count() as u32;
        let used_slices: u32 = self.gpu_instances.iter().map(|gi| gi.profile.slices).sum();
        let by_slices = self.model.compute_slices().saturating_sub(used_slices) / profile.slices;
        free_placements
            .min(profile.instances.saturating_sub(same_profile))
            .min(by_slices)
    }
}

impl GpuInstance {
    /// GPU instance id (`nvmlDeviceGetGpuInstanceId`).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Its profile.
    pub fn profile(&self) -> &'static GiProfile {
        self.profile
    }

    /// Placement start, memory slots.
    pub fn start(&self) -> u32 {
        self.start
    }

    /// Memory slots taken.
    pub fn memory_span(&self) -> Range<u32> {
        self.profile.span(self.start)
    }

    /// Its compute instances.
    pub fn compute_instances(&self) -> &[ComputeInstance] {
        &self.compute_instances
    }
}

impl ComputeInstance {
    /// Compute instance id (`nvmlDeviceGetComputeInstanceId`).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Compute slices.
    pub fn slices(&self) -> u32 {
        self.slices
    }

    /// Placement start, compute slices.
    pub fn start(&self) -> u32 {
        self.start
    }

    /// `MIG-...` UUID.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// Slot under the parent GPU.
    pub fn mig_index(&self) -> u32 {
        self.mig_index
    }
}

impl MigDevice<'_> {
    /// Profile as NVIDIA names the MIG device: `1g.18gb`, `2c.3g.40gb` when
    /// the CI has fewer slices than its GI, `1g.18gb+me`.
    pub fn profile_name(&self) -> String {
        let gi = self.gpu_instance.profile;
        if self.compute_instance.slices == gi.slices {
            gi.name.to_owned()
        } else {
            format!("{}c.{}", self.compute_instance.slices, gi.name)
        }
    }

    /// `nvmlDeviceGetName` of the MIG handle: `NVIDIA H200 MIG 1g.18gb`.
    pub fn name(&self) -> String {
        format!("{} MIG {}", self.gpu.name(), self.profile_name())
    }

    /// SMs of this compute instance.
    pub fn sms(&self) -> u32 {
        self.gpu
            .model
            .compute_instance_sms(self.gpu_instance.profile, self.compute_instance.slices)
    }
}

fn parse_cuda_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.trim().split_once('.')?;
    let major: u32 = major.parse().ok()?;
    let minor: u32 = minor.parse().ok()?;
    (major > 0 && major < 100 && minor < 100).then_some((major, minor))
}

/// `true` for `PREFIX-` + lowercase 8-4-4-4-12 hex.
pub fn is_valid_uuid(prefix: &str, text: &str) -> bool {
    let Some(rest) = text.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    let groups: Vec<&str> = rest.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, len)| {
            g.len() == len && g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

/// The UUID the simulator gives a MIG device the description leaves
/// without one: a 128-bit FNV-1a hash of the parent UUID, GI id and CI id,
/// finished with the MurmurHash3 `fmix64` mixer so near inputs give
/// unrelated UUIDs, and shaped like the name-based (version 5) UUIDs real
/// MIG devices carry (`MIG-c7384736-a75d-5afc-978f-d2f1294409fd`). Stable
/// across runs, Rust versions and platforms.
pub fn derive_mig_uuid(parent_uuid: &str, gi: u32, ci: u32) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    fn fmix64(mut k: u64) -> u64 {
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^ (k >> 33)
    }
    let input = format!("nvml-sim/mig/{parent_uuid}/gi{gi}/ci{ci}");
    let mut hash = OFFSET;
    for byte in input.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    let (hi, lo) = ((hash >> 64) as u64, hash as u64);
    let hi = fmix64(hi ^ lo.rotate_left(29));
    let lo = fmix64(lo ^ hi);
    let hi = fmix64(hi ^ lo);
    let mut b = ((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "MIG-{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn overlaps(a: &Range<u32>, b: &Range<u32>) -> bool {
    a.start < b.end && b.start < a.end
}

fn build_gpu(
    index: usize,
    desc: &GpuDescription,
    previous: Option<&Gpu>,
) -> Result<Gpu, GpuProblem> {
    let model =
        Model::from_key(&desc.model).ok_or_else(|| GpuProblem::UnknownModel(desc.model.clone()))?;
    if !is_valid_uuid("GPU", &desc.uuid) {
        return Err(GpuProblem::BadUuid(desc.uuid.clone()));
    }
    let pci = PciAddress::parse(&desc.pci_bus_id)
        .ok_or_else(|| GpuProblem::BadPciBusId(desc.pci_bus_id.clone()))?;
    if let Some(previous) = previous {
        if pci <= previous.pci {
            return Err(GpuProblem::NotInPciOrder {
                previous: previous.pci.proc_form(),
                this: pci.proc_form(),
            });
        }
    }
    if desc.minor > 253 {
        return Err(GpuProblem::MinorOutOfRange(desc.minor));
    }
    let mig = match desc.mig_mode {
        MigModeDescription::Same(MigSetting::Unsupported) => MigState::Unsupported,
        _ if !model.supports_mig() => return Err(GpuProblem::NoMigOnBoard(model)),
        MigModeDescription::Same(setting) => {
            let on = setting == MigSetting::Enabled;
            MigState::Supported {
                current: on,
                pending: on,
            }
        }
        MigModeDescription::Split { current, pending } => {
            if current == MigSetting::Unsupported || pending == MigSetting::Unsupported {
                return Err(GpuProblem::PartlyUnsupported);
            }
            MigState::Supported {
                current: current == MigSetting::Enabled,
                pending: pending == MigSetting::Enabled,
            }
        }
    };
    if !desc.gpu_instances.is_empty() {
        if !mig.is_enabled() {
            return Err(GpuProblem::InstancesWithoutMig);
        }
        if desc.minor > MAX_MIG_GPU_MINOR {
            return Err(GpuProblem::MinorWithoutMigCaps(desc.minor));
        }
    }

    let mut gpu_instances: Vec<GpuInstance> = Vec::new();
    for gi_desc in &desc.gpu_instances {
        let gi = build_gpu_instance(model, &desc.uuid, gi_desc, &gpu_instances)?;
        gpu_instances.push(gi);
    }
    let used: u32 = gpu_instances.iter().map(|gi| gi.profile.slices).sum();
    if used > model.compute_slices() {
        return Err(GpuProblem::ComputeSlicesExceeded {
            used,
            max: model.compute_slices(),
        });
    }

    let slots = assign_mig_slots(
        &mut gpu_instances,
        &desc.gpu_instances,
        model.compute_slices(),
    )?;

    Ok(Gpu {
        index: index as u32,
        model,
        minor: desc.minor,
        pci,
        uuid: desc.uuid.clone(),
        mig,
        gpu_instances,
        slots,
        vbios: desc
            .vbios
            .clone()
            .unwrap_or_else(|| model.default_vbios().to_owned()),
        irq: desc.irq.unwrap_or(41 + index as u32),
        memory_total_mib: desc.memory_total_mib.unwrap_or(model.memory_total_mib()),
    })
}

fn resolve_profile(model: Model, profile: &ProfileRef) -> Result<&'static GiProfile, GpuProblem> {
    let found = match profile {
        ProfileRef::Id(id) => model.profile_by_id(*id),
        ProfileRef::Name(name) => model.profile_by_name(name),
    };
    found.ok_or_else(|| GpuProblem::UnknownProfile {
        profile: profile.to_string(),
        model,
    })
}

fn build_gpu_instance(
    model: Model,
    gpu_uuid: &str,
    desc: &GpuInstanceDescription,
    existing: &[GpuInstance],
) -> Result<GpuInstance, GpuProblem> {
    let profile = resolve_profile(model, &desc.profile)?;
    let start = desc.placement;
    if !profile.placements.contains(&start) {
        return Err(GpuProblem::PlacementNotAllowed {
            profile: profile.name.to_owned(),
            start,
            allowed: profile.placements.to_vec(),
        });
    }
    let span = profile.span(start);
    if let Some(other) = existing
        .iter()
        .find(|gi| overlaps(&gi.memory_span(), &span))
    {
        return Err(GpuProblem::GpuInstancesOverlap {
            first: format!("{}@{}", other.profile.name, other.start),
            second: format!("{}@{}", profile.name, start),
        });
    }
    let same = existing
        .iter()
        .filter(|gi| gi.profile.id == profile.id)
        .count() as u32;
    if same + 1 > profile.instances {
        return Err(GpuProblem::TooManyInstances {
            profile: profile.name.to_owned(),
            max: profile.instances,
        });
    }

    let id = desc
        .id
        .unwrap_or_else(|| model.gpu_instance_id(profile.memory_slots, start));
    let first = model.gpu_instance_id(profile.memory_slots, 0);
    let level = first..first + model.memory_slots() / profile.memory_slots;
    let id_span = model.gpu_instance_span(id).filter(|_| level.contains(&id));
    let Some(id_span) = id_span else {
        return Err(GpuProblem::BadGpuInstanceId {
            id,
            profile: profile.name.to_owned(),
            slots: profile.memory_slots,
            range: level,
        });
    };
    if let Some(other) = existing.iter().find(|gi| {
        model
            .gpu_instance_span(gi.id)
            .is_some_and(|s| overlaps(&s, &id_span))
    }) {
        return Err(GpuProblem::GpuInstanceIdClash {
            first: other.id,
            second: id,
        });
    }

    let ci_descs: Vec<ComputeInstanceDescription> = desc
        .compute_instances
        .clone()
        .unwrap_or_else(|| vec![ComputeInstanceDescription::default()]);
    let mut compute_instances: Vec<ComputeInstance> = Vec::new();
    let mut taken = [false; 8];
    for ci_desc in &ci_descs {
        let slices = ci_desc.slices.unwrap_or(profile.slices);
        if slices == 0 || slices > profile.slices {
            return Err(GpuProblem::ComputeInstanceTooLarge {
                gi: id,
                slices,
                gi_slices: profile.slices,
            });
        }
        let ci_start = ci_desc.placement.unwrap_or(0);
        let allowed = profiles::compute_placements(profile.slices, slices);
        if !allowed.contains(&ci_start) {
            return Err(GpuProblem::ComputePlacementNotAllowed {
                gi: id,
                slices,
                start: ci_start,
                allowed,
            });
        }
        for slice in ci_start..ci_start + slices {
            if std::mem::replace(&mut taken[slice as usize], true) {
                return Err(GpuProblem::ComputeInstancesOverlap { gi: id, slice });
            }
        }
        let ci_id = ci_desc.id.unwrap_or(ci_start);
        if ci_id > 7 || compute_instances.iter().any(|ci| ci.id == ci_id) {
            return Err(GpuProblem::BadComputeInstanceId { gi: id, id: ci_id });
        }
        let uuid = match &ci_desc.uuid {
            Some(uuid) if is_valid_uuid("MIG", uuid) => uuid.clone(),
            Some(uuid) => return Err(GpuProblem::BadMigUuid(uuid.clone())),
            None => derive_mig_uuid(gpu_uuid, id, ci_id),
        };
        compute_instances.push(ComputeInstance {
            id: ci_id,
            slices,
            start: ci_start,
            uuid,
            mig_index: u32::MAX,
        });
    }

    Ok(GpuInstance {
        id,
        profile,
        start,
        compute_instances,
    })
}

/// Explicit `migIndex` slots first; the others take the lowest free slots
/// in (GI id, CI id) order, which is how NVML numbered the devices in every
/// published listing we found (GI 1 before GI 2; CIs 0, 1, 2 of one GI in
/// order).
fn assign_mig_slots(
    gpu_instances: &mut [GpuInstance],
    descs: &[GpuInstanceDescription],
    max_slots: u32,
) -> Result<[Option<(usize, usize)>; MAX_MIG_DEVICES as usize], GpuProblem> {
    let mut slots = [None; MAX_MIG_DEVICES as usize];
    let mut rest = Vec::new();
    for (gi_pos, gi_desc) in descs.iter().enumerate() {
        let explicit: Vec<Option<u32>> = match &gi_desc.compute_instances {
            Some(cis) => cis.iter().map(|c| c.mig_index).collect(),
            None => vec![None],
        };
        for (ci_pos, mig_index) in explicit.into_iter().enumerate() {
            match mig_index {
                Some(slot) => {
                    let cell = slots
                        .get_mut(slot as usize)
                        .filter(|c| c.is_none() && slot < max_slots)
                        .ok_or(GpuProblem::BadMigIndex(slot))?;
                    *cell = Some((gi_pos, ci_pos));
                }
                None => rest.push((gi_pos, ci_pos)),
            }
        }
    }
    rest.sort_by_key(|&(gi, ci)| {
        (
            gpu_instances[gi].id,
            gpu_instances[gi].compute_instances[ci].id,
        )
    });
    let mut free = (0..max_slots as usize)
        .filter(|&s| slots[s].is_none())
        .collect::<Vec<_>>()
        .into_iter();
    for entry in rest {
        let slot = free.next().ok_or(GpuProblem::BadMigIndex(max_slots))?;
        slots[slot] = Some(entry);
    }
    for (slot, entry) in slots.iter().enumerate() {
        if let Some((gi, ci)) = *entry {
            gpu_instances[gi].compute_instances[ci].mig_index = slot as u32;
        }
    }
    Ok(slots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_forms() {
        let a = PciAddress::parse("0000:3f:00.0").unwrap();
        assert_eq!(a.proc_form(), "0000:3f:00.0");
        assert_eq!(a.nvml_form(), "00000000:3F:00.0");
        assert_eq!(a.nvml_legacy_form(), "0000:3F:00.0");
        assert_eq!(PciAddress::parse("00000000:3F:00.0"), Some(a));
        assert_eq!(PciAddress::parse("0000:3f:00"), None);
        assert_eq!(PciAddress::parse("000:3f:00.0"), None);
        assert_eq!(PciAddress::parse("0000:3f:40.0"), None);
    }

    #[test]
    fn uuids() {
        assert!(is_valid_uuid(
            "GPU",
            "GPU-866b5d23-5f64-aec2-09af-f17711608a22"
        ));
        assert!(!is_valid_uuid(
            "GPU",
            "GPU-866B5D23-5f64-aec2-09af-f17711608a22"
        ));
        assert!(!is_valid_uuid(
            "GPU",
            "MIG-866b5d23-5f64-aec2-09af-f17711608a22"
        ));
        let mig = derive_mig_uuid("GPU-866b5d23-5f64-aec2-09af-f17711608a22", 7, 0);
        assert!(is_valid_uuid("MIG", &mig), "{mig}");
        assert_eq!(
            mig,
            derive_mig_uuid("GPU-866b5d23-5f64-aec2-09af-f17711608a22", 7, 0)
        );
        assert_ne!(
            mig,
            derive_mig_uuid("GPU-866b5d23-5f64-aec2-09af-f17711608a22", 8, 0)
        );
        assert_eq!(&mig[18..19], "5", "version nibble");
    }

    #[test]
    fn cuda_versions() {
        assert_eq!(parse_cuda_version("13.0"), Some((13, 0)));
        assert_eq!(parse_cuda_version("12.4"), Some((12, 4)));
        assert_eq!(parse_cuda_version("12"), None);
    }
}
