//! The driver table parsers on the real H200 snapshot, read as is from
//! `shared/fixtures/driver/h200-580.159.04` (driver 580.159.04, MIG
//! disabled). Every value asserted here was read off those files.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use mig_cdi_core::driver::{
    parse_mig_minors, parse_proc_devices, Capability, DriverError, DriverParams, DriverTables,
};
use mig_cdi_testkit::paths::H200_SNAPSHOT as SNAPSHOT;

fn root() -> &'static Path {
    Path::new(SNAPSHOT)
}

fn tables() -> DriverTables {
    DriverTables::load(root()).expect("the real snapshot loads")
}

fn open(rel: &str) -> (BufReader<File>, PathBuf) {
    let path = root().join(rel);
    let file = File::open(&path).expect("snapshot file exists");
    (BufReader::new(file), path)
}

#[test]
fn char_majors_of_the_nvidia_devices() {
    let devices = tables().char_devices;
    assert_eq!(devices.major("nvidia"), Some(195));
    assert_eq!(devices.major("nvidiactl"), Some(195));
    assert_eq!(devices.major("nvidia-uvm"), Some(238));
    assert_eq!(devices.major("nvidia-caps"), Some(241));
    assert_eq!(devices.major("nvidia-caps-imex-channels"), Some(242));
    assert_eq!(devices.major("/dev/vc/0"), Some(4));
    // 253 and 254 are both char and block majors on this machine; only the
    // char names count.
    assert_eq!(devices.major("dimmctl"), Some(253));
    assert_eq!(devices.major("ndctl"), Some(254));
}

#[test]
fn block_only_names_do_not_leak_into_char_majors() {
    let devices = tables().char_devices;
    for name in ["loop", "zram", "virtblk", "blkext"] {
        assert_eq!(devices.major(name), None, "{name} is a block device");
    }
    assert_eq!(devices.majors.len(), 32);
}

#[test]
fn infiniband_names_appear_under_two_majors() {
    let (reader, path) = open("proc/devices");
    let devices = parse_proc_devices(reader, &path).unwrap();
    assert_eq!(devices.major("infiniband_verbs"), Some(231));
    assert_eq!(devices.repeated["infiniband_verbs"], vec![231, 244]);
    assert_eq!(devices.repeated["infiniband_mad"], vec![231, 245]);
    assert_eq!(devices.repeated.len(), 2);
}

#[test]
fn mig_minors_hold_the_whole_static_table() {
    let minors = tables().mig_minors;
    assert_eq!(minors.config, Some(1));
    assert_eq!(minors.monitor, Some(2));
    assert_eq!(minors.gi(0, 0), Some(3));
    assert_eq!(minors.ci(0, 0, 0), Some(4));
    assert_eq!(minors.ci(31, 14, 7), Some(4322));
    assert_eq!(minors.gi_access.len(), 32 * 15);
    assert_eq!(minors.ci_access.len(), 32 * 15 * 8);
    assert_eq!(minors.gi(32, 0), None);
    assert_eq!(minors.ci(0, 15, 0), None);
}

#[test]
fn mig_minors_follow_the_drivers_layout() {
    // Per GPU instance: its access minor, then its eight CI minors.
    let (reader, path) = open("proc/driver/nvidia-caps/mig-minors");
    let minors = parse_mig_minors(reader, &path).unwrap();
    for gpu in 0..32 {
        for gi in 0..15 {
            let base = 3 + (gpu * 15 + gi) * 9;
            assert_eq!(minors.gi(gpu, gi), Some(base), "gpu{gpu}/gi{gi}");
            for ci in 0..8 {
                assert_eq!(minors.ci(gpu, gi, ci), Some(base + 1 + ci));
            }
        }
    }
}

#[test]
fn driver_version() {
    let tables = tables();
    assert_eq!(tables.version, "580.159.04");
    assert_eq!(tables.driver_version.version, "580.159.04");
    assert_eq!(
        (tables.driver_version.major, tables.driver_version.minor),
        (580, 159)
    );
    assert!(tables.driver_version.is_supported());
    assert!(tables
        .driver_version
        .nvrm
        .starts_with("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04"));
}

#[test]
fn gpu_information() {
    let tables = tables();
    assert_eq!(tables.gpus.len(), 1);
    let gpu = &tables.gpus[0];
    assert_eq!(gpu.model, "NVIDIA H200");
    assert_eq!(gpu.device_minor, 0);
    assert_eq!(gpu.bus_location, "0000:00:06.0");
    assert_eq!(
        gpu.uuid.as_deref(),
        Some("GPU-866b5d23-5f64-aec2-09af-f17711608a22")
    );
    assert!(!gpu.excluded);
    assert_eq!(tables.gpu_by_minor(0), Some(gpu));
    assert_eq!(tables.gpu_by_minor(1), None);
}

#[test]
fn params_give_mode_owner_and_group() {
    let tables = tables();
    assert_eq!(tables.device_file_mode, 0o666);
    assert_eq!(
        tables.params,
        Some(DriverParams {
            device_file_mode: 0o666,
            device_file_uid: 0,
            device_file_gid: 0,
            modify_device_files: true,
        })
    );
}

#[test]
fn management_capabilities() {
    let tables = tables();
    assert_eq!(
        tables.capability("mig/config").unwrap(),
        Capability {
            minor: 1,
            mode: 0o400,
            modify: true
        }
    );
    assert_eq!(
        tables.capability("mig/monitor").unwrap(),
        Capability {
            minor: 2,
            mode: 0o444,
            modify: true
        }
    );
    // Not a MIG capability, but the same file format; its minor follows the
    // last mig-minors entry.
    assert_eq!(tables.capability("fabric-imex-mgmt").unwrap().minor, 4323);
}

#[test]
fn gi_capability_is_absent_while_mig_is_disabled() {
    let err = tables().capability("gpu0/mig/gi0/access").unwrap_err();
    assert!(matches!(err, DriverError::Missing { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "{SNAPSHOT}/proc/driver/nvidia/capabilities/gpu0/mig/gi0/access: no such file; \
             the driver has no such capability"
        )),
        "{message}"
    );
}

#[test]
fn capability_names_cannot_leave_the_capabilities_folder() {
    let tables = tables();
    for rel in [
        "../version",
        "mig/../../params",
        "/etc/passwd",
        "",
        "./mig/config",
    ] {
        let err = tables.capability(rel).unwrap_err();
        assert!(
            matches!(&err, DriverError::BadCapabilityName { rel: r } if r == rel),
            "{rel}: {err:?}"
        );
        assert!(err
            .to_string()
            .starts_with(&format!("invalid capability name {rel:?}")));
    }
}

#[test]
fn mig_minors_for_some_gpus_keeps_exactly_their_entries() {
    use mig_cdi_core::driver::MigMinors;
    let path = root().join("proc/driver/nvidia-caps/mig-minors");
    let bytes = std::fs::read(&path).unwrap();
    let all: MigMinors = mig_cdi_core::driver::parse_mig_minors(&bytes[..], &path).unwrap();
    let some =
        mig_cdi_core::driver::parse_mig_minors_for(&bytes[..], &path, Some(&[0, 5])).unwrap();
    assert_eq!((some.config, some.monitor), (all.config, all.monitor));
    let keep = |gpu: u32| gpu == 0 || gpu == 5;
    let gi: Vec<_> = all
        .gi_access
        .iter()
        .filter(|((g, _), _)| keep(*g))
        .collect();
    assert_eq!(some.gi_access.iter().collect::<Vec<_>>(), gi);
    let ci: Vec<_> = all
        .ci_access
        .iter()
        .filter(|((g, _, _), _)| keep(*g))
        .collect();
    assert_eq!(some.ci_access.iter().collect::<Vec<_>>(), ci);
    assert!(!some.ci_access.is_empty());
}
