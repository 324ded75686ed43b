//! The simulated driver's state and answers, in safe Rust.
//!
//! `ffi.rs` only moves values across the C boundary; everything that
//! decides *what* NVML answers lives here: the init reference count, the
//! machine loaded from `NVML_SIM_MACHINE`, the device handles, and which
//! error a call gets for which kind of handle.
//!
//! Handles are the addresses of per-device cells in vectors that are built
//! once and never grow, owned by a machine that, once loaded, is leaked: a
//! handle stays a valid
//! opaque value even after `nvmlShutdown` (calls then answer
//! `NVML_ERROR_UNINITIALIZED`, as NVML does). A handle is only ever
//! compared with the cells' addresses, never dereferenced, so a garbage
//! handle gets `NVML_ERROR_INVALID_ARGUMENT` instead of a crash. Loading the
//! same file content again (init after shutdown) reuses the same cells, so
//! handles are stable across init cycles too.
//!
//! Error codes for the wrong kind of handle (NVML's headers name the codes
//! but not this case; these are our choices, kept consistent):
//!
//! | call                                                  | MIG handle        | GPU handle        |
//! |-------------------------------------------------------|-------------------|-------------------|
//! | Index, MinorNumber, PciInfo, MigMode                  | NOT_SUPPORTED     | answer            |
//! | MaxMigDeviceCount, MigDeviceHandleByIndex             | INVALID_ARGUMENT  | answer            |
//! | GpuInstanceProfileInfo(V), RemainingCapacity, PossiblePlacements | INVALID_ARGUMENT | answer (NOT_SUPPORTED without MIG) |
//! | GpuInstanceId, ComputeInstanceId                      | answer            | NOT_SUPPORTED     |
//! | DeviceHandleFromMigDeviceHandle                       | answer            | INVALID_ARGUMENT  |
//! | Attributes_v2 ("currently only supports MIG device handles") | answer    | NOT_SUPPORTED     |
//! | UUID, Name, MemoryInfo, CudaComputeCapability, IsMigDeviceHandle, Architecture | answer | answer |
//! | VbiosVersion                                          | NOT_SUPPORTED     | answer            |
//! | GpuInstances, GpuInstanceById                          | INVALID_ARGUMENT  | answer (NOT_SUPPORTED with MIG off or absent) |
//!
//! GPU- and compute-instance handles (`nvmlGpuInstance_t`,
//! `nvmlComputeInstance_t`) are cells of their own: passing one where a
//! device handle is expected, or the other way round, is
//! `INVALID_ARGUMENT`. An id no instance has is `NOT_FOUND`.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use nvml_wrapper_sys::bindings as sys;

use crate::machine::{
    ComputeInstance, Gpu, GpuInstance, Machine, MigDevice, PciAddress, MAX_MIG_DEVICES,
};
use crate::profiles::GiProfile;

/// An NVML return code.
pub(crate) type Ret = sys::nvmlReturn_t;

/// The NVML return codes the simulator uses.
pub(crate) mod code {
    use nvml_wrapper_sys::bindings as sys;

    pub const SUCCESS: sys::nvmlReturn_t = sys::nvmlReturn_enum_NVML_SUCCESS;
    pub const UNINITIALIZED: sys::nvmlReturn_t = sys::nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
    pub const INVALID_ARGUMENT: sys::nvmlReturn_t =
        sys::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
    pub const NOT_SUPPORTED: sys::nvmlReturn_t = sys::nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
    pub const NOT_FOUND: sys::nvmlReturn_t = sys::nvmlReturn_enum_NVML_ERROR_NOT_FOUND;
    pub const INSUFFICIENT_SIZE: sys::nvmlReturn_t =
        sys::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE;
    pub const DRIVER_NOT_LOADED: sys::nvmlReturn_t =
        sys::nvmlReturn_enum_NVML_ERROR_DRIVER_NOT_LOADED;
    pub const ARGUMENT_VERSION_MISMATCH: sys::nvmlReturn_t =
        sys::nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    pub const UNKNOWN: sys::nvmlReturn_t = sys::nvmlReturn_enum_NVML_ERROR_UNKNOWN;
}

/// Environment variable naming the machine description to load.
pub const MACHINE_ENV: &str = "NVML_SIM_MACHINE";

/// Gives each device a distinct, stable address; never read.
#[derive(Debug)]
struct HandleCell {
    _gpu: u32,
    _slot: u32,
}

/// A loaded machine and its handles.
#[derive(Debug)]
pub(crate) struct Sim {
    machine: Machine,
    /// One per GPU; never resized, so the addresses hold.
    gpu_cells: Vec<HandleCell>,
    /// `[gpu][slot]`, `None` for an empty slot; never resized.
    mig_cells: Vec<Vec<Option<HandleCell>>>,
    /// `nvmlGpuInstance_t` values: `[gpu][gi position]`; never resized.
    gi_cells: Vec<Vec<HandleCell>>,
    /// `nvmlComputeInstance_t` values: `[gpu][gi position][ci position]`.
    ci_cells: Vec<Vec<Vec<HandleCell>>>,
}

/// A GPU instance, by its handle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GiRef<'a> {
    pub(crate) gpu: &'a Gpu,
    pub(crate) gi: &'a GpuInstance,
    /// Position in `gpu.gpu_instances()`.
    pub(crate) position: usize,
}

/// A compute instance, by its handle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CiRef<'a> {
    pub(crate) parent: GiRef<'a>,
    pub(crate) ci: &'a ComputeInstance,
}

/// What a handle names.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    Gpu(&'a Gpu),
    Mig(MigDevice<'a>),
}

impl<'a> Target<'a> {
    /// The physical GPU (the parent for a MIG device).
    pub(crate) fn gpu(&self) -> &'a Gpu {
        match self {
            Target::Gpu(gpu) => gpu,
            Target::Mig(mig) => mig.gpu,
        }
    }
}

impl Sim {
    pub(crate) fn new(machine: Machine) -> Sim {
        let gpu_cells = machine
            .gpus()
            .iter()
            .map(|g| HandleCell {
                _gpu: g.index(),
                _slot: u32::MAX,
            })
            .collect();
        let mig_cells = machine
            .gpus()
            .iter()
            .map(|g| {
                (0..MAX_MIG_DEVICES)
                    .map(|slot| {
                        g.mig_device(slot).map(|_| HandleCell {
                            _gpu: g.index(),
                            _slot: slot,
                        })
                    })
                    .collect()
            })
            .collect();
        let cell = |gpu: u32, n: usize| HandleCell {
            _gpu: gpu,
            _slot: n as u32,
        };
        let gi_cells = machine
            .gpus()
            .iter()
            .map(|g| {
                (0..g.gpu_instances().len())
                    .map(|n| cell(g.index(), n))
                    .collect()
            })
            .collect();
        let ci_cells = machine
            .gpus()
            .iter()
            .map(|g| {
                g.gpu_instances()
                    .iter()
                    .map(|gi| {
                        (0..gi.compute_instances().len())
                            .map(|n| cell(g.index(), n))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Sim {
            machine,
            gpu_cells,
            mig_cells,
            gi_cells,
            ci_cells,
        }
    }

    /// Handle of GPU instance `position` of GPU `gpu`.
    pub(crate) fn gi_handle(&self, gpu: u32, position: usize) -> Result<usize, Ret> {
        self.gi_cells
            .get(gpu as usize)
            .and_then(|g| g.get(position))
            .map(Sim::address)
            .ok_or(code::UNKNOWN)
    }

    /// Handle of compute instance `ci` of GI `gi` of GPU `gpu` (positions).
    pub(crate) fn ci_handle(&self, gpu: u32, gi: usize, ci: usize) -> Result<usize, Ret> {
        self.ci_cells
            .get(gpu as usize)
            .and_then(|g| g.get(gi))
            .and_then(|g| g.get(ci))
            .map(Sim::address)
            .ok_or(code::UNKNOWN)
    }

    /// The GPU instance `handle` names; `INVALID_ARGUMENT` otherwise.
    pub(crate) fn resolve_gi(&self, handle: usize) -> Result<GiRef<'_>, Ret> {
        for (g, gis) in self.gi_cells.iter().enumerate() {
            for (position, cell) in gis.iter().enumerate() {
                if Sim::address(cell) == handle {
                    let gpu = &self.machine.gpus()[g];
                    return Ok(GiRef {
                        gpu,
                        gi: &gpu.gpu_instances()[position],
                        position,
                    });
                }
            }
        }
        Err(code::INVALID_ARGUMENT)
    }

    /// The compute instance `handle` names; `INVALID_ARGUMENT` otherwise.
    pub(crate) fn resolve_ci(&self, handle: usize) -> Result<CiRef<'_>, Ret> {
        for (g, gis) in self.ci_cells.iter().enumerate() {
            for (position, cis) in gis.iter().enumerate() {
                for (c, cell) in cis.iter().enumerate() {
                    if Sim::address(cell) == handle {
                        let gpu = &self.machine.gpus()[g];
                        let gi = &gpu.gpu_instances()[position];
                        return Ok(CiRef {
                            parent: GiRef { gpu, gi, position },
                            ci: &gi.compute_instances()[c],
                        });
                    }
                }
            }
        }
        Err(code::INVALID_ARGUMENT)
    }

    /// A physical GPU whose current MIG mode is enabled, for the GPU
    /// instance queries: a MIG handle is `INVALID_ARGUMENT`, a GPU without
    /// MIG or with MIG off `NOT_SUPPORTED` (our choice; NVML documents no
    /// code for it).
    pub(crate) fn mig_enabled(&self, handle: usize) -> Result<&Gpu, Ret> {
        let gpu = self.mig_capable(handle)?;
        if gpu.mig().is_enabled() {
            Ok(gpu)
        } else {
            Err(code::NOT_SUPPORTED)
        }
    }

    pub(crate) fn machine(&self) -> &Machine {
        &self.machine
    }

    fn address(cell: &HandleCell) -> usize {
        cell as *const HandleCell as usize
    }

    /// Handle of GPU `index`.
    pub(crate) fn gpu_handle(&self, index: u32) -> Result<usize, Ret> {
        self.gpu_cells
            .get(index as usize)
            .map(Sim::address)
            .ok_or(code::INVALID_ARGUMENT)
    }

    fn mig_handle(&self, gpu: u32, slot: u32) -> Option<usize> {
        self.mig_cells
            .get(gpu as usize)?
            .get(slot as usize)?
            .as_ref()
            .map(Sim::address)
    }

    /// What `handle` names; `INVALID_ARGUMENT` for a value that is not one
    /// of ours.
    pub(crate) fn resolve(&self, handle: usize) -> Result<Target<'_>, Ret> {
        if handle == 0 {
            return Err(code::INVALID_ARGUMENT);
        }
        for (g, cell) in self.gpu_cells.iter().enumerate() {
            if Sim::address(cell) == handle {
                return Ok(Target::Gpu(&self.machine.gpus()[g]));
            }
        }
        for (g, slots) in self.mig_cells.iter().enumerate() {
            for (slot, cell) in slots.iter().enumerate() {
                if cell.as_ref().map(Sim::address) == Some(handle) {
                    let mig = self.machine.gpus()[g]
                        .mig_device(slot as u32)
                        .ok_or(code::UNKNOWN)?;
                    return Ok(Target::Mig(mig));
                }
            }
        }
        Err(code::INVALID_ARGUMENT)
    }

    /// A physical GPU handle; a MIG handle gets `mig_error`.
    pub(crate) fn physical(&self, handle: usize, mig_error: Ret) -> Result<&Gpu, Ret> {
        match self.resolve(handle)? {
            Target::Gpu(gpu) => Ok(gpu),
            Target::Mig(_) => Err(mig_error),
        }
    }

    /// A MIG handle; a GPU handle gets `gpu_error`.
    pub(crate) fn mig(&self, handle: usize, gpu_error: Ret) -> Result<MigDevice<'_>, Ret> {
        match self.resolve(handle)? {
            Target::Mig(mig) => Ok(mig),
            Target::Gpu(_) => Err(gpu_error),
        }
    }

    /// `nvmlDeviceGetHandleByUUID`: GPU or MIG UUID.
    pub(crate) fn handle_by_uuid(&self, uuid: &str) -> Result<usize, Ret> {
        for gpu in self.machine.gpus() {
            if gpu.uuid() == uuid {
                return self.gpu_handle(gpu.index());
            }
            for mig in gpu.mig_devices() {
                if mig.compute_instance.uuid() == uuid {
                    return self
                        .mig_handle(gpu.index(), mig.compute_instance.mig_index())
                        .ok_or(code::UNKNOWN);
                }
            }
        }
        Err(code::NOT_FOUND)
    }

    /// `nvmlDeviceGetHandleByPciBusId_v2`.
    pub(crate) fn handle_by_pci_bus_id(&self, bus_id: &str) -> Result<usize, Ret> {
        let wanted = PciAddress::parse(bus_id).ok_or(code::INVALID_ARGUMENT)?;
        let gpu = self
            .machine
            .gpus()
            .iter()
            .find(|g| g.pci() == wanted)
            .ok_or(code::NOT_FOUND)?;
        self.gpu_handle(gpu.index())
    }

    /// `nvmlDeviceGetMigDeviceHandleByIndex`.
    pub(crate) fn mig_handle_by_index(&self, parent: usize, index: u32) -> Result<usize, Ret> {
        let gpu = self.physical(parent, code::INVALID_ARGUMENT)?;
        if index >= gpu.max_mig_devices() {
            return Err(code::INVALID_ARGUMENT);
        }
        self.mig_handle(gpu.index(), index).ok_or(code::NOT_FOUND)
    }

    /// `nvmlDeviceGetDeviceHandleFromMigDeviceHandle`.
    pub(crate) fn parent_handle(&self, mig: usize) -> Result<usize, Ret> {
        let mig = self.mig(mig, code::INVALID_ARGUMENT)?;
        self.gpu_handle(mig.gpu.index())
    }

    /// A MIG-capable physical GPU for the profile calls.
    pub(crate) fn mig_capable(&self, handle: usize) -> Result<&Gpu, Ret> {
        let gpu = self.physical(handle, code::INVALID_ARGUMENT)?;
        match gpu.mig() {
            crate::machine::MigState::Unsupported => Err(code::NOT_SUPPORTED),
            crate::machine::MigState::Supported { .. } => Ok(gpu),
        }
    }

    /// Profile by NVML profile index, for `nvmlDeviceGetGpuInstanceProfileInfo(V)`.
    pub(crate) fn profile_by_index(
        &self,
        handle: usize,
        index: u32,
    ) -> Result<&'static GiProfile, Ret> {
        let gpu = self.mig_capable(handle)?;
        if index >= sys::NVML_GPU_INSTANCE_PROFILE_COUNT {
            return Err(code::INVALID_ARGUMENT);
        }
        gpu.model()
            .profile_by_index(index)
            .ok_or(code::NOT_SUPPORTED)
    }

    /// Profile by profile id, for capacity and placements.
    pub(crate) fn profile_by_id(
        &self,
        handle: usize,
        id: u32,
    ) -> Result<(&Gpu, &'static GiProfile), Ret> {
        let gpu = self.mig_capable(handle)?;
        let profile = gpu
            .model()
            .profile_by_id(id)
            .ok_or(code::INVALID_ARGUMENT)?;
        Ok((gpu, profile))
    }
}

/// Init reference count and loaded machines.
struct Library {
    refcount: u32,
    current: Option<&'static Sim>,
    /// Every machine loaded in this process, by path and content, so a
    /// re-init of the same file gives the same handles.
    loaded: Vec<(PathBuf, String, &'static Sim)>,
}

static LIBRARY: Mutex<Library> = Mutex::new(Library {
    refcount: 0,
    current: None,
    loaded: Vec::new(),
});

fn library() -> MutexGuard<'static, Library> {
    LIBRARY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `nvmlInit*`: the first call loads the machine named by
/// `NVML_SIM_MACHINE`; later ones only count.
pub(crate) fn init() -> Result<(), Ret> {
    let mut lib = library();
    if lib.refcount > 0 {
        lib.refcount += 1;
        return Ok(());
    }
    let sim = load(&mut lib).map_err(|why| {
        eprintln!("nvml-sim: {why}");
        code::DRIVER_NOT_LOADED
    })?;
    lib.current = Some(sim);
    lib.refcount = 1;
    Ok(())
}

fn load(lib: &mut Library) -> Result<&'static Sim, String> {
    let path = std::env::var_os(MACHINE_ENV)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| {
            format!("{MACHINE_ENV} is not set, so there is no simulated machine to load")
        })?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read machine description {}: {e}", path.display()))?;
    if let Some((_, _, sim)) = lib.loaded.iter().find(|(p, t, _)| *p == path && *t == text) {
        return Ok(sim);
    }
    let machine = Machine::from_json(&text)
        .map_err(|e| format!("cannot load machine description {}: {e}", path.display()))?;
    let sim: &'static Sim = Box::leak(Box::new(Sim::new(machine)));
    lib.loaded.push((path, text, sim));
    Ok(sim)
}

/// `nvmlShutdown`.
pub(crate) fn shutdown() -> Result<(), Ret> {
    let mut lib = library();
    match lib.refcount {
        0 => Err(code::UNINITIALIZED),
        1 => {
            lib.refcount = 0;
            lib.current = None;
            Ok(())
        }
        _ => {
            lib.refcount -= 1;
            Ok(())
        }
    }
}

/// The loaded machine, or `UNINITIALIZED`.
pub(crate) fn current() -> Result<&'static Sim, Ret> {
    let lib = library();
    match (lib.refcount, lib.current) {
        (1.., Some(sim)) => Ok(sim),
        _ => Err(code::UNINITIALIZED),
    }
}

/// `nvmlErrorString` texts (NVML's wording).
pub(crate) fn error_string(ret: Ret) -> &'static std::ffi::CStr {
    match ret {
        0 => c"Success",
        1 => c"Uninitialized",
        2 => c"Invalid Argument",
        3 => c"Not Supported",
        4 => c"Insufficient Permissions",
        5 => c"Already Initialized",
        6 => c"Not Found",
        7 => c"Insufficient Size",
        8 => c"Insufficient External Power",
        9 => c"Driver Not Loaded",
        10 => c"Timeout",
        11 => c"Interrupt request issue",
        12 => c"NVML Shared Library Not Found",
        13 => c"Function Not Found",
        14 => c"Corrupted infoROM",
        15 => c"GPU is lost",
        16 => c"GPU requires restart",
        17 => c"The operating system has blocked the request.",
        18 => c"RM has detected an NVML/RM version mismatch.",
        19 => c"In use by another client",
        20 => c"Insufficient Memory",
        21 => c"No data",
        22 => c"ECC is enabled",
        23 => c"Insufficient resources for request",
        24 => c"Frequency not supported",
        25 => c"Argument version mismatch",
        26 => c"Deprecated",
        27 => c"Not ready",
        28 => c"GPU not found",
        29 => c"Invalid state",
        _ => c"Unknown Error",
    }
}
