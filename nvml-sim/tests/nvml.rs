//! The simulated libnvidia-ml.so, loaded through nvml-wrapper exactly the
//! way mig-cdi loads the real one, against the example machines.
//!
//! `NVML_SIM_MACHINE` is process-global, so this test binary has its own
//! `main` (no libtest threads): it runs the cases one after another and
//! sets the variable between them. `cargo test -p nvml-sim --test nvml --
//! NAME` runs the cases whose name contains NAME.

use std::collections::BTreeMap;
use std::ffi::{c_uint, CStr};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mig_cdi_testkit::paths::{h200_snapshot, machines_dir};
use mig_cdi_testkit::sim;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings as sys;

type Case = (&'static str, fn(&Path));

const CASES: &[Case] = &[
    (
        "before_init_calls_are_uninitialized",
        before_init_calls_are_uninitialized,
    ),
    ("init_is_reference_counted", init_is_reference_counted),
    (
        "init_without_machine_is_driver_not_loaded",
        init_without_machine_is_driver_not_loaded,
    ),
    (
        "init_with_bad_machine_is_driver_not_loaded",
        init_with_bad_machine_is_driver_not_loaded,
    ),
    (
        "null_pointers_are_invalid_arguments",
        null_pointers_are_invalid_arguments,
    ),
    ("h200_system_versions", h200_system_versions),
    ("h200_matches_real_identity", h200_matches_real_identity),
    (
        "h200_profiles_equal_real_nvml_profiles",
        h200_profiles_equal_real_nvml_profiles,
    ),
    (
        "h200_profile_info_v_honours_version",
        h200_profile_info_v_honours_version,
    ),
    (
        "h200_placements_equal_real_lgipp",
        h200_placements_equal_real_lgipp,
    ),
    (
        "h200_capacity_with_mig_disabled_equals_real_lgip",
        h200_capacity_with_mig_disabled_equals_real_lgip,
    ),
    ("h200_mig_devices", h200_mig_devices),
    ("a100x8_enumeration", a100x8_enumeration),
    (
        "a100x8_gi_ci_ids_of_every_placement",
        a100x8_gi_ci_ids_of_every_placement,
    ),
    (
        "a100x8_mig_modes_and_slot_gaps",
        a100x8_mig_modes_and_slot_gaps,
    ),
    (
        "a100x8_mig_handles_answer_like_nvml",
        a100x8_mig_handles_answer_like_nvml,
    ),
    ("a100x8_attributes_and_memory", a100x8_attributes_and_memory),
    ("a100x8_remaining_capacity", a100x8_remaining_capacity),
    (
        "h100x4_index_differs_from_minor",
        h100x4_index_differs_from_minor,
    ),
    (
        "h100x4_handles_by_uuid_and_bus_id",
        h100x4_handles_by_uuid_and_bus_id,
    ),
    (
        "handles_are_stable_across_init_cycles",
        handles_are_stable_across_init_cycles,
    ),
    (
        "architecture_and_vbios_per_board",
        architecture_and_vbios_per_board,
    ),
    (
        "a100x8_gpu_instances_by_profile_and_id",
        a100x8_gpu_instances_by_profile_and_id,
    ),
    (
        "a100x8_compute_instances_and_their_info",
        a100x8_compute_instances_and_their_info,
    ),
    (
        "a100x8_compute_instance_profiles_match_lcip",
        a100x8_compute_instance_profiles_match_lcip,
    ),
    (
        "new_boards_answer_from_their_tables",
        new_boards_answer_from_their_tables,
    ),
];

/// Env var that turns this binary into a one-shot probe for the stderr test.
const PROBE_ENV: &str = "NVML_SIM_TEST_PROBE";

fn main() -> ExitCode {
    let lib = sim::library_path();
    if std::env::var_os(PROBE_ENV).is_some() {
        // Child of init_without_machine_is_driver_not_loaded.
        let result = Nvml::builder().lib_path(lib.as_os_str()).init().map(drop);
        println!("{result:?}");
        return ExitCode::SUCCESS;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in CASES {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let selected: Vec<&Case> = CASES
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();

    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, case) in selected.iter().copied() {
        std::env::remove_var(nvml_sim::MACHINE_ENV);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| case(&lib)));
        match outcome {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    let passed = selected.len() - failed.len();
    if failed.is_empty() {
        println!("\ntest result: ok. {passed} passed; 0 failed\n");
        ExitCode::SUCCESS
    } else {
        println!("\nfailures:\n    {}", failed.join("\n    "));
        println!(
            "\ntest result: FAILED. {passed} passed; {} failed\n",
            failed.len()
        );
        ExitCode::FAILURE
    }
}

// ---- helpers ---------------------------------------------------------------

fn use_machine(name: &str) -> PathBuf {
    let path = machines_dir().join(name);
    assert!(path.is_file(), "missing {}", path.display());
    std::env::set_var(nvml_sim::MACHINE_ENV, &path);
    path
}

fn open(lib: &Path, machine: &str) -> Nvml {
    use_machine(machine);
    Nvml::builder()
        .lib_path(lib.as_os_str())
        .init()
        .unwrap_or_else(|e| panic!("init with {machine}: {e}"))
}

/// Loads the raw symbol table without initialising NVML.
fn raw(lib: &Path) -> sys::NvmlLib {
    // SAFETY: loading our own simulated library runs no initialisers with
    // preconditions.
    unsafe { sys::NvmlLib::new(lib.as_os_str()) }.expect("load the simulated library")
}

fn handle(device: &Device) -> sys::nvmlDevice_t {
    // SAFETY: the handle is only passed back to the same library.
    unsafe { device.handle() }
}

fn gi_id(nvml: &Nvml, device: &Device) -> Result<u32, u32> {
    let f = nvml
        .lib()
        .nvmlDeviceGetGpuInstanceId
        .as_ref()
        .expect("symbol");
    let mut id = u32::MAX;
    // SAFETY: valid handle from this library and a valid out pointer.
    let rc = unsafe { f(handle(device), &mut id) };
    if rc == 0 {
        Ok(id)
    } else {
        Err(rc)
    }
}

fn ci_id(nvml: &Nvml, device: &Device) -> Result<u32, u32> {
    let f = nvml
        .lib()
        .nvmlDeviceGetComputeInstanceId
        .as_ref()
        .expect("symbol");
    let mut id = u32::MAX;
    // SAFETY: valid handle from this library and a valid out pointer.
    let rc = unsafe { f(handle(device), &mut id) };
    if rc == 0 {
        Ok(id)
    } else {
        Err(rc)
    }
}

fn remaining(nvml: &Nvml, device: &Device, profile_id: u32) -> Result<u32, u32> {
    let f = nvml
        .lib()
        .nvmlDeviceGetGpuInstanceRemainingCapacity
        .as_ref()
        .expect("symbol");
    let mut count = u32::MAX;
    // SAFETY: valid handle and out pointer.
    let rc = unsafe { f(handle(device), profile_id, &mut count) };
    if rc == 0 {
        Ok(count)
    } else {
        Err(rc)
    }
}

fn placements(nvml: &Nvml, device: &Device, profile_id: u32) -> Result<Vec<(u32, u32)>, u32> {
    let f = nvml
        .lib()
        .nvmlDeviceGetGpuInstancePossiblePlacements_v2
        .as_ref()
        .expect("symbol");
    let mut count: c_uint = 0;
    // SAFETY: null placements asks for the count only.
    let rc = unsafe { f(handle(device), profile_id, std::ptr::null_mut(), &mut count) };
    if rc != 0 {
        return Err(rc);
    }
    let mut buf = vec![sys::nvmlGpuInstancePlacement_t { start: 0, size: 0 }; count as usize];
    // SAFETY: buf holds `count` entries.
    let rc = unsafe { f(handle(device), profile_id, buf.as_mut_ptr(), &mut count) };
    if rc != 0 {
        return Err(rc);
    }
    Ok(buf.iter().map(|p| (p.start, p.size)).collect())
}

fn is_uuid(prefix: &str, text: &str) -> bool {
    nvml_sim::machine::is_valid_uuid(prefix, text)
}

/// Every slot of a GPU: `Some((name, gi, ci))` or `None` for NOT_FOUND.
fn slots(nvml: &Nvml, gpu: &Device) -> Vec<Option<(String, u32, u32)>> {
    let max = gpu.mig_device_count().expect("max MIG devices");
    (0..max)
        .map(|i| match gpu.mig_device_by_index(i) {
            Ok(mig) => Some((
                mig.name().expect("MIG name"),
                gi_id(nvml, &mig).expect("GI id"),
                ci_id(nvml, &mig).expect("CI id"),
            )),
            Err(NvmlError::NotFound) => None,
            Err(e) => panic!("slot {i}: {e}"),
        })
        .collect()
}

// ---- lifecycle -------------------------------------------------------------

fn before_init_calls_are_uninitialized(lib: &Path) {
    let raw = raw(lib);
    let mut count: c_uint = 0;
    // SAFETY: valid out pointer.
    let rc = unsafe { raw.nvmlDeviceGetCount_v2.as_ref().unwrap()(&mut count) };
    assert_eq!(rc, sys::nvmlReturn_enum_NVML_ERROR_UNINITIALIZED);
    // SAFETY: no arguments.
    let rc = unsafe { raw.nvmlShutdown.as_ref().unwrap()() };
    assert_eq!(rc, sys::nvmlReturn_enum_NVML_ERROR_UNINITIALIZED);
    // SAFETY: returns a static string.
    let text = unsafe { CStr::from_ptr(raw.nvmlErrorString.as_ref().unwrap()(9)) };
    assert_eq!(text.to_str().unwrap(), "Driver Not Loaded");
}

fn init_is_reference_counted(lib: &Path) {
    use_machine("h200.json");
    let raw = raw(lib);
    let init = raw.nvmlInit_v2.as_ref().unwrap();
    let shutdown = raw.nvmlShutdown.as_ref().unwrap();
    let count = raw.nvmlDeviceGetCount_v2.as_ref().unwrap();
    let mut n: c_uint = 0;
    // SAFETY: plain calls with valid out pointers.
    unsafe {
        assert_eq!(init(), 0);
        assert_eq!(raw.nvmlInitWithFlags.as_ref().unwrap()(0), 0);
        assert_eq!(shutdown(), 0);
        assert_eq!(count(&mut n), 0, "still initialised once");
        assert_eq!(n, 1);
        assert_eq!(shutdown(), 0);
        assert_eq!(count(&mut n), sys::nvmlReturn_enum_NVML_ERROR_UNINITIALIZED);
        assert_eq!(shutdown(), sys::nvmlReturn_enum_NVML_ERROR_UNINITIALIZED);
    }
}

fn init_without_machine_is_driver_not_loaded(lib: &Path) {
    let err = Nvml::builder()
        .lib_path(lib.as_os_str())
        .init()
        .unwrap_err();
    assert!(matches!(err, NvmlError::DriverNotLoaded), "{err:?}");

    // The reason goes to stderr on one line, prefixed `nvml-sim:`.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(PROBE_ENV, "1")
        .env_remove(nvml_sim::MACHINE_ENV)
        .output()
        .expect("run the probe");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("DriverNotLoaded"), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("nvml-sim: "), "{stderr}");
    assert!(stderr.contains(nvml_sim::MACHINE_ENV), "{stderr}");
}

fn init_with_bad_machine_is_driver_not_loaded(lib: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    std::env::set_var(nvml_sim::MACHINE_ENV, &missing);
    let err = Nvml::builder()
        .lib_path(lib.as_os_str())
        .init()
        .unwrap_err();
    assert!(matches!(err, NvmlError::DriverNotLoaded), "{err:?}");

    let invalid = dir.path().join("invalid.json");
    std::fs::write(
        &invalid,
        r#"{"driverVersion":"1.2.3","cudaVersion":"12.0","gpus":[{"model":"H200","minor":0,
           "pciBusId":"0000:01:00.0","uuid":"GPU-00000000-0000-0000-0000-000000000000",
           "migMode":"enabled","gpuInstances":[{"profile":"1g.18gb","placement":7}]}]}"#,
    )
    .unwrap();
    std::env::set_var(nvml_sim::MACHINE_ENV, &invalid);
    let err = Nvml::builder()
        .lib_path(lib.as_os_str())
        .init()
        .unwrap_err();
    assert!(matches!(err, NvmlError::DriverNotLoaded), "{err:?}");
}

fn null_pointers_are_invalid_arguments(lib: &Path) {
    let nvml = open(lib, "a100x8.json");
    let l = nvml.lib();
    let gpu = nvml.device_by_index(0).unwrap();
    let h = handle(&gpu);
    let invalid = sys::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
    // SAFETY: null out pointers are the point of the test; handles are ours
    // or plainly bogus (never dereferenced by the simulator).
    unsafe {
        assert_eq!(
            l.nvmlDeviceGetCount_v2.as_ref().unwrap()(std::ptr::null_mut()),
            invalid
        );
        assert_eq!(
            l.nvmlDeviceGetMinorNumber.as_ref().unwrap()(h, std::ptr::null_mut()),
            invalid
        );
        assert_eq!(
            l.nvmlDeviceGetUUID.as_ref().unwrap()(h, std::ptr::null_mut(), 96),
            invalid
        );
        assert_eq!(
            l.nvmlDeviceGetMigMode.as_ref().unwrap()(h, std::ptr::null_mut(), std::ptr::null_mut()),
            invalid
        );
        let mut minor = 0;
        assert_eq!(
            l.nvmlDeviceGetMinorNumber.as_ref().unwrap()(std::ptr::null_mut(), &mut minor),
            invalid,
            "null handle"
        );
        assert_eq!(
            l.nvmlDeviceGetMinorNumber.as_ref().unwrap()(0x1234 as sys::nvmlDevice_t, &mut minor),
            invalid,
            "bogus handle"
        );
        let mut small = [0 as std::ffi::c_char; 8];
        assert_eq!(
            l.nvmlDeviceGetUUID.as_ref().unwrap()(h, small.as_mut_ptr(), small.len() as u32),
            sys::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE
        );
    }
}

// ---- H200: the real machine --------------------------------------------------

fn h200_system_versions(lib: &Path) {
    let nvml = open(lib, "h200.json");
    assert_eq!(nvml.sys_driver_version().unwrap(), "580.159.04");
    assert_eq!(nvml.sys_cuda_driver_version().unwrap(), 13000);
    assert_eq!(nvml.sys_nvml_version().unwrap(), "13.580.159.04");
}

fn h200_matches_real_identity(lib: &Path) {
    let nvml = open(lib, "h200.json");
    assert_eq!(nvml.device_count().unwrap(), 1);
    let gpu = nvml.device_by_index(0).unwrap();
    // nvidia-smi -L of the snapshot.
    let smi_l = std::fs::read_to_string(h200_snapshot().join("nvidia-smi-L.txt")).unwrap();
    assert_eq!(
        smi_l.trim(),
        format!(
            "GPU 0: {} (UUID: {})",
            gpu.name().unwrap(),
            gpu.uuid().unwrap()
        )
    );
    assert_eq!(gpu.minor_number().unwrap(), 0);
    assert_eq!(gpu.index().unwrap(), 0);
    let pci = gpu.pci_info().unwrap();
    assert_eq!(pci.bus_id, "00000000:00:06.0");
    assert_eq!((pci.domain, pci.bus, pci.device), (0, 0, 6));
    let mode = gpu.mig_mode().unwrap();
    assert_eq!(
        (mode.current, mode.pending),
        (0, 0),
        "attributes-mig-mode [0, 0]"
    );
    assert_eq!(gpu.mig_device_count().unwrap(), 0);
    assert!(matches!(
        gpu.mig_device_by_index(0),
        Err(NvmlError::InvalidArg)
    ));
    assert!(!gpu.mig_is_mig_device_handle().unwrap());
    assert_eq!(
        gpu.cuda_compute_capability()
            .map(|c| (c.major, c.minor))
            .ok(),
        Some((9, 0))
    );
}

/// `nvml-profiles.txt`: `index id slices instances memMiB sm ce dec enc jpeg ofa p2p`
/// or `index error Not Supported`.
fn real_profiles() -> BTreeMap<u32, Option<Vec<u64>>> {
    let text = std::fs::read_to_string(h200_snapshot().join("nvml-profiles.txt")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("attributes"))
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let index: u32 = fields[0].parse().unwrap();
            if fields[1] == "error" {
                assert_eq!(&fields[2..], ["Not", "Supported"], "{line}");
                (index, None)
            } else {
                (
                    index,
                    Some(fields[1..].iter().map(|f| f.parse().unwrap()).collect()),
                )
            }
        })
        .collect()
}

fn h200_profiles_equal_real_nvml_profiles(lib: &Path) {
    let nvml = open(lib, "h200.json");
    let gpu = nvml.device_by_index(0).unwrap();
    let real = real_profiles();
    assert_eq!(real.len(), 17, "indexes 0..16 in the snapshot");
    for (index, expected) in real {
        match (gpu.profile_info(index), expected) {
            (Ok(p), Some(want)) => {
                let got = vec![
                    u64::from(p.id),
                    u64::from(p.slice_count),
                    u64::from(p.instance_count),
                    p.memory_size_mb,
                    u64::from(p.multiprocessor_count),
                    u64::from(p.copy_engine_count),
                    u64::from(p.decoder_count),
                    u64::from(p.encoder_count),
                    u64::from(p.jpeg_count),
                    u64::from(p.ofa_count),
                    u64::from(p.is_p2p_supported),
                ];
                assert_eq!(got, want, "profile index {index}");
            }
            (Err(NvmlError::NotSupported), None) => {}
            (got, want) => panic!("profile index {index}: got {got:?}, snapshot says {want:?}"),
        }
    }
    assert!(matches!(gpu.profile_info(17), Err(NvmlError::InvalidArg)));
}

fn h200_profile_info_v_honours_version(lib: &Path) {
    let nvml = open(lib, "h200.json");
    let gpu = nvml.device_by_index(0).unwrap();
    let f = nvml
        .lib()
        .nvmlDeviceGetGpuInstanceProfileInfoV
        .as_ref()
        .unwrap();
    let v2 = std::mem::size_of::<sys::nvmlGpuInstanceProfileInfo_v2_t>() as u32 | (2 << 24);
    let v3 = std::mem::size_of::<sys::nvmlGpuInstanceProfileInfo_v3_t>() as u32 | (3 << 24);

    // SAFETY: zeroed C structs are valid; pointers are to live locals.
    let mut info2: sys::nvmlGpuInstanceProfileInfo_v2_t = unsafe { std::mem::zeroed() };
    info2.version = v2;
    // SAFETY: a v2 struct announced by its version field, live local.
    let rc = unsafe {
        f(
            handle(&gpu),
            sys::NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1,
            &mut info2,
        )
    };
    assert_eq!(rc, 0);
    // SAFETY: the simulator NUL-terminates the name.
    let name = unsafe { CStr::from_ptr(info2.name.as_ptr()) };
    assert_eq!(name.to_str().unwrap(), "MIG 1g.18gb+me");
    assert_eq!(
        (info2.id, info2.ofaCount, info2.memorySizeMB),
        (20, 1, 16384)
    );

    // SAFETY: as above.
    let mut info3: sys::nvmlGpuInstanceProfileInfo_v3_t = unsafe { std::mem::zeroed() };
    info3.version = v3;
    let p3 = (&mut info3 as *mut sys::nvmlGpuInstanceProfileInfo_v3_t).cast();
    // SAFETY: a v3 struct announced by its version field.
    let rc = unsafe { f(handle(&gpu), sys::NVML_GPU_INSTANCE_PROFILE_7_SLICE, p3) };
    assert_eq!(rc, 0);
    // SAFETY: NUL-terminated by the simulator.
    let name = unsafe { CStr::from_ptr(info3.name.as_ptr()) };
    assert_eq!(name.to_str().unwrap(), "MIG 7g.141gb");
    assert_eq!(
        (info3.id, info3.multiprocessorCount, info3.capabilities),
        (0, 132, 0)
    );

    // SAFETY: as above.
    let mut bad: sys::nvmlGpuInstanceProfileInfo_v2_t = unsafe { std::mem::zeroed() };
    bad.version = 1 << 24;
    // SAFETY: as above.
    let rc = unsafe { f(handle(&gpu), 0, &mut bad) };
    assert_eq!(
        rc,
        sys::nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH
    );
}

/// `nvidia-smi-mig-lgipp.txt`: `GPU  0 Profile ID 19 Placements: {0,1,...}:1`.
fn real_placements() -> BTreeMap<u32, Vec<(u32, u32)>> {
    let text = std::fs::read_to_string(h200_snapshot().join("nvidia-smi-mig-lgipp.txt")).unwrap();
    text.lines()
        .filter(|l| l.contains("Profile ID"))
        .map(|line| {
            let after_id = line.split("Profile ID").nth(1).unwrap();
            let (id, rest) = after_id.split_once("Placement").unwrap();
            let id: u32 = id.trim().parse().unwrap();
            let set = rest.split('{').nth(1).unwrap();
            let (starts, size) = set.split_once("}:").unwrap();
            let size: u32 = size.trim().parse().unwrap();
            let starts = starts
                .split(',')
                .map(|s| (s.trim().parse().unwrap(), size))
                .collect();
            (id, starts)
        })
        .collect()
}

fn h200_placements_equal_real_lgipp(lib: &Path) {
    let nvml = open(lib, "h200.json");
    let gpu = nvml.device_by_index(0).unwrap();
    let real = real_placements();
    assert_eq!(real.len(), 7);
    for (id, want) in real {
        assert_eq!(
            placements(&nvml, &gpu, id).unwrap(),
            want,
            "profile id {id}"
        );
    }
    assert_eq!(
        placements(&nvml, &gpu, 1),
        Err(sys::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT),
        "unknown profile id"
    );
}

/// `nvidia-smi-mig-lgip.txt`: `|   0  MIG 1g.18gb  19  7/7  16.00 ...` with MIG off.
fn h200_capacity_with_mig_disabled_equals_real_lgip(lib: &Path) {
    let nvml = open(lib, "h200.json");
    let gpu = nvml.device_by_index(0).unwrap();
    let text = std::fs::read_to_string(h200_snapshot().join("nvidia-smi-mig-lgip.txt")).unwrap();
    let mut seen = 0;
    for line in text.lines().filter(|l| l.contains(" MIG ")) {
        let fields: Vec<&str> = line.trim_matches('|').split_whitespace().collect();
        // [gpu, "MIG", name, id, free/total, memory GiB, p2p, sm, dec, enc]
        let id: u32 = fields[3].parse().unwrap();
        let (free, total) = fields[4].split_once('/').unwrap();
        let free: u32 = free.parse().unwrap();
        let total: u32 = total.parse().unwrap();
        let gib: f64 = fields[5].parse().unwrap();
        assert_eq!(remaining(&nvml, &gpu, id), Ok(free), "{line}");
        let index = (0..17)
            .find(|&i| gpu.profile_info(i).map(|p| p.id).ok() == Some(id))
            .expect("profile by id");
        let info = gpu.profile_info(index).unwrap();
        assert_eq!(info.instance_count, total, "{line}");
        assert_eq!(info.memory_size_mb as f64 / 1024.0, gib, "{line}");
        assert_eq!(info.multiprocessor_count.to_string(), fields[7], "{line}");
        seen += 1;
    }
    assert_eq!(seen, 7);
}

fn h200_mig_devices(lib: &Path) {
    let nvml = open(lib, "h200-mig.json");
    let gpu = nvml.device_by_index(0).unwrap();
    let mode = gpu.mig_mode().unwrap();
    assert_eq!((mode.current, mode.pending), (1, 1));
    let got = slots(&nvml, &gpu);
    let want = [
        Some(("NVIDIA H200 MIG 2g.35gb", 5, 0)),
        Some(("NVIDIA H200 MIG 1g.18gb", 7, 0)),
        Some(("NVIDIA H200 MIG 1g.18gb", 8, 0)),
        Some(("NVIDIA H200 MIG 1g.18gb", 9, 0)),
        Some(("NVIDIA H200 MIG 1g.18gb+me", 10, 0)),
        None,
        None,
    ];
    let got: Vec<_> = got
        .iter()
        .map(|s| s.as_ref().map(|(n, g, c)| (n.as_str(), *g, *c)))
        .collect();
    assert_eq!(got, want);
    let me = gpu.mig_device_by_index(4).unwrap();
    let attrs = me.attributes().unwrap();
    assert_eq!(
        (
            attrs.multiprocessor_count,
            attrs.shared_ofa_count,
            attrs.memory_size_mb
        ),
        (16, 1, 16384)
    );
    // 3 x 1g + 1g+me + 2g = 6 slices: one 1-slice GI still fits, at 6.
    assert_eq!(remaining(&nvml, &gpu, 19), Ok(1));
    assert_eq!(remaining(&nvml, &gpu, 20), Ok(0), "the only +me is taken");
    assert_eq!(remaining(&nvml, &gpu, 15), Ok(1), "1g.35gb at 6");
    assert_eq!(remaining(&nvml, &gpu, 14), Ok(0));
}

// ---- A100 x 8 ---------------------------------------------------------------------

fn a100x8_enumeration(lib: &Path) {
    let nvml = open(lib, "a100x8.json");
    assert_eq!(nvml.device_count().unwrap(), 8);
    let mut last_bus = String::new();
    for i in 0..8 {
        let gpu = nvml.device_by_index(i).unwrap();
        assert_eq!(gpu.index().unwrap(), i);
        assert_eq!(
            gpu.minor_number().unwrap(),
            i,
            "minor = index on this machine"
        );
        assert_eq!(gpu.name().unwrap(), "NVIDIA A100-SXM4-80GB");
        let uuid = gpu.uuid().unwrap();
        assert!(is_uuid("GPU", &uuid), "{uuid}");
        let bus = gpu.pci_info().unwrap().bus_id;
        assert_eq!(bus.len(), "00000000:07:00.0".len(), "{bus}");
        assert!(bus.starts_with("00000000:"), "{bus}");
        assert_eq!(bus, bus.to_uppercase(), "NVML prints hex in uppercase");
        assert!(bus > last_bus, "NVML orders by PCI bus id");
        last_bus = bus;
    }
    assert!(matches!(
        nvml.device_by_index(8),
        Err(NvmlError::InvalidArg)
    ));
}

fn a100x8_gi_ci_ids_of_every_placement(lib: &Path) {
    let nvml = open(lib, "a100x8.json");
    let name = |p: &str| format!("NVIDIA A100-SXM4-80GB MIG {p}");
    let want: [Vec<Option<(String, u32, u32)>>; 8] = [
        (7..14).map(|gi| Some((name("1g.10gb"), gi, 0))).collect(),
        vec![Some((name("4g.40gb"), 1, 0)), Some((name("3g.40gb"), 2, 0))],
        vec![
            Some((name("2g.20gb"), 3, 0)),
            Some((name("2g.20gb"), 4, 0)),
            Some((name("2g.20gb"), 5, 0)),
            Some((name("1g.10gb"), 13, 0)),
        ],
        vec![
            Some((name("2c.3g.40gb"), 1, 0)),
            Some((name("1c.3g.40gb"), 1, 2)),
        ],
        vec![],
        vec![],
        vec![Some((name("7g.80gb"), 0, 0))],
        vec![
            Some((name("1g.10gb"), 7, 0)),
            None,
            Some((name("2g.20gb"), 4, 0)),
        ],
    ];
    for (i, want) in want.iter().enumerate() {
        let gpu = nvml.device_by_index(i as u32).unwrap();
        let mut got = slots(&nvml, &gpu);
        while got.last() == Some(&None) {
            got.pop();
        }
        assert_eq!(&got, want, "GPU {i}");
    }
}

fn a100x8_mig_modes_and_slot_gaps(lib: &Path) {
    let nvml = open(lib, "a100x8.json");
    let mode = |i: u32| {
        let m = nvml.device_by_index(i).unwrap().mig_mode().unwrap();
        (m.current, m.pending)
    };
    assert_eq!(mode(0), (1, 1));
    assert_eq!(mode(4), (0, 0));
    assert_eq!(mode(6), (1, 0), "enabled now, disabled after reset");

    // MIG disabled: no MIG device count, every index out of range.
    let gpu4 = nvml.device_by_index(4).unwrap();
    assert_eq!(gpu4.mig_device_count().unwrap(), 0);
    assert!(matches!(
        gpu4.mig_device_by_index(0),
        Err(NvmlError::InvalidArg)
    ));

    // MIG enabled without instances: 7 empty slots.
    let gpu5 = nvml.device_by_index(5).unwrap();
    assert_eq!(gpu5.mig_device_count().unwrap(), 7);
    for i in 0..7 {
        assert!(
            matches!(gpu5.mig_device_by_index(i), Err(NvmlError::NotFound)),
            "slot {i}"
        );
    }
    assert!(matches!(
        gpu5.mig_device_by_index(7),
        Err(NvmlError::InvalidArg)
    ));

    // The gap: slot 1 is empty, slot 2 is not.
    let gpu7 = nvml.device_by_index(7).unwrap();
    assert!(gpu7.mig_device_by_index(0).is_ok());
    assert!(matches!(
        gpu7.mig_device_by_index(1),
        Err(NvmlError::NotFound)
    ));
    assert!(gpu7.mig_device_by_index(2).is_ok());
}

fn a100x8_mig_handles_answer_like_nvml(lib: &Path) {
    let nvml = open(lib, "a100x8.json");
    let gpu = nvml.device_by_index(3).unwrap();
    let mig = gpu.mig_device_by_index(1).unwrap();
    assert!(mig.mig_is_mig_device_handle().unwrap());
    let uuid = mig.uuid().unwrap();
    assert!(is_uuid("MIG", &uuid), "{uuid}");
    assert_ne!(uuid, gpu.mig_device_by_index(0).unwrap().uuid().unwrap());

    // Handles are stable and distinct.
    assert_eq!(handle(&mig), handle(&gpu.mig_device_by_index(1).unwrap()));
    assert_ne!(handle(&mig), handle(&gpu));

    // The parent and the UUID lookup lead back.
    let parent = mig.mig_parent_device().unwrap();
    assert_eq!(handle(&parent), handle(&gpu));
    assert_eq!(
        handle(&nvml.device_by_uuid(uuid.as_str()).unwrap()),
        handle(&mig)
    );

    // Physical-GPU questions are not for MIG handles.
    assert!(matches!(mig.index(), Err(NvmlError::NotSupported)));
    assert!(matches!(mig.minor_number(), Err(NvmlError::NotSupported)));
    assert!(matches!(mig.pci_info(), Err(NvmlError::NotSupported)));
    assert!(matches!(mig.mig_mode(), Err(NvmlError::NotSupported)));
    assert!(matches!(mig.mig_device_count(), Err(NvmlError::InvalidArg)));
    assert!(matches!(
        mig.mig_device_by_index(0),
        Err(NvmlError::InvalidArg)
    ));
    assert!(matches!(mig.profile_info(0), Err(NvmlError::InvalidArg)));
    // ... and MIG questions are not for GPU handles.
    assert!(matches!(
        gpu.mig_parent_device(),
        Err(NvmlError::InvalidArg)
    ));
    assert!(matches!(gpu.attributes(), Err(NvmlError::NotSupported)));
    assert_eq!(
        gi_id(&nvml, &gpu),
        Err(sys::nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED)
    );
    assert_eq!(
        ci_id(&nvml, &gpu),
        Err(sys::nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED)
    );
}

fn a100x8_attributes_and_memory(lib: &Path) {
    let nvml = open(lib, "a100x8.json");
    let gpu = nvml.device_by_index(3).unwrap();
    let two_c = gpu.mig_device_by_index(0).unwrap().attributes().unwrap();
    let one_c = gpu.mig_device_by_index(1).unwrap().attributes().unwrap();
    assert_eq!(
        (
            two_c.multiprocessor_count,
            two_c.gpu_instance_slice_count,
            two_c.compute_instance_slice_count
        ),
        (28, 3, 2)
    );
    assert_eq!(
        (
            one_c.multiprocessor_count,
            one_c.gpu_instance_slice_count,
            one_c.compute_instance_slice_count
        ),
        (14, 3, 1)
    );
    assert_eq!(
        (
            two_c.memory_size_mb,
            two_c.shared_copy_engine_count,
            two_c.shared_decoder_count
        ),
        (40192, 3, 2)
    );

    let full = nvml
        .device_by_index(6)
        .unwrap()
        .mig_device_by_index(0)
        .unwrap();
    let attrs = full.attributes().unwrap();
    assert_eq!(
        (attrs.multiprocessor_count, attrs.memory_size_mb),
        (98, 80640)
    );
    assert_eq!(full.memory_info().unwrap().total, 80640 * 1024 * 1024);
    assert_eq!(gpu.memory_info().unwrap().total, 81920 * 1024 * 1024);
}

fn a100x8_remaining_capacity(lib: &Path) {
    let nvml = open(lib, "a100x8.json");
    // (GPU, [(profile id, remaining)])
    let table: [(u32, &[(u32, u32)]); 5] = [
        (
            0,
            &[(19, 0), (20, 0), (15, 0), (14, 0), (9, 0), (5, 0), (0, 0)],
        ),
        (1, &[(19, 0), (14, 0), (9, 0), (5, 0), (0, 0)]),
        // 3g.40gb at 0 only: 4 slots and 4 compute slices left.
        (
            3,
            &[(19, 3), (20, 1), (15, 2), (14, 1), (9, 1), (5, 0), (0, 0)],
        ),
        // MIG disabled: all free, like the real H200 shows.
        (
            4,
            &[(19, 7), (20, 1), (15, 4), (14, 3), (9, 2), (5, 1), (0, 1)],
        ),
        (
            5,
            &[(19, 7), (20, 1), (15, 4), (14, 3), (9, 2), (5, 1), (0, 1)],
        ),
    ];
    for (i, expected) in table {
        let gpu = nvml.device_by_index(i).unwrap();
        for &(profile, want) in expected {
            assert_eq!(
                remaining(&nvml, &gpu, profile),
                Ok(want),
                "GPU {i} profile {profile}"
            );
        }
    }
}

// ---- H100 x 4 -----------------------------------------------------------------------

fn h100x4_index_differs_from_minor(lib: &Path) {
    let nvml = open(lib, "h100x4.json");
    assert_eq!(nvml.device_count().unwrap(), 4);
    let minors: Vec<u32> = (0..4)
        .map(|i| nvml.device_by_index(i).unwrap().minor_number().unwrap())
        .collect();
    assert_eq!(minors, [2, 0, 3, 1]);
    for i in 0..4 {
        let gpu = nvml.device_by_index(i).unwrap();
        assert_eq!(gpu.index().unwrap(), i);
        assert_eq!(gpu.name().unwrap(), "NVIDIA H100 80GB HBM3");
    }
    let gpu2 = nvml.device_by_index(2).unwrap();
    let names: Vec<String> = (0..2)
        .map(|s| gpu2.mig_device_by_index(s).unwrap().name().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "NVIDIA H100 80GB HBM3 MIG 4c.7g.80gb",
            "NVIDIA H100 80GB HBM3 MIG 3c.7g.80gb"
        ]
    );
    let three_c = gpu2.mig_device_by_index(1).unwrap();
    assert_eq!(
        (gi_id(&nvml, &three_c), ci_id(&nvml, &three_c)),
        (Ok(0), Ok(4))
    );
    assert_eq!(three_c.attributes().unwrap().multiprocessor_count, 60);
}

fn h100x4_handles_by_uuid_and_bus_id(lib: &Path) {
    let nvml = open(lib, "h100x4.json");
    for i in 0..4 {
        let gpu = nvml.device_by_index(i).unwrap();
        let by_uuid = nvml.device_by_uuid(gpu.uuid().unwrap().as_str()).unwrap();
        assert_eq!(handle(&by_uuid), handle(&gpu));
        let bus = gpu.pci_info().unwrap().bus_id;
        let by_bus = nvml.device_by_pci_bus_id(bus.as_str()).unwrap();
        assert_eq!(handle(&by_bus), handle(&gpu));
        let lower = bus.to_lowercase();
        let by_short = nvml.device_by_pci_bus_id(&lower[4..]).unwrap();
        assert_eq!(handle(&by_short), handle(&gpu), "0000:bb:dd.f form");
    }
    assert!(matches!(
        nvml.device_by_uuid("GPU-00000000-0000-0000-0000-000000000000"),
        Err(NvmlError::NotFound)
    ));
}

fn handles_are_stable_across_init_cycles(lib: &Path) {
    let first = {
        let nvml = open(lib, "h100x4.json");
        let raw = raw(lib); // keeps the library loaded across the re-init
        let h = handle(
            &nvml
                .device_by_index(0)
                .unwrap()
                .mig_device_by_index(0)
                .unwrap(),
        ) as usize;
        drop(nvml);
        let nvml = open(lib, "h100x4.json");
        let again = handle(
            &nvml
                .device_by_index(0)
                .unwrap()
                .mig_device_by_index(0)
                .unwrap(),
        ) as usize;
        drop(raw);
        (h, again)
    };
    assert_eq!(first.0, first.1);
}

// ---- architecture, vBIOS, GPU and compute instances -------------------------

fn architecture_and_vbios_per_board(lib: &Path) {
    let nvml = open(lib, "h200.json");
    let gpu = nvml.device_by_index(0).unwrap();
    assert_eq!(
        gpu.architecture().unwrap(),
        nvml_wrapper::enums::device::DeviceArchitecture::Hopper
    );
    // The real H200: /proc says 96.00.a5.00.1a, nvidia-smi -q (NVML)
    // 96.00.A5.00.1A (examples/real-h200/doctor-h200-check.txt).
    assert_eq!(gpu.vbios_version().unwrap(), "96.00.A5.00.1A");
    nvml.shutdown().unwrap();

    let nvml = open(lib, "a100x8.json");
    let gpu = nvml.device_by_index(0).unwrap();
    assert_eq!(
        gpu.architecture().unwrap(),
        nvml_wrapper::enums::device::DeviceArchitecture::Ampere
    );
    let mig = gpu.mig_device_by_index(0).unwrap();
    // A MIG device answers its parent's architecture but has no vBIOS.
    assert_eq!(
        mig.architecture().unwrap(),
        nvml_wrapper::enums::device::DeviceArchitecture::Ampere
    );
    assert!(matches!(mig.vbios_version(), Err(NvmlError::NotSupported)));
}

/// Raw GI handles of `profile_id` on `gpu`, or the NVML error.
fn gpu_instances(
    nvml: &Nvml,
    gpu: &Device,
    profile_id: u32,
) -> Result<Vec<sys::nvmlGpuInstance_t>, u32> {
    let f = nvml.lib().nvmlDeviceGetGpuInstances.as_ref().unwrap();
    let mut buf = vec![std::ptr::null_mut(); 8];
    let mut count: c_uint = 0;
    // SAFETY: room for 8 handles (more than any profile's instance count).
    let rc = unsafe { f(handle(gpu), profile_id, buf.as_mut_ptr(), &mut count) };
    if rc != 0 {
        return Err(rc);
    }
    buf.truncate(count as usize);
    Ok(buf)
}

fn gi_info(nvml: &Nvml, gi: sys::nvmlGpuInstance_t) -> sys::nvmlGpuInstanceInfo_t {
    let f = nvml.lib().nvmlGpuInstanceGetInfo.as_ref().unwrap();
    // SAFETY: a zeroed plain C struct is valid.
    let mut info: sys::nvmlGpuInstanceInfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: a GI handle of this library and a live out-pointer.
    assert_eq!(unsafe { f(gi, &mut info) }, 0);
    info
}

fn gi_by_id(nvml: &Nvml, gpu: &Device, id: u32) -> Result<sys::nvmlGpuInstance_t, u32> {
    let f = nvml.lib().nvmlDeviceGetGpuInstanceById.as_ref().unwrap();
    let mut gi = std::ptr::null_mut();
    // SAFETY: live out-pointer.
    match unsafe { f(handle(gpu), id, &mut gi) } {
        0 => Ok(gi),
        rc => Err(rc),
    }
}

fn a100x8_gpu_instances_by_profile_and_id(lib: &Path) {
    let nvml = open(lib, "a100x8.json");
    // GPU 0: 7 x 1g.10gb (profile 19) at placements 0..6, GI ids 7..13.
    let gpu = nvml.device_by_index(0).unwrap();
    let gis = gpu_instances(&nvml, &gpu, 19).unwrap();
    let infos: Vec<(u32, u32, u32, u32)> = gis
        .iter()
        .map(|&gi| {
            let info = gi_info(&nvml, gi);
            assert_eq!(info.device, handle(&gpu), "the parent device");
            (
                info.id,
                info.profileId,
                info.placement.start,
                info.placement.size,
            )
        })
        .collect();
    let want: Vec<_> = (0..7).map(|s| (7 + s, 19, s, 1)).collect();
    assert_eq!(infos, want);
    assert_eq!(
        gpu_instances(&nvml, &gpu, 9).unwrap(),
        Vec::<sys::nvmlGpuInstance_t>::new()
    );
    assert_eq!(
        gpu_instances(&nvml, &gpu, 99),
        Err(sys::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT)
    );
    // By id: the same handle; an id no GI has is NOT_FOUND.
    assert_eq!(gi_by_id(&nvml, &gpu, 7), Ok(gis[0]));
    assert_eq!(
        gi_by_id(&nvml, &gpu, 0),
        Err(sys::nvmlReturn_enum_NVML_ERROR_NOT_FOUND)
    );
    // GPU 1: 4g.40gb at 0 (GI 1) and 3g.40gb at 4 (GI 2).
    let gpu1 = nvml.device_by_index(1).unwrap();
    let info = gi_info(&nvml, gi_by_id(&nvml, &gpu1, 2).unwrap());
    assert_eq!(
        (info.profileId, info.placement.start, info.placement.size),
        (9, 4, 4)
    );
    // MIG disabled (GPU 4): no GPU instances to ask for.
    let off = nvml.device_by_index(4).unwrap();
    assert_eq!(
        gpu_instances(&nvml, &off, 19),
        Err(sys::nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED)
    );
    // A GI handle is not a device handle, nor the other way round.
    let mut minor = 0;
    // SAFETY: handles are never dereferenced by the simulator.
    let rc =
        unsafe { nvml.lib().nvmlDeviceGetMinorNumber.as_ref().unwrap()(gis[0].cast(), &mut minor) };
    assert_eq!(rc, sys::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT);
    // SAFETY: as above; a zeroed out struct.
    let mut info: sys::nvmlGpuInstanceInfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let rc = unsafe {
        nvml.lib().nvmlGpuInstanceGetInfo.as_ref().unwrap()(handle(&gpu).cast(), &mut info)
    };
    assert_eq!(rc, sys::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT);
}

fn ci_by_id(
    nvml: &Nvml,
    gi: sys::nvmlGpuInstance_t,
    id: u32,
) -> Result<sys::nvmlComputeInstance_t, u32> {
    let f = nvml
        .lib()
        .nvmlGpuInstanceGetComputeInstanceById
        .as_ref()
        .unwrap();
    let mut ci = std::ptr::null_mut();
    // SAFETY: live out-pointer.
    match unsafe { f(gi, id, &mut ci) } {
        0 => Ok(ci),
        rc => Err(rc),
    }
}

/// The legacy `nvmlComputeInstanceGetInfo`, which nvml-wrapper-sys binds
/// only with its `legacy-functions` feature: looked up with dlsym.
fn legacy_ci_info(lib: &Path, ci: sys::nvmlComputeInstance_t) -> (u32, [usize; 2], [u32; 2]) {
    #[repr(C)]
    struct V1 {
        device: sys::nvmlDevice_t,
        gpu_instance: sys::nvmlGpuInstance_t,
        id: c_uint,
        profile_id: c_uint,
    }
    #[repr(C)]
    struct Guarded {
        info: V1,
        after: [u32; 2],
    }
    let path = std::ffi::CString::new(lib.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: dlopen of our own library, already loaded in this process.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW) };
    assert!(!handle.is_null());
    // SAFETY: a NUL-terminated symbol name and a live dlopen handle.
    let sym = unsafe { libc::dlsym(handle, c"nvmlComputeInstanceGetInfo".as_ptr()) };
    assert!(!sym.is_null(), "nvmlComputeInstanceGetInfo is exported");
    type GetInfo = unsafe extern "C" fn(sys::nvmlComputeInstance_t, *mut V1) -> u32;
    // SAFETY: the symbol has this C signature (nvml.h of R450).
    let f: GetInfo = unsafe { std::mem::transmute::<*mut libc::c_void, GetInfo>(sym) };
    let mut out = Guarded {
        info: V1 {
            device: std::ptr::null_mut(),
            gpu_instance: std::ptr::null_mut(),
            id: u32::MAX,
            profile_id: u32::MAX,
        },
        after: [0xdead, 0xbeef],
    };
    // SAFETY: a live V1 (followed by guard words that must stay intact).
    let rc = unsafe { f(ci, &mut out.info) };
    assert_eq!(rc, 0);
    (
        out.info.id * 100 + out.info.profile_id,
        [out.info.device as usize, out.info.gpu_instance as usize],
        out.after,
    )
}

fn a100x8_compute_instances_and_their_info(lib: &Path) {
    let nvml = open(lib, "a100x8.json");
    // GPU 3: one 3g.40gb GI (GI 1) split into a 2c CI (CI 0 at 0) and a
    // 1c CI (CI 2 at 2).
    let gpu = nvml.device_by_index(3).unwrap();
    let gi = gi_by_id(&nvml, &gpu, 1).unwrap();
    let info_v2 = nvml.lib().nvmlComputeInstanceGetInfo_v2.as_ref().unwrap();
    let mut seen = Vec::new();
    for id in 0..8 {
        let ci = match ci_by_id(&nvml, gi, id) {
            Ok(ci) => ci,
            Err(rc) => {
                assert_eq!(rc, sys::nvmlReturn_enum_NVML_ERROR_NOT_FOUND, "CI {id}");
                continue;
            }
        };
        // SAFETY: a zeroed plain C struct is valid.
        let mut info: sys::nvmlComputeInstanceInfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: a CI handle of this library and a live out-pointer.
        assert_eq!(unsafe { info_v2(ci, &mut info) }, 0);
        assert_eq!(info.device, handle(&gpu));
        assert_eq!(info.gpuInstance, gi);
        seen.push((
            info.id,
            info.profileId,
            info.placement.start,
            info.placement.size,
        ));
        let (id_profile, handles, guard) = legacy_ci_info(lib, ci);
        assert_eq!(id_profile, info.id * 100 + info.profileId);
        assert_eq!(handles, [handle(&gpu) as usize, gi as usize]);
        assert_eq!(
            guard,
            [0xdead, 0xbeef],
            "the legacy call wrote past its struct"
        );
    }
    // CI profile ids: 2 slices -> 1, 1 slice -> 0.
    assert_eq!(seen, [(0, 1, 0, 2), (2, 0, 2, 1)]);
    // By CI profile: one 1c, one 2c, no 3g.
    let list = nvml
        .lib()
        .nvmlGpuInstanceGetComputeInstances
        .as_ref()
        .unwrap();
    for (profile, want) in [(0, 1), (1, 1), (2, 0)] {
        let mut buf = vec![std::ptr::null_mut(); 8];
        let mut count = 0;
        // SAFETY: room for 8 handles.
        let rc = unsafe { list(gi, profile, buf.as_mut_ptr(), &mut count) };
        assert_eq!(rc, 0);
        assert_eq!(count, want, "CI profile {profile}");
    }
    // A device handle in place of a GI.
    assert_eq!(
        ci_by_id(&nvml, handle(&gpu).cast(), 0),
        Err(sys::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT)
    );
}

/// `nvidia-smi mig -lcip -gi 1` of a 3g.20gb GI in NVIDIA's MIG user guide
/// (A100-SXM4-40GB): 1c 0/3 SM 14, 2c 0/1 SM 28, 3g 0/1 SM 42; DEC 2, CE 3
/// shared. The A100-SXM4-80GB's 3g.40gb has the same compute side.
fn a100x8_compute_instance_profiles_match_lcip(lib: &Path) {
    let nvml = open(lib, "a100x8.json");
    let gpu = nvml.device_by_index(3).unwrap();
    let gi = gi_by_id(&nvml, &gpu, 1).unwrap();
    let f = nvml
        .lib()
        .nvmlGpuInstanceGetComputeInstanceProfileInfoV
        .as_ref()
        .unwrap();
    let v2 = std::mem::size_of::<sys::nvmlComputeInstanceProfileInfo_v2_t>() as u32 | (2 << 24);
    let mut rows = Vec::new();
    for profile in 0..sys::NVML_COMPUTE_INSTANCE_PROFILE_COUNT {
        // SAFETY: a zeroed plain C struct is valid.
        let mut info: sys::nvmlComputeInstanceProfileInfo_v2_t = unsafe { std::mem::zeroed() };
        info.version = v2;
        // SAFETY: a v2 struct announced by its version field.
        let rc = unsafe {
            f(
                gi,
                profile,
                sys::NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED,
                &mut info,
            )
        };
        if rc == sys::nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED {
            continue;
        }
        assert_eq!(rc, 0, "profile {profile}");
        // SAFETY: NUL-terminated by the simulator.
        let name = unsafe { CStr::from_ptr(info.name.as_ptr()) }
            .to_str()
            .unwrap()
            .to_string();
        rows.push((
            name,
            info.id,
            info.instanceCount,
            info.multiprocessorCount,
            info.sharedDecoderCount,
            info.sharedCopyEngineCount,
        ));
    }
    let want = [
        ("MIG 1c.3g.40gb", 0, 3, 14, 2, 3),
        ("MIG 2c.3g.40gb", 1, 1, 28, 2, 3),
        ("MIG 3g.40gb", 2, 1, 42, 2, 3),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|&(n, id, c, sm, dec, ce)| (n.to_string(), id, c, sm, dec, ce))
        .collect();
    assert_eq!(rows, want);
    // The plain call agrees; other engine profiles and indexes are refused.
    let plain = nvml
        .lib()
        .nvmlGpuInstanceGetComputeInstanceProfileInfo
        .as_ref()
        .unwrap();
    // SAFETY: a zeroed plain C struct is valid.
    let mut info: sys::nvmlComputeInstanceProfileInfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: live out-pointer.
    assert_eq!(unsafe { plain(gi, 1, 0, &mut info) }, 0);
    assert_eq!((info.sliceCount, info.multiprocessorCount), (2, 28));
    // SAFETY: as above.
    let rc = unsafe { plain(gi, 1, 1, &mut info) };
    assert_eq!(rc, sys::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT);
    // SAFETY: as above.
    let rc = unsafe { plain(gi, 8, 0, &mut info) };
    assert_eq!(rc, sys::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT);
}

/// The boards added for doctor (`examples/machines/doctor/new-boards.json`):
/// names, architectures, slot counts, 4-slot GI ids and the profile
/// indexes only the RTX PRO has.
fn new_boards_answer_from_their_tables(lib: &Path) {
    use nvml_wrapper::enums::device::DeviceArchitecture as Arch;
    let nvml = open(lib, "doctor/new-boards.json");
    let want = [
        ("NVIDIA A30", Arch::Ampere, (8, 0), 4),
        ("NVIDIA A100-SXM4-40GB", Arch::Ampere, (8, 0), 7),
        ("NVIDIA H100 NVL", Arch::Hopper, (9, 0), 7),
        ("NVIDIA B200", Arch::Blackwell, (10, 0), 7),
        (
            "NVIDIA RTX PRO 6000 Blackwell Server Edition",
            Arch::Blackwell,
            (12, 0),
            4,
        ),
        ("NVIDIA GH200 480GB", Arch::Hopper, (9, 0), 7),
    ];
    assert_eq!(nvml.device_count().unwrap(), want.len() as u32);
    for (i, (name, arch, cc, max_mig)) in want.into_iter().enumerate() {
        let gpu = nvml.device_by_index(i as u32).unwrap();
        assert_eq!(gpu.name().unwrap(), name);
        assert_eq!(gpu.architecture().unwrap(), arch, "{name}");
        let c = gpu.cuda_compute_capability().unwrap();
        assert_eq!((c.major, c.minor), cc, "{name}");
        assert_eq!(gpu.mig_device_count().unwrap(), max_mig, "{name}");
    }
    // A30: 2g.12gb at 2 is GI 2, the 1g.6gb at 0 and 1 are GIs 3 and 4.
    let a30 = nvml.device_by_index(0).unwrap();
    let gis: Vec<_> = slots(&nvml, &a30).into_iter().flatten().collect();
    assert_eq!(
        gis,
        [
            ("NVIDIA A30 MIG 2g.12gb".to_string(), 2, 0),
            ("NVIDIA A30 MIG 1g.6gb".to_string(), 3, 0),
            ("NVIDIA A30 MIG 1g.6gb".to_string(), 4, 0),
        ]
    );
    assert_eq!(
        remaining(&nvml, &a30, 14),
        Ok(0),
        "all 4 compute slices are used"
    );
    // RTX PRO: the +gfx (index 10), -me (13) and +me.all (15) profiles.
    let rtx = nvml.device_by_index(4).unwrap();
    for (index, id) in [(10, 47), (13, 67), (15, 65)] {
        assert_eq!(rtx.profile_info(index).unwrap().id, id, "index {index}");
    }
    assert!(matches!(rtx.profile_info(4), Err(NvmlError::NotSupported)));
}
