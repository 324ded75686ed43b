//! What a user reads when the driver's tables are not what we expect: each
//! crafted input must give one line naming the file (and the line, where
//! there is one) and saying what to do.

use std::fs;
use std::path::Path;

use mig_cdi_core::driver::{
    parse_capability, parse_mig_minors, parse_proc_devices, DriverError, DriverTables,
};
use tempfile::TempDir;

const MIG_MINORS: &str = "/x/proc/driver/nvidia-caps/mig-minors";
const UNEXPECTED: &str =
    "the driver wrote an unexpected table — check the driver version (mig-cdi supports 450.51+)";

/// The first `n` lines of the real table, in the driver's layout.
fn mig_minors_head(n: u32) -> String {
    let mut text = String::from("config 1\nmonitor 2\n");
    let mut minor = 3;
    'out: for gi in 0..15 {
        for ci in [
            None,
            Some(0),
            Some(1),
            Some(2),
            Some(3),
            Some(4),
            Some(5),
            Some(6),
            Some(7),
        ] {
            if minor > n {
                break 'out;
            }
            match ci {
                None => text.push_str(&format!("gpu0/gi{gi}/access {minor}\n")),
                Some(ci) => text.push_str(&format!("gpu0/gi{gi}/ci{ci}/access {minor}\n")),
            }
            minor += 1;
        }
    }
    text
}

fn mig_minors_error(text: &str) -> String {
    parse_mig_minors(text.as_bytes(), Path::new(MIG_MINORS))
        .unwrap_err()
        .to_string()
}

#[test]
fn mig_minors_garbled_line() {
    let text = format!("{}gpu0/gi/access 3\n", mig_minors_head(16));
    assert_eq!(
        mig_minors_error(&text),
        format!(
            "{MIG_MINORS}:17: expected \"gpu<N>/gi<G>/access <minor>\" or \
             \"gpu<N>/gi<G>/ci<C>/access <minor>\", found \"gpu0/gi/access 3\"; {UNEXPECTED}"
        )
    );
}

#[test]
fn mig_minors_line_with_three_fields() {
    let text = "config 1\nmonitor 2 3\n";
    assert_eq!(
        mig_minors_error(text),
        format!(
            "{MIG_MINORS}:2: expected \"gpu<N>/gi<G>/access <minor>\" or \
             \"gpu<N>/gi<G>/ci<C>/access <minor>\", found \"monitor 2 3\"; {UNEXPECTED}"
        )
    );
}

#[test]
fn mig_minors_duplicate_name() {
    let text = format!("{}gpu0/gi0/ci3/access 99\n", mig_minors_head(20));
    assert_eq!(
        mig_minors_error(&text),
        format!(
            "{MIG_MINORS}:21: \"gpu0/gi0/ci3/access\" appears a second time (first with minor 7); \
             {UNEXPECTED}"
        )
    );
}

#[test]
fn mig_minors_non_numeric_minor() {
    let text = "config 1\nmonitor 2\ngpu0/gi0/access 0x3\n";
    assert_eq!(
        mig_minors_error(text),
        format!(
            "{MIG_MINORS}:3: expected a decimal minor number after \"gpu0/gi0/access\", \
             found \"0x3\"; {UNEXPECTED}"
        )
    );
}

#[test]
fn mig_minors_minor_given_to_two_names() {
    let text = "config 1\nmonitor 1\n";
    assert_eq!(
        mig_minors_error(text),
        format!("{MIG_MINORS}: minor 1 is given to both \"config\" and \"monitor\"; {UNEXPECTED}")
    );
}

#[test]
fn capability_without_device_file_minor() {
    let path = "/x/proc/driver/nvidia/capabilities/gpu0/mig/gi1/access";
    let err = parse_capability(
        "DeviceFileMode: 292\nDeviceFileModify: 1\n".as_bytes(),
        Path::new(path),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{path}: no \"DeviceFileMinor\" line; {UNEXPECTED}")
    );
}

#[test]
fn capability_with_non_numeric_minor() {
    let path = "/x/proc/driver/nvidia/capabilities/mig/config";
    let err = parse_capability(
        "DeviceFileMinor: one\nDeviceFileMode: 256\n".as_bytes(),
        Path::new(path),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{path}:1: expected \"DeviceFileMinor: <decimal minor>\", found \
             \"DeviceFileMinor: one\"; {UNEXPECTED}"
        )
    );
}

#[test]
fn proc_devices_without_character_section() {
    let err = parse_proc_devices(
        "Block devices:\n  7 loop\n253 zram\n".as_bytes(),
        Path::new("/x/proc/devices"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "/x/proc/devices: no \"Character devices:\" section; this does not look like the \
         kernel's /proc/devices — does --root point at the host's root?"
    );
}

#[test]
fn proc_devices_garbled_char_line() {
    let err = parse_proc_devices(
        "Character devices:\n  1 mem\nnvidia 195\n".as_bytes(),
        Path::new("/x/proc/devices"),
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "/x/proc/devices:3: expected \"<major> <name>\" with a decimal major in the \
             \"Character devices:\" section, found \"nvidia 195\";"
        ),
        "{err}"
    );
}

#[test]
fn proc_devices_block_names_stay_out() {
    let devices = parse_proc_devices(
        "Character devices:\n195 nvidia\n\nBlock devices:\n241 nvidia-caps\n".as_bytes(),
        Path::new("/x/proc/devices"),
    )
    .unwrap();
    assert_eq!(devices.major("nvidia"), Some(195));
    assert_eq!(devices.major("nvidia-caps"), None);
}

// ---- whole trees under a temporary root ----

const DEVICES: &str = "Character devices:\n195 nvidia\n195 nvidiactl\n238 nvidia-uvm\n\
                       241 nvidia-caps\n\nBlock devices:\n  7 loop\n";
const VERSION: &str = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  \
                       Release Build  (nixbld@)  \nGCC version:  gcc version 15.3.0 (GCC) \n";
const GPU_INFO: &str =
    "Model: \t\t NVIDIA H200\nGPU UUID: \t GPU-866b5d23-5f64-aec2-09af-f17711608a22\n\
                        Bus Location: \t 0000:00:06.0\nDevice Minor: \t 0\nGPU Excluded:\t No\n";

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A root with the three required files, no params and no GPUs.
fn minimal_root() -> TempDir {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "proc/devices", DEVICES);
    write(dir.path(), "proc/driver/nvidia/version", VERSION);
    write(
        dir.path(),
        "proc/driver/nvidia-caps/mig-minors",
        &mig_minors_head(20),
    );
    dir
}

fn load_error(root: &Path) -> String {
    DriverTables::load(root).unwrap_err().to_string()
}

#[test]
fn load_minimal_root_uses_driver_defaults() {
    let dir = minimal_root();
    let tables = DriverTables::load(dir.path()).unwrap();
    assert_eq!(tables.version, "580.159.04");
    assert_eq!(tables.device_file_mode, 0o666);
    assert_eq!(tables.params, None);
    assert!(tables.gpus.is_empty());
    assert_eq!(tables.mig_minors.gi(0, 1), Some(12));
}

#[test]
fn load_without_proc_devices() {
    let dir = TempDir::new().unwrap();
    assert_eq!(
        load_error(dir.path()),
        format!(
            "{}/proc/devices: no such file; is /proc mounted, and does --root point at the \
             host's root filesystem?",
            dir.path().display()
        )
    );
}

#[test]
fn load_without_version_says_the_module_is_not_loaded() {
    let dir = minimal_root();
    fs::remove_file(dir.path().join("proc/driver/nvidia/version")).unwrap();
    assert_eq!(
        load_error(dir.path()),
        format!(
            "{}/proc/driver/nvidia/version: no such file; the NVIDIA kernel module does not \
             seem loaded (load it with `modprobe nvidia` or run `nvidia-smi`), or --root does \
             not point at the host's root",
            dir.path().display()
        )
    );
}

#[test]
fn load_without_mig_minors_says_driver_too_old() {
    let dir = minimal_root();
    fs::remove_file(dir.path().join("proc/driver/nvidia-caps/mig-minors")).unwrap();
    assert_eq!(
        load_error(dir.path()),
        format!(
            "{}/proc/driver/nvidia-caps/mig-minors: no such file; the driver is too old for \
             MIG (mig-cdi supports 450.51+) or the nvidia module is not loaded; check \
             `nvidia-smi` and --root",
            dir.path().display()
        )
    );
}

#[test]
fn load_reports_the_line_of_a_bad_table() {
    let dir = minimal_root();
    write(
        dir.path(),
        "proc/driver/nvidia-caps/mig-minors",
        "config 1\nmonitor two\n",
    );
    assert_eq!(
        load_error(dir.path()),
        format!(
            "{}/proc/driver/nvidia-caps/mig-minors:2: expected a decimal minor number after \
             \"monitor\", found \"two\"; {UNEXPECTED}",
            dir.path().display()
        )
    );
}

#[test]
fn load_reads_params_when_present() {
    let dir = minimal_root();
    write(
        dir.path(),
        "proc/driver/nvidia/params",
        "ModifyDeviceFiles: 1\nDeviceFileUID: 0\nDeviceFileGID: 27\nDeviceFileMode: 432\n",
    );
    let tables = DriverTables::load(dir.path()).unwrap();
    assert_eq!(tables.device_file_mode, 0o660);
    assert_eq!(tables.params.map(|p| p.device_file_gid), Some(27));
}

#[test]
fn load_sorts_gpus_by_bus_location() {
    let dir = minimal_root();
    let second = GPU_INFO
        .replace("0000:00:06.0", "0000:00:07.0")
        .replace("Device Minor: \t 0", "Device Minor: \t 1");
    write(
        dir.path(),
        "proc/driver/nvidia/gpus/0000:00:07.0/information",
        &second,
    );
    write(
        dir.path(),
        "proc/driver/nvidia/gpus/0000:00:06.0/information",
        GPU_INFO,
    );
    let tables = DriverTables::load(dir.path()).unwrap();
    let found: Vec<_> = tables
        .gpus
        .iter()
        .map(|g| (g.bus_location.as_str(), g.device_minor))
        .collect();
    assert_eq!(found, [("0000:00:06.0", 0), ("0000:00:07.0", 1)]);
}

#[test]
fn load_gpu_folder_without_information() {
    let dir = minimal_root();
    fs::create_dir_all(dir.path().join("proc/driver/nvidia/gpus/0000:00:06.0")).unwrap();
    assert_eq!(
        load_error(dir.path()),
        format!(
            "{}/proc/driver/nvidia/gpus/0000:00:06.0/information: no such file; {UNEXPECTED}",
            dir.path().display()
        )
    );
}

#[test]
fn load_two_gpus_with_one_minor() {
    let dir = minimal_root();
    let second = GPU_INFO.replace("0000:00:06.0", "0000:00:07.0");
    write(
        dir.path(),
        "proc/driver/nvidia/gpus/0000:00:06.0/information",
        GPU_INFO,
    );
    write(
        dir.path(),
        "proc/driver/nvidia/gpus/0000:00:07.0/information",
        &second,
    );
    assert_eq!(
        load_error(dir.path()),
        format!(
            "{}/proc/driver/nvidia/gpus: GPUs 0000:00:06.0 and 0000:00:07.0 both have Device \
             Minor 0; the kernel module's GPU list is inconsistent — reload the nvidia module \
             or report a driver bug",
            dir.path().display()
        )
    );
}

#[test]
fn load_nvidia_name_under_two_majors() {
    let dir = minimal_root();
    write(
        dir.path(),
        "proc/devices",
        "Character devices:\n195 nvidia\n241 nvidia-caps\n250 nvidia-caps\n",
    );
    assert_eq!(
        load_error(dir.path()),
        format!(
            "{}/proc/devices: \"nvidia-caps\" is listed under several majors (241, 250); two \
             NVIDIA kernel modules seem loaded at once — reload the driver (or reboot) so that \
             each NVIDIA device has one major",
            dir.path().display()
        )
    );
}

#[test]
fn capability_file_without_minor_under_a_root() {
    let dir = minimal_root();
    write(
        dir.path(),
        "proc/driver/nvidia/capabilities/gpu0/mig/gi1/access",
        "DeviceFileMode: 292\n",
    );
    let tables = DriverTables::load(dir.path()).unwrap();
    let err = tables.capability("gpu0/mig/gi1/access").unwrap_err();
    assert!(matches!(err, DriverError::Missing { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "{}/proc/driver/nvidia/capabilities/gpu0/mig/gi1/access: no \"DeviceFileMinor\" \
             line; {UNEXPECTED}",
            dir.path().display()
        )
    );
}

#[test]
fn control_bytes_and_long_lines_never_reach_the_message() {
    let text = format!(
        "DeviceFileMinor: 1\x1b[2J\x07\nDeviceFileMode: {}\n",
        "9".repeat(5000)
    );
    let err = parse_capability(text.as_bytes(), Path::new("/c"))
        .unwrap_err()
        .to_string();
    assert!(!err.chars().any(|c| c.is_control()), "{err:?}");
    assert!(err.contains("\\u{1b}[2J"), "{err}");
    let text = format!("Character devices:\n195 {}\n", "x".repeat(5000));
    let err = parse_proc_devices(format!("{text}oops\n").as_bytes(), Path::new("/d"))
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string());
    assert!(err.len() < 600, "{} bytes", err.len());
}
