//! Every NVML call mig-cdi makes, in one place.
//!
//! [`take_snapshot`] loads the library (the system's `libnvidia-ml.so.1`,
//! or the simulator in tests), reads every GPU and MIG device once — and
//! the GPU-instance profile tables only when asked ([`Reads`]: `list
//! --profiles`; up to 14 profile and capacity queries per GPU that nothing
//! else uses) — shuts NVML down and returns a sorted [`Snapshot`]. Nothing else in the generator talks to NVML, so the rest
//! is pure code over that snapshot. Only getters are called: mig-cdi never
//! changes the GPU's state.

use std::ffi::{c_char, c_uint, OsStr};

use anyhow::{anyhow, bail, Context, Result};
use mig_cdi_core::snapshot::{
    GiProfile, Gpu, GpuDetails, GpuInstance, GpuInstances, MigDevice, MigMode, Snapshot,
};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings::{
    nvmlDevice_t, nvmlGpuInstanceInfo_t, nvmlGpuInstanceProfileInfo_v2_t, nvmlGpuInstance_t,
    nvmlReturn_enum_NVML_ERROR_NO_PERMISSION, nvmlReturn_enum_NVML_SUCCESS,
    NVML_GPU_INSTANCE_PROFILE_COUNT,
};

/// `NVML_ERROR_NOT_SUPPORTED`, `NVML_ERROR_INVALID_ARGUMENT`,
/// `NVML_ERROR_NOT_FOUND`: a profile index or MIG slot that does not exist.
const ABSENT: [u32; 3] = [3, 2, 6];

/// Default library: the soname the driver installs.
pub const DEFAULT_LIB: &str = "libnvidia-ml.so.1";

/// What a snapshot reads beyond the GPUs and MIG devices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reads {
    /// Each MIG-capable GPU's GPU-instance profiles and their free
    /// capacity (`Gpu::profiles`; empty when not read).
    pub profiles: bool,
    /// What `doctor` checks beyond that: architecture, compute capability,
    /// vBIOS and the GPU instances (`Gpu::details`; `None` when not read).
    pub details: bool,
}

/// Read the node through NVML at `lib`.
pub fn take_snapshot(lib: &OsStr, reads: Reads) -> Result<Snapshot> {
    let nvml = Nvml::builder()
        .lib_path(lib)
        .init()
        .map_err(|e| init_error(lib, e))?;
    let driver_version = nvml
        .sys_driver_version()
        .context("nvmlSystemGetDriverVersion failed")?;
    let cuda_version = nvml
        .sys_cuda_driver_version()
        .ok()
        .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10));
    let count = nvml.device_count().context("nvmlDeviceGetCount failed")?;
    let mut gpus = Vec::with_capacity(count as usize);
    for index in 0..count {
        let device = nvml
            .device_by_index(index)
            .with_context(|| format!("nvmlDeviceGetHandleByIndex({index}) failed"))?;
        gpus.push(read_gpu(&nvml, &device, index, reads).with_context(|| format!("GPU {index}"))?);
    }
    let mut snapshot = Snapshot {
        driver_version,
        cuda_version,
        gpus,
    };
    snapshot.sort();
    nvml.shutdown().context("nvmlShutdown failed")?;
    Ok(snapshot)
}

fn init_error(lib: &OsStr, e: NvmlError) -> anyhow::Error {
    let lib = lib.to_string_lossy();
    match e {
        NvmlError::LibloadingError(e) => anyhow!(
            "cannot load {lib}: {e}; is the NVIDIA driver installed? Point --nvml-lib at \
             libnvidia-ml.so.1 if it lives elsewhere"
        ),
        NvmlError::DriverNotLoaded => anyhow!(
            "NVML ({lib}) says the NVIDIA driver is not loaded; load the nvidia kernel module \
             (nvidia-smi should list the GPUs) and try again"
        ),
        NvmlError::NoPermission => anyhow!(
            "NVML ({lib}) has no permission to talk to the driver; run as root or fix the \
             permissions of /dev/nvidiactl"
        ),
        e => anyhow!("nvmlInit ({lib}) failed: {e}"),
    }
}

fn read_gpu(nvml: &Nvml, device: &Device<'_>, index: u32, reads: Reads) -> Result<Gpu> {
    let minor = device
        .minor_number()
        .context("nvmlDeviceGetMinorNumber failed")?;
    let uuid = device.uuid().context("nvmlDeviceGetUUID failed")?;
    let name = device.name().context("nvmlDeviceGetName failed")?;
    let pci_bus_id = device
        .pci_info()
        .context("nvmlDeviceGetPciInfo failed")?
        .bus_id;
    let mig = match device.mig_mode() {
        Ok(mode) => Some(MigMode {
            current: mode.current == 1,
            pending: mode.pending == 1,
        }),
        Err(NvmlError::NotSupported) => None,
        Err(e) => return Err(e).context("nvmlDeviceGetMigMode failed"),
    };
    let (mig_devices, profiles) = match mig {
        None => (Vec::new(), Vec::new()),
        Some(mode) => {
            let devices = if mode.current {
                read_mig_devices(nvml, device)?
            } else {
                Vec::new()
            };
            let profiles = if reads.profiles {
                read_profiles(nvml, device, mode.current)?
            } else {
                Vec::new()
            };
            (devices, profiles)
        }
    };
    let details = if reads.details {
        Some(read_details(nvml, device, mig)?)
    } else {
        None
    };
    Ok(Gpu {
        index,
        minor,
        uuid,
        name,
        pci_bus_id,
        mig,
        mig_devices,
        profiles,
        details,
    })
}

fn read_mig_devices(nvml: &Nvml, parent: &Device<'_>) -> Result<Vec<MigDevice>> {
    let max = parent
        .mig_device_count()
        .context("nvmlDeviceGetMaxMigDeviceCount failed")?;
    let mut devices = Vec::new();
    for slot in 0..max {
        let mig = match parent.mig_device_by_index(slot) {
            Ok(mig) => mig,
            Err(NvmlError::NotFound) => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("nvmlDeviceGetMigDeviceHandleByIndex({slot}) failed"))
            }
        };
        devices
            .push(read_mig_device(nvml, &mig, slot).with_context(|| format!("MIG device {slot}"))?);
    }
    Ok(devices)
}

fn read_mig_device(nvml: &Nvml, mig: &Device<'_>, slot: u32) -> Result<MigDevice> {
    let uuid = mig.uuid().context("nvmlDeviceGetUUID failed")?;
    let name = mig.name().context("nvmlDeviceGetName failed")?;
    let profile = match name.split_once("MIG ") {
        Some((_, profile)) => profile.trim().to_string(),
        None => bail!("NVML named MIG device {uuid} {name:?}, without a `MIG <profile>` part"),
    };
    let attributes = mig.attributes().context("nvmlDeviceGetAttributes failed")?;
    // SAFETY: `mig` is a live handle of this `nvml`, which outlives the call.
    let handle = unsafe { mig.handle() };
    Ok(MigDevice {
        index: slot,
        uuid,
        gi: instance_id(nvml, handle, Instance::Gpu)?,
        ci: instance_id(nvml, handle, Instance::Compute)?,
        profile,
        memory_mib: attributes.memory_size_mb,
        sm_count: attributes.multiprocessor_count,
        gi_slices: attributes.gpu_instance_slice_count,
        ci_slices: attributes.compute_instance_slice_count,
    })
}

#[derive(Clone, Copy)]
enum Instance {
    Gpu,
    Compute,
}

/// nvml-wrapper does not wrap the GI/CI id getters; call the symbols.
fn instance_id(nvml: &Nvml, handle: nvmlDevice_t, which: Instance) -> Result<u32> {
    let lib = nvml.lib();
    let (name, sym) = match which {
        Instance::Gpu => (
            "nvmlDeviceGetGpuInstanceId",
            lib.nvmlDeviceGetGpuInstanceId.as_ref(),
        ),
        Instance::Compute => (
            "nvmlDeviceGetComputeInstanceId",
            lib.nvmlDeviceGetComputeInstanceId.as_ref(),
        ),
    };
    let sym = sym
        .map_err(|e| anyhow!("{name} is missing from NVML ({e}); the driver is too old for MIG"))?;
    let mut id: c_uint = 0;
    // SAFETY: `handle` is a live MIG handle, `id` a valid out-pointer, and the
    // symbol has the C signature `nvmlReturn_t (nvmlDevice_t, unsigned int *)`.
    let ret = unsafe { sym(handle, &mut id) };
    if ret != nvmlReturn_enum_NVML_SUCCESS {
        bail!("{name} failed: NVML error {ret}");
    }
    Ok(id)
}

/// `NVML_STRUCT_VERSION(GpuInstanceProfileInfo, 2)`.
const PROFILE_INFO_V2: c_uint =
    (std::mem::size_of::<nvmlGpuInstanceProfileInfo_v2_t>() as c_uint) | (2 << 24);

fn read_profiles(nvml: &Nvml, device: &Device<'_>, mig_on: bool) -> Result<Vec<GiProfile>> {
    let lib = nvml.lib();
    let info_v = lib.nvmlDeviceGetGpuInstanceProfileInfoV.as_ref().map_err(|e| {
        anyhow!("nvmlDeviceGetGpuInstanceProfileInfoV is missing from NVML ({e}); the driver is too old")
    })?;
    let remaining = lib
        .nvmlDeviceGetGpuInstanceRemainingCapacity
        .as_ref()
        .map_err(|e| {
            anyhow!("nvmlDeviceGetGpuInstanceRemainingCapacity is missing from NVML ({e})")
        })?;
    // SAFETY: `device` is a live GPU handle of this `nvml`.
    let handle = unsafe { device.handle() };
    let mut profiles = Vec::new();
    for profile_index in 0..NVML_GPU_INSTANCE_PROFILE_COUNT {
        // SAFETY: an all-zero value is valid for this plain C struct.
        let mut info: nvmlGpuInstanceProfileInfo_v2_t = unsafe { std::mem::zeroed() };
        info.version = PROFILE_INFO_V2;
        // SAFETY: live handle, valid out-pointer to a v2 struct whose version
        // field says so, C signature as bound by nvml-wrapper-sys.
        let ret = unsafe { info_v(handle, profile_index, &mut info) };
        if ABSENT.contains(&ret) {
            continue;
        }
        if ret != nvmlReturn_enum_NVML_SUCCESS {
            bail!("nvmlDeviceGetGpuInstanceProfileInfoV(profile index {profile_index}) failed: NVML error {ret}");
        }
        let mut free: c_uint = 0;
        // SAFETY: live handle, a profile id NVML just returned, valid out-pointer.
        let ret = unsafe { remaining(handle, info.id, &mut free) };
        let instances_free = if ret == nvmlReturn_enum_NVML_SUCCESS {
            free
        } else if !mig_on {
            // With MIG off nothing is placed: every instance is free.
            info.instanceCount
        } else {
            bail!(
                "nvmlDeviceGetGpuInstanceRemainingCapacity(profile {}) failed: NVML error {ret}",
                info.id
            );
        };
        profiles.push(GiProfile {
            id: info.id,
            name: profile_name(&info.name),
            slices: info.sliceCount,
            instances_free,
            instances_total: info.instanceCount,
            memory_mib: info.memorySizeMB,
            sm_count: info.multiprocessorCount,
            copy_engines: info.copyEngineCount,
            decoders: info.decoderCount,
            encoders: info.encoderCount,
            jpeg_decoders: info.jpegCount,
            ofa: info.ofaCount,
            p2p: info.isP2pSupported != 0,
        });
    }
    Ok(profiles)
}

/// `MIG 1g.18gb` -> `1g.18gb`, from a NUL-terminated C buffer.
fn profile_name(raw: &[c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    let name = String::from_utf8_lossy(&bytes);
    name.strip_prefix("MIG ")
        .unwrap_or(&name)
        .trim()
        .to_string()
}

/// What `doctor` needs beyond the snapshot: getters only. A getter the
/// driver lacks or refuses leaves its field empty rather than failing the
/// run: doctor reports what it could not read.
fn read_details(nvml: &Nvml, device: &Device<'_>, mig: Option<MigMode>) -> Result<GpuDetails> {
    let architecture = device.architecture().ok().map(|a| a.to_string());
    let compute_capability = device
        .cuda_compute_capability()
        .ok()
        .and_then(|c| Some((u32::try_from(c.major).ok()?, u32::try_from(c.minor).ok()?)));
    let vbios = device.vbios_version().ok();
    let gpu_instances = match mig {
        Some(MigMode { current: true, .. }) => match list_gpu_instances(nvml, device) {
            Ok(instances) => GpuInstances::Listed { instances },
            Err(reason) => GpuInstances::Unreadable { reason },
        },
        _ => GpuInstances::NotApplicable,
    };
    Ok(GpuDetails {
        architecture,
        compute_capability,
        vbios,
        gpu_instances,
    })
}

/// Every GPU instance of a GPU in MIG mode: for each profile the driver
/// has (`nvmlDeviceGetGpuInstanceProfileInfoV`), its instances
/// (`nvmlDeviceGetGpuInstances`, into room for the profile's instance
/// count, as nvml.h asks) and their id and placement
/// (`nvmlGpuInstanceGetInfo`). nvml-wrapper wraps none of these.
fn list_gpu_instances(nvml: &Nvml, device: &Device<'_>) -> Result<Vec<GpuInstance>, String> {
    let lib = nvml.lib();
    let missing =
        |name: &str, e: &dyn std::fmt::Display| format!("{name} is missing from NVML ({e})");
    let info_v = lib
        .nvmlDeviceGetGpuInstanceProfileInfoV
        .as_ref()
        .map_err(|e| missing("nvmlDeviceGetGpuInstanceProfileInfoV", e))?;
    let list = lib
        .nvmlDeviceGetGpuInstances
        .as_ref()
        .map_err(|e| missing("nvmlDeviceGetGpuInstances", e))?;
    let get_info = lib
        .nvmlGpuInstanceGetInfo
        .as_ref()
        .map_err(|e| missing("nvmlGpuInstanceGetInfo", e))?;
    let failed = |call: &str, ret: u32| {
        let text = match nvml_wrapper::error::nvml_try(ret) {
            Err(e) => e.to_string(),
            Ok(()) => format!("NVML error {ret}"),
        };
        if ret == nvmlReturn_enum_NVML_ERROR_NO_PERMISSION {
            format!("{call}: {text} (listing GPU instances needs root)")
        } else {
            format!("{call}: {text}")
        }
    };
    // SAFETY: `device` is a live GPU handle of this `nvml`.
    let handle = unsafe { device.handle() };
    let mut instances = Vec::new();
    for profile_index in 0..NVML_GPU_INSTANCE_PROFILE_COUNT {
        // SAFETY: an all-zero value is valid for this plain C struct.
        let mut profile: nvmlGpuInstanceProfileInfo_v2_t = unsafe { std::mem::zeroed() };
        profile.version = PROFILE_INFO_V2;
        // SAFETY: live handle, valid out-pointer to a v2 struct whose version
        // field says so, C signature as bound by nvml-wrapper-sys.
        let ret = unsafe { info_v(handle, profile_index, &mut profile) };
        if ABSENT.contains(&ret) {
            continue;
        }
        if ret != nvmlReturn_enum_NVML_SUCCESS {
            return Err(failed("nvmlDeviceGetGpuInstanceProfileInfoV", ret));
        }
        let name = profile_name(&profile.name);
        let mut handles: Vec<nvmlGpuInstance_t> =
            vec![std::ptr::null_mut(); profile.instanceCount.max(1) as usize];
        let mut count: c_uint = 0;
        // SAFETY: live handle; `handles` has room for the profile's instance
        // count (nvml.h: the buffer must hold that many); valid out-pointer.
        let ret = unsafe { list(handle, profile.id, handles.as_mut_ptr(), &mut count) };
        if ret != nvmlReturn_enum_NVML_SUCCESS {
            return Err(failed("nvmlDeviceGetGpuInstances", ret));
        }
        for &gi in handles.iter().take(count as usize) {
            // SAFETY: an all-zero value is valid for this plain C struct.
            let mut info: nvmlGpuInstanceInfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: `gi` is a GPU-instance handle NVML just returned for
            // this live device; valid out-pointer.
            let ret = unsafe { get_info(gi, &mut info) };
            if ret != nvmlReturn_enum_NVML_SUCCESS {
                return Err(failed("nvmlGpuInstanceGetInfo", ret));
            }
            instances.push(GpuInstance {
                id: info.id,
                profile_id: info.profileId,
                profile: name.clone(),
                placement: (info.placement.start, info.placement.size),
            });
        }
    }
    instances.sort_by_key(|gi| gi.id);
    Ok(instances)
}
