//! The exported NVML C API: the only place with `unsafe`.
//!
//! Each function has the exact C signature of `nvml.h` (types from
//! `nvml-wrapper-sys`, so the struct layouts are the ones nvml-wrapper
//! reads), checks its pointers, asks [`crate::sim`] for the answer and
//! writes it out. Nothing here decides an answer. Panics never cross the
//! boundary: they become `NVML_ERROR_UNKNOWN`.
//!
//! The simulator is read-only: no setter is exported (a caller that looks
//! one up gets `FunctionNotFound` from its loader, as with an old driver).
//!
//! Safety contract of every function (`clippy::missing_safety_doc` is
//! allowed below for this reason): the one of `nvml.h` — every pointer is
//! null or valid for writing (reading, for inputs) the documented type, and
//! string buffers hold at least `length` bytes. Device handles are never
//! dereferenced, so any handle value is safe to pass.
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_int, c_uint, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use nvml_wrapper_sys::bindings as sys;
use sys::{nvmlDevice_t, nvmlReturn_t};

use crate::sim::{self, code, Ret, Target};

const MIB: u64 = 1024 * 1024;

/// Runs an export's body; panics become `NVML_ERROR_UNKNOWN`.
fn guard(body: impl FnOnce() -> Result<(), Ret>) -> nvmlReturn_t {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => code::SUCCESS,
        Ok(Err(ret)) => ret,
        Err(_) => code::UNKNOWN,
    }
}

/// Writes `value` through an output pointer; null is `INVALID_ARGUMENT`.
///
/// # Safety
/// `out` is null or valid for a write of `T`.
unsafe fn put<T>(out: *mut T, value: T) -> Result<(), Ret> {
    if out.is_null() {
        return Err(code::INVALID_ARGUMENT);
    }
    // SAFETY: non-null, and the caller guarantees it is valid for a write of T.
    unsafe { out.write(value) };
    Ok(())
}

/// Copies `text` and a NUL into a caller buffer of `length` bytes.
///
/// # Safety
/// `buf` is null or valid for `length` bytes of writes.
unsafe fn put_str(buf: *mut c_char, length: c_uint, text: &str) -> Result<(), Ret> {
    if buf.is_null() {
        return Err(code::INVALID_ARGUMENT);
    }
    let bytes = text.as_bytes();
    if (length as usize) < bytes.len() + 1 {
        return Err(code::INSUFFICIENT_SIZE);
    }
    // SAFETY: buf holds at least `length` >= bytes.len() + 1 bytes (caller
    // contract, checked above), and `bytes` cannot overlap a caller buffer.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), bytes.len());
        buf.add(bytes.len()).write(0);
    }
    Ok(())
}

/// Reads a NUL-terminated input string.
///
/// # Safety
/// `text` is null or a valid NUL-terminated string.
unsafe fn get_str<'a>(text: *const c_char) -> Result<&'a str, Ret> {
    if text.is_null() {
        return Err(code::INVALID_ARGUMENT);
    }
    // SAFETY: non-null and NUL-terminated per the caller contract.
    let text = unsafe { CStr::from_ptr(text) };
    text.to_str().map_err(|_| code::INVALID_ARGUMENT)
}

/// Fills a fixed C char array with `text` (truncated to fit, NUL-terminated).
fn fill(dst: &mut [c_char], text: &str) {
    let n = text.len().min(dst.len().saturating_sub(1));
    for (d, s) in dst.iter_mut().zip(text.bytes().take(n)) {
        *d = s as c_char;
    }
    if let Some(end) = dst.get_mut(n) {
        *end = 0;
    }
}

fn handle(device: nvmlDevice_t) -> usize {
    device as usize
}

fn as_device(handle: usize) -> nvmlDevice_t {
    handle as nvmlDevice_t
}

// ---- init / shutdown / system -------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn nvmlInit_v2() -> nvmlReturn_t {
    guard(sim::init)
}

#[no_mangle]
pub unsafe extern "C" fn nvmlInit() -> nvmlReturn_t {
    guard(sim::init)
}

#[no_mangle]
pub unsafe extern "C" fn nvmlInitWithFlags(_flags: c_uint) -> nvmlReturn_t {
    guard(sim::init)
}

#[no_mangle]
pub unsafe extern "C" fn nvmlShutdown() -> nvmlReturn_t {
    guard(sim::shutdown)
}

#[no_mangle]
pub unsafe extern "C" fn nvmlErrorString(result: nvmlReturn_t) -> *const c_char {
    sim::error_string(result).as_ptr()
}

#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetDriverVersion(
    version: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        // SAFETY: nvml.h contract on `version`/`length`.
        unsafe { put_str(version, length, sim.machine().driver_version()) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetNVMLVersion(
    version: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        // SAFETY: nvml.h contract on `version`/`length`.
        unsafe { put_str(version, length, sim.machine().nvml_version()) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetCudaDriverVersion(
    cuda_driver_version: *mut c_int,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(cuda_driver_version, sim.machine().cuda_driver_version()) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetCudaDriverVersion_v2(
    cuda_driver_version: *mut c_int,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(cuda_driver_version, sim.machine().cuda_driver_version()) }
    })
}

// ---- enumeration ---------------------------------------------------------

// The v1 and v2 exports share private bodies: an export never calls
// another export, so nothing can interpose between them.

/// # Safety
/// `device_count` is null or valid for a write.
unsafe fn device_count(device_count: *mut c_uint) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(device_count, sim.machine().gpus().len() as c_uint) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetCount_v2(device_count_out: *mut c_uint) -> nvmlReturn_t {
    // SAFETY: the caller's nvml.h contract is this helper's.
    unsafe { device_count(device_count_out) }
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetCount(device_count_out: *mut c_uint) -> nvmlReturn_t {
    // SAFETY: the caller's nvml.h contract is this helper's.
    unsafe { device_count(device_count_out) }
}

/// # Safety
/// `device` is null or valid for a write.
unsafe fn handle_by_index(index: c_uint, device: *mut nvmlDevice_t) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        let found = sim.gpu_handle(index)?;
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(device, as_device(found)) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    // SAFETY: the caller's nvml.h contract is this helper's.
    unsafe { handle_by_index(index, device) }
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    // SAFETY: the caller's nvml.h contract is this helper's.
    unsafe { handle_by_index(index, device) }
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetHandleByUUID(
    uuid: *const c_char,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        // SAFETY: nvml.h contract: `uuid` is a NUL-terminated string.
        let uuid = unsafe { get_str(uuid) }?;
        let found = sim.handle_by_uuid(uuid)?;
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(device, as_device(found)) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetHandleByPciBusId_v2(
    pci_bus_id: *const c_char,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        // SAFETY: nvml.h contract: `pciBusId` is a NUL-terminated string.
        let bus_id = unsafe { get_str(pci_bus_id) }?;
        let found = sim.handle_by_pci_bus_id(bus_id)?;
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(device, as_device(found)) }
    })
}

// ---- identity ------------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetIndex(
    device: nvmlDevice_t,
    index: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let gpu_index = sim::current()?
            .physical(handle(device), code::NOT_SUPPORTED)?
            .index();
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(index, gpu_index) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMinorNumber(
    device: nvmlDevice_t,
    minor_number: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let minor = sim::current()?
            .physical(handle(device), code::NOT_SUPPORTED)?
            .minor();
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(minor_number, minor) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetUUID(
    device: nvmlDevice_t,
    uuid: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        let text = match sim.resolve(handle(device))? {
            Target::Gpu(gpu) => gpu.uuid(),
            Target::Mig(mig) => mig.compute_instance.uuid(),
        };
        // SAFETY: nvml.h contract on `uuid`/`length`.
        unsafe { put_str(uuid, length, text) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetName(
    device: nvmlDevice_t,
    name: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        let text = match sim.resolve(handle(device))? {
            Target::Gpu(gpu) => gpu.name().to_owned(),
            Target::Mig(mig) => mig.name(),
        };
        // SAFETY: nvml.h contract on `name`/`length`.
        unsafe { put_str(name, length, &text) }
    })
}

fn pci_info_value(device: nvmlDevice_t) -> Result<sys::nvmlPciInfo_t, Ret> {
    let gpu = sim::current()?.physical(handle(device), code::NOT_SUPPORTED)?;
    let pci = gpu.pci();
    let mut info = sys::nvmlPciInfo_t {
        busIdLegacy: [0; 16],
        domain: pci.domain(),
        bus: pci.bus().into(),
        device: pci.device().into(),
        pciDeviceId: gpu.model().pci_device_id(),
        pciSubSystemId: gpu.model().pci_subsystem_id(),
        busId: [0; 32],
    };
    fill(&mut info.busIdLegacy, &pci.nvml_legacy_form());
    fill(&mut info.busId, &pci.nvml_form());
    Ok(info)
}

/// # Safety
/// `pci` is null or valid for a write.
unsafe fn pci_info(device: nvmlDevice_t, pci: *mut sys::nvmlPciInfo_t) -> nvmlReturn_t {
    guard(|| {
        let info = pci_info_value(device)?;
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(pci, info) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetPciInfo_v3(
    device: nvmlDevice_t,
    pci: *mut sys::nvmlPciInfo_t,
) -> nvmlReturn_t {
    // SAFETY: the caller's nvml.h contract is this helper's.
    unsafe { pci_info(device, pci) }
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetPciInfo_v2(
    device: nvmlDevice_t,
    pci: *mut sys::nvmlPciInfo_t,
) -> nvmlReturn_t {
    // SAFETY: the caller's nvml.h contract is this helper's.
    unsafe { pci_info(device, pci) }
}

/// Framebuffer of a GPU (its total) or of a MIG device (its GI's memory),
/// bytes. Nothing runs on a simulated GPU, so all of it is free.
fn memory_total(device: nvmlDevice_t) -> Result<u64, Ret> {
    Ok(match sim::current()?.resolve(handle(device))? {
        Target::Gpu(gpu) => gpu.memory_total_mib() * MIB,
        Target::Mig(mig) => mig.gpu_instance.profile().memory_mib * MIB,
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo(
    device: nvmlDevice_t,
    memory: *mut sys::nvmlMemory_t,
) -> nvmlReturn_t {
    guard(|| {
        let total = memory_total(device)?;
        let info = sys::nvmlMemory_t {
            total,
            free: total,
            used: 0,
        };
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(memory, info) }
    })
}

/// `NVML_STRUCT_VERSION(Memory, 2)`.
const MEMORY_V2: c_uint = std::mem::size_of::<sys::nvmlMemory_v2_t>() as c_uint | (2 << 24);

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo_v2(
    device: nvmlDevice_t,
    memory: *mut sys::nvmlMemory_v2_t,
) -> nvmlReturn_t {
    guard(|| {
        let total = memory_total(device)?;
        if memory.is_null() {
            return Err(code::INVALID_ARGUMENT);
        }
        // SAFETY: non-null; the struct starts with the `version` field the
        // caller must set.
        let version = unsafe { memory.cast::<c_uint>().read() };
        if version != MEMORY_V2 {
            return Err(code::ARGUMENT_VERSION_MISMATCH);
        }
        let info = sys::nvmlMemory_v2_t {
            version,
            total,
            reserved: 0,
            free: total,
            used: 0,
        };
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(memory, info) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetCudaComputeCapability(
    device: nvmlDevice_t,
    major: *mut c_int,
    minor: *mut c_int,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        let (ma, mi) = sim
            .resolve(handle(device))?
            .gpu()
            .model()
            .compute_capability();
        if major.is_null() || minor.is_null() {
            return Err(code::INVALID_ARGUMENT);
        }
        // SAFETY: nvml.h contract on both output pointers.
        unsafe {
            put(major, ma)?;
            put(minor, mi)
        }
    })
}

// ---- MIG -------------------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMigMode(
    device: nvmlDevice_t,
    current_mode: *mut c_uint,
    pending_mode: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let gpu = sim::current()?.physical(handle(device), code::NOT_SUPPORTED)?;
        let crate::machine::MigState::Supported { current, pending } = gpu.mig() else {
            return Err(code::NOT_SUPPORTED);
        };
        if current_mode.is_null() || pending_mode.is_null() {
            return Err(code::INVALID_ARGUMENT);
        }
        // SAFETY: nvml.h contract on both output pointers.
        unsafe {
            put(current_mode, c_uint::from(current))?;
            put(pending_mode, c_uint::from(pending))
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMaxMigDeviceCount(
    device: nvmlDevice_t,
    count: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let gpu = sim::current()?.physical(handle(device), code::INVALID_ARGUMENT)?;
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(count, gpu.max_mig_devices()) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMigDeviceHandleByIndex(
    device: nvmlDevice_t,
    index: c_uint,
    mig_device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    guard(|| {
        let found = sim::current()?.mig_handle_by_index(handle(device), index)?;
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(mig_device, as_device(found)) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceIsMigDeviceHandle(
    device: nvmlDevice_t,
    is_mig_device: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let is_mig = matches!(sim::current()?.resolve(handle(device))?, Target::Mig(_));
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(is_mig_device, c_uint::from(is_mig)) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetDeviceHandleFromMigDeviceHandle(
    mig_device: nvmlDevice_t,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    guard(|| {
        let parent = sim::current()?.parent_handle(handle(mig_device))?;
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(device, as_device(parent)) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceId(
    device: nvmlDevice_t,
    id: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        let gi = sim
            .mig(handle(device), code::NOT_SUPPORTED)?
            .gpu_instance
            .id();
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(id, gi) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetComputeInstanceId(
    device: nvmlDevice_t,
    id: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        let ci = sim
            .mig(handle(device), code::NOT_SUPPORTED)?
            .compute_instance
            .id();
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(id, ci) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetAttributes_v2(
    device: nvmlDevice_t,
    attributes: *mut sys::nvmlDeviceAttributes_t,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        let mig = sim.mig(handle(device), code::NOT_SUPPORTED)?;
        let gi = mig.gpu_instance.profile();
        let value = sys::nvmlDeviceAttributes_t {
            multiprocessorCount: mig.sms(),
            sharedCopyEngineCount: gi.ce,
            sharedDecoderCount: gi.dec,
            sharedEncoderCount: gi.enc,
            sharedJpegCount: gi.jpeg,
            sharedOfaCount: gi.ofa,
            gpuInstanceSliceCount: gi.slices,
            computeInstanceSliceCount: mig.compute_instance.slices(),
            memorySizeMB: gi.memory_mib,
        };
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(attributes, value) }
    })
}

/// `NVML_STRUCT_VERSION(GpuInstanceProfileInfo, 2)`.
const PROFILE_INFO_V2: c_uint =
    std::mem::size_of::<sys::nvmlGpuInstanceProfileInfo_v2_t>() as c_uint | (2 << 24);
/// `NVML_STRUCT_VERSION(GpuInstanceProfileInfo, 3)`.
const PROFILE_INFO_V3: c_uint =
    std::mem::size_of::<sys::nvmlGpuInstanceProfileInfo_v3_t>() as c_uint | (3 << 24);

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceProfileInfo(
    device: nvmlDevice_t,
    profile: c_uint,
    info: *mut sys::nvmlGpuInstanceProfileInfo_t,
) -> nvmlReturn_t {
    guard(|| {
        let p = sim::current()?.profile_by_index(handle(device), profile)?;
        let value = sys::nvmlGpuInstanceProfileInfo_t {
            id: p.id,
            isP2pSupported: c_uint::from(p.p2p),
            sliceCount: p.slices,
            instanceCount: p.instances,
            multiprocessorCount: p.sms,
            copyEngineCount: p.ce,
            decoderCount: p.dec,
            encoderCount: p.enc,
            jpegCount: p.jpeg,
            ofaCount: p.ofa,
            memorySizeMB: p.memory_mib,
        };
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(info, value) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceProfileInfoV(
    device: nvmlDevice_t,
    profile: c_uint,
    info: *mut sys::nvmlGpuInstanceProfileInfo_v2_t,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        if info.is_null() {
            return Err(code::INVALID_ARGUMENT);
        }
        // SAFETY: non-null; both struct versions start with the `version`
        // field the caller must set, so reading one c_uint is in bounds.
        let version = unsafe { info.cast::<c_uint>().read() };
        if version != PROFILE_INFO_V2 && version != PROFILE_INFO_V3 {
            return Err(code::ARGUMENT_VERSION_MISMATCH);
        }
        let p = sim.profile_by_index(handle(device), profile)?;
        let mut name = [0 as c_char; 96];
        fill(&mut name, &p.nvml_name());
        if version == PROFILE_INFO_V2 {
            let value = sys::nvmlGpuInstanceProfileInfo_v2_t {
                version,
                id: p.id,
                isP2pSupported: c_uint::from(p.p2p),
                sliceCount: p.slices,
                instanceCount: p.instances,
                multiprocessorCount: p.sms,
                copyEngineCount: p.ce,
                decoderCount: p.dec,
                encoderCount: p.enc,
                jpegCount: p.jpeg,
                ofaCount: p.ofa,
                memorySizeMB: p.memory_mib,
                name,
            };
            // SAFETY: the caller declared a v2 struct by its version field.
            unsafe { put(info, value) }
        } else {
            let value = sys::nvmlGpuInstanceProfileInfo_v3_t {
                version,
                id: p.id,
                sliceCount: p.slices,
                instanceCount: p.instances,
                multiprocessorCount: p.sms,
                copyEngineCount: p.ce,
                decoderCount: p.dec,
                encoderCount: p.enc,
                jpegCount: p.jpeg,
                ofaCount: p.ofa,
                memorySizeMB: p.memory_mib,
                name,
                capabilities: if p.p2p {
                    sys::NVML_GPU_INSTANCE_PROFILE_CAPS_P2P
                } else {
                    0
                },
            };
            // SAFETY: the caller declared a v3 struct by its version field,
            // so the buffer is a nvmlGpuInstanceProfileInfo_v3_t.
            unsafe { put(info.cast::<sys::nvmlGpuInstanceProfileInfo_v3_t>(), value) }
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceRemainingCapacity(
    device: nvmlDevice_t,
    profile_id: c_uint,
    count: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let (gpu, profile) = sim::current()?.profile_by_id(handle(device), profile_id)?;
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(count, gpu.remaining_capacity(profile)) }
    })
}

/// Answers the count query (null `placements`) or, when `*count` is large
/// enough, fills the array; a too-small `*count` gets `INSUFFICIENT_SIZE`
/// and the needed count.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstancePossiblePlacements_v2(
    device: nvmlDevice_t,
    profile_id: c_uint,
    placements: *mut sys::nvmlGpuInstancePlacement_t,
    count: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let (_, profile) = sim::current()?.profile_by_id(handle(device), profile_id)?;
        if count.is_null() {
            return Err(code::INVALID_ARGUMENT);
        }
        let needed = profile.placements.len() as c_uint;
        if placements.is_null() {
            // SAFETY: non-null, nvml.h contract.
            return unsafe { put(count, needed) };
        }
        // SAFETY: non-null, nvml.h contract: `count` is readable.
        let room = unsafe { count.read() };
        // SAFETY: as above, writable.
        unsafe { put(count, needed) }?;
        if room < needed {
            return Err(code::INSUFFICIENT_SIZE);
        }
        for (i, &start) in profile.placements.iter().enumerate() {
            let value = sys::nvmlGpuInstancePlacement_t {
                start,
                size: profile.memory_slots,
            };
            // SAFETY: the caller's array holds `room` >= `needed` > i entries.
            unsafe { put(placements.add(i), value) }?;
        }
        Ok(())
    })
}

// ---- architecture, vBIOS ----------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetArchitecture(
    device: nvmlDevice_t,
    arch: *mut sys::nvmlDeviceArchitecture_t,
) -> nvmlReturn_t {
    guard(|| {
        let code = sim::current()?
            .resolve(handle(device))?
            .gpu()
            .model()
            .architecture()
            .nvml_code();
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(arch, code) }
    })
}

/// The /proc `Video BIOS:` text in upper case, as the real H200's NVML
/// answers (`96.00.A5.00.1A` where /proc says `96.00.a5.00.1a`).
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetVbiosVersion(
    device: nvmlDevice_t,
    version: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let gpu = sim::current()?.physical(handle(device), code::NOT_SUPPORTED)?;
        // SAFETY: nvml.h contract on `version`/`length`.
        unsafe { put_str(version, length, &gpu.vbios().to_ascii_uppercase()) }
    })
}

// ---- GPU and compute instances ---------------------------------------------

fn as_gi(handle: usize) -> sys::nvmlGpuInstance_t {
    handle as sys::nvmlGpuInstance_t
}

fn as_ci(handle: usize) -> sys::nvmlComputeInstance_t {
    handle as sys::nvmlComputeInstance_t
}

/// Writes `handles` to the caller's array and their number to `count`.
///
/// # Safety
/// `out` is null or valid for `handles.len()` writes (nvml.h: room for
/// the profile's instance count); `count` is null or valid for a write.
unsafe fn put_handles<T: Copy>(out: *mut T, count: *mut c_uint, handles: &[T]) -> Result<(), Ret> {
    if out.is_null() || count.is_null() {
        return Err(code::INVALID_ARGUMENT);
    }
    for (i, &h) in handles.iter().enumerate() {
        // SAFETY: the caller's array holds at least `handles.len()` entries.
        unsafe { put(out.add(i), h) }?;
    }
    // SAFETY: non-null, caller contract.
    unsafe { put(count, handles.len() as c_uint) }
}

/// Existing GPU instances of one profile id, in GI id order. The array must
/// hold the profile's `instanceCount` handles, as nvml.h says.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstances(
    device: nvmlDevice_t,
    profile_id: c_uint,
    gpu_instances: *mut sys::nvmlGpuInstance_t,
    count: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        let gpu = sim.mig_enabled(handle(device))?;
        gpu.model()
            .profile_by_id(profile_id)
            .ok_or(code::INVALID_ARGUMENT)?;
        let mut found: Vec<(u32, usize)> = gpu
            .gpu_instances()
            .iter()
            .enumerate()
            .filter(|(_, gi)| gi.profile().id == profile_id)
            .map(|(position, gi)| (gi.id(), position))
            .collect();
        found.sort_unstable();
        let handles = found
            .iter()
            .map(|&(_, position)| sim.gi_handle(gpu.index(), position).map(as_gi))
            .collect::<Result<Vec<_>, _>>()?;
        // SAFETY: nvml.h contract on both output pointers.
        unsafe { put_handles(gpu_instances, count, &handles) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceById(
    device: nvmlDevice_t,
    id: c_uint,
    gpu_instance: *mut sys::nvmlGpuInstance_t,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        let gpu = sim.mig_enabled(handle(device))?;
        let position = gpu
            .gpu_instances()
            .iter()
            .position(|gi| gi.id() == id)
            .ok_or(code::NOT_FOUND)?;
        let found = sim.gi_handle(gpu.index(), position)?;
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(gpu_instance, as_gi(found)) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlGpuInstanceGetInfo(
    gpu_instance: sys::nvmlGpuInstance_t,
    info: *mut sys::nvmlGpuInstanceInfo_t,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        let gi = sim.resolve_gi(gpu_instance as usize)?;
        let value = sys::nvmlGpuInstanceInfo_t {
            device: as_device(sim.gpu_handle(gi.gpu.index())?),
            id: gi.gi.id(),
            profileId: gi.gi.profile().id,
            placement: sys::nvmlGpuInstancePlacement_t {
                start: gi.gi.start(),
                size: gi.gi.profile().memory_slots,
            },
        };
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(info, value) }
    })
}

/// The CI profile of index `profile` inside `gi`, as `nvidia-smi mig -lcip`
/// lists them: `(slices, instance count, SMs, name)`.
fn ci_profile(gi: &sim::GiRef<'_>, profile: c_uint) -> Result<(u32, u32, u32, String), Ret> {
    if profile >= sys::NVML_COMPUTE_INSTANCE_PROFILE_COUNT {
        return Err(code::INVALID_ARGUMENT);
    }
    let gi_profile = gi.gi.profile();
    let slices = crate::profiles::ci_profile_slices(profile)
        .filter(|&s| s <= gi_profile.slices)
        .ok_or(code::NOT_SUPPORTED)?;
    let count = crate::profiles::compute_placements(gi_profile.slices, slices).len() as u32;
    if count == 0 {
        return Err(code::NOT_SUPPORTED);
    }
    let sms = gi.gpu.model().compute_instance_sms(gi_profile, slices);
    let name = if slices == gi_profile.slices {
        gi_profile.nvml_name()
    } else {
        format!("MIG {slices}c.{}", gi_profile.name)
    };
    Ok((slices, count, sms, name))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlGpuInstanceGetComputeInstanceProfileInfo(
    gpu_instance: sys::nvmlGpuInstance_t,
    profile: c_uint,
    eng_profile: c_uint,
    info: *mut sys::nvmlComputeInstanceProfileInfo_t,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        let gi = sim.resolve_gi(gpu_instance as usize)?;
        if eng_profile != sys::NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED {
            return Err(code::INVALID_ARGUMENT);
        }
        let (slices, count, sms, _) = ci_profile(&gi, profile)?;
        let p = gi.gi.profile();
        let value = sys::nvmlComputeInstanceProfileInfo_t {
            id: profile,
            sliceCount: slices,
            instanceCount: count,
            multiprocessorCount: sms,
            sharedCopyEngineCount: p.ce,
            sharedDecoderCount: p.dec,
            sharedEncoderCount: p.enc,
            sharedJpegCount: p.jpeg,
            sharedOfaCount: p.ofa,
        };
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(info, value) }
    })
}

/// `NVML_STRUCT_VERSION(ComputeInstanceProfileInfo, 2)`.
const CI_PROFILE_INFO_V2: c_uint =
    std::mem::size_of::<sys::nvmlComputeInstanceProfileInfo_v2_t>() as c_uint | (2 << 24);
/// `NVML_STRUCT_VERSION(ComputeInstanceProfileInfo, 3)`.
const CI_PROFILE_INFO_V3: c_uint =
    std::mem::size_of::<sys::nvmlComputeInstanceProfileInfo_v3_t>() as c_uint | (3 << 24);

#[no_mangle]
pub unsafe extern "C" fn nvmlGpuInstanceGetComputeInstanceProfileInfoV(
    gpu_instance: sys::nvmlGpuInstance_t,
    profile: c_uint,
    eng_profile: c_uint,
    info: *mut sys::nvmlComputeInstanceProfileInfo_v2_t,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        if info.is_null() {
            return Err(code::INVALID_ARGUMENT);
        }
        // SAFETY: non-null; both struct versions start with the `version`
        // field the caller must set.
        let version = unsafe { info.cast::<c_uint>().read() };
        if version != CI_PROFILE_INFO_V2 && version != CI_PROFILE_INFO_V3 {
            return Err(code::ARGUMENT_VERSION_MISMATCH);
        }
        let gi = sim.resolve_gi(gpu_instance as usize)?;
        if eng_profile != sys::NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED {
            return Err(code::INVALID_ARGUMENT);
        }
        let (slices, count, sms, text) = ci_profile(&gi, profile)?;
        let p = gi.gi.profile();
        let mut name = [0 as c_char; 96];
        fill(&mut name, &text);
        if version == CI_PROFILE_INFO_V2 {
            let value = sys::nvmlComputeInstanceProfileInfo_v2_t {
                version,
                id: profile,
                sliceCount: slices,
                instanceCount: count,
                multiprocessorCount: sms,
                sharedCopyEngineCount: p.ce,
                sharedDecoderCount: p.dec,
                sharedEncoderCount: p.enc,
                sharedJpegCount: p.jpeg,
                sharedOfaCount: p.ofa,
                name,
            };
            // SAFETY: the caller declared a v2 struct by its version field.
            unsafe { put(info, value) }
        } else {
            let value = sys::nvmlComputeInstanceProfileInfo_v3_t {
                version,
                id: profile,
                sliceCount: slices,
                instanceCount: count,
                multiprocessorCount: sms,
                sharedCopyEngineCount: p.ce,
                sharedDecoderCount: p.dec,
                sharedEncoderCount: p.enc,
                sharedJpegCount: p.jpeg,
                sharedOfaCount: p.ofa,
                name,
                capabilities: 0,
            };
            // SAFETY: the caller declared a v3 struct by its version field,
            // so the buffer is a nvmlComputeInstanceProfileInfo_v3_t.
            unsafe {
                put(
                    info.cast::<sys::nvmlComputeInstanceProfileInfo_v3_t>(),
                    value,
                )
            }
        }
    })
}

/// Existing compute instances of one CI profile id inside a GI, in CI id
/// order.
#[no_mangle]
pub unsafe extern "C" fn nvmlGpuInstanceGetComputeInstances(
    gpu_instance: sys::nvmlGpuInstance_t,
    profile_id: c_uint,
    compute_instances: *mut sys::nvmlComputeInstance_t,
    count: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        let gi = sim.resolve_gi(gpu_instance as usize)?;
        ci_profile(&gi, profile_id)?;
        let mut found: Vec<(u32, usize)> = gi
            .gi
            .compute_instances()
            .iter()
            .enumerate()
            .filter(|(_, ci)| crate::profiles::ci_profile_index(ci.slices()) == Some(profile_id))
            .map(|(n, ci)| (ci.id(), n))
            .collect();
        found.sort_unstable();
        let handles = found
            .iter()
            .map(|&(_, n)| sim.ci_handle(gi.gpu.index(), gi.position, n).map(as_ci))
            .collect::<Result<Vec<_>, _>>()?;
        // SAFETY: nvml.h contract on both output pointers.
        unsafe { put_handles(compute_instances, count, &handles) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlGpuInstanceGetComputeInstanceById(
    gpu_instance: sys::nvmlGpuInstance_t,
    id: c_uint,
    compute_instance: *mut sys::nvmlComputeInstance_t,
) -> nvmlReturn_t {
    guard(|| {
        let sim = sim::current()?;
        let gi = sim.resolve_gi(gpu_instance as usize)?;
        let n = gi
            .gi
            .compute_instances()
            .iter()
            .position(|ci| ci.id() == id)
            .ok_or(code::NOT_FOUND)?;
        let found = sim.ci_handle(gi.gpu.index(), gi.position, n)?;
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(compute_instance, as_ci(found)) }
    })
}

fn compute_instance_info(
    ci: sys::nvmlComputeInstance_t,
) -> Result<sys::nvmlComputeInstanceInfo_t, Ret> {
    let sim = sim::current()?;
    let found = sim.resolve_ci(ci as usize)?;
    let gi = found.parent;
    Ok(sys::nvmlComputeInstanceInfo_t {
        device: as_device(sim.gpu_handle(gi.gpu.index())?),
        gpuInstance: as_gi(sim.gi_handle(gi.gpu.index(), gi.position)?),
        id: found.ci.id(),
        profileId: crate::profiles::ci_profile_index(found.ci.slices()).ok_or(code::UNKNOWN)?,
        placement: sys::nvmlComputeInstancePlacement_t {
            start: found.ci.start(),
            size: found.ci.slices(),
        },
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlComputeInstanceGetInfo_v2(
    compute_instance: sys::nvmlComputeInstance_t,
    info: *mut sys::nvmlComputeInstanceInfo_t,
) -> nvmlReturn_t {
    guard(|| {
        let value = compute_instance_info(compute_instance)?;
        // SAFETY: nvml.h contract on the output pointer.
        unsafe { put(info, value) }
    })
}

/// The first `nvmlComputeInstanceInfo_t` (R450), before `placement` was
/// added: the legacy `nvmlComputeInstanceGetInfo` fills only this much, so
/// a caller built against the old header is not overrun.
#[repr(C)]
#[derive(Clone, Copy)]
struct ComputeInstanceInfoV1 {
    device: nvmlDevice_t,
    gpu_instance: sys::nvmlGpuInstance_t,
    id: c_uint,
    profile_id: c_uint,
}

#[no_mangle]
pub unsafe extern "C" fn nvmlComputeInstanceGetInfo(
    compute_instance: sys::nvmlComputeInstance_t,
    info: *mut sys::nvmlComputeInstanceInfo_t,
) -> nvmlReturn_t {
    guard(|| {
        let full = compute_instance_info(compute_instance)?;
        let value = ComputeInstanceInfoV1 {
            device: full.device,
            gpu_instance: full.gpuInstance,
            id: full.id,
            profile_id: full.profileId,
        };
        // SAFETY: the legacy contract: `info` is null or valid for the
        // original struct, which is a prefix of the current one.
        unsafe { put(info.cast::<ComputeInstanceInfoV1>(), value) }
    })
}
