//! The node model on the real H200 driver tables: which nodes each device
//! needs, keyed by the GPU minor number, and what goes wrong when the
//! driver and NVML disagree.

use std::fs;
use std::path::Path;

use mig_cdi_core::driver::DriverTables;
use mig_cdi_core::nodes::{self, DeviceKind, DeviceNode, HostProblem, NodeRole};
use mig_cdi_core::snapshot::{Gpu, MigDevice, MigMode, Snapshot};
use mig_cdi_testkit::e2e::{is_root, mknod};
use mig_cdi_testkit::paths::h200_snapshot;

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A writable copy of the snapshot's proc/ tree.
fn writable_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&h200_snapshot().join("proc"), &dir.path().join("proc"));
    dir
}

fn add_capability(root: &Path, rel: &str, minor: u32, mode: u32) {
    let path = root.join("proc/driver/nvidia/capabilities").join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(
        path,
        format!("DeviceFileMinor: {minor}\nDeviceFileMode: {mode}\nDeviceFileModify: 1\n"),
    )
    .unwrap();
}

fn h200(index: u32, minor: u32, mig: bool, devices: Vec<MigDevice>) -> Gpu {
    Gpu {
        index,
        minor,
        uuid: "GPU-866b5d23-5f64-aec2-09af-f17711608a22".into(),
        name: "NVIDIA H200".into(),
        pci_bus_id: "00000000:00:06.0".into(),
        mig: Some(MigMode {
            current: mig,
            pending: mig,
        }),
        mig_devices: devices,
        profiles: vec![],
        details: None,
    }
}

fn mig(index: u32, gi: u32, ci: u32) -> MigDevice {
    MigDevice {
        index,
        uuid: format!("MIG-00000000-0000-0000-0000-00000000000{index}"),
        gi,
        ci,
        profile: "1g.18gb".into(),
        memory_mib: 16384,
        sm_count: 16,
        gi_slices: 1,
        ci_slices: 1,
    }
}

fn snapshot(gpus: Vec<Gpu>) -> Snapshot {
    Snapshot {
        driver_version: "580.159.04".into(),
        cuda_version: Some("13.0".into()),
        gpus,
    }
}

fn node(path: &str, major: u32, minor: u32, mode: u32, role: NodeRole) -> DeviceNode {
    DeviceNode::new(path.into(), major, minor, mode, role)
}

#[test]
fn real_h200_with_mig_disabled_needs_its_gpu_node_and_the_control_nodes() {
    let tables = DriverTables::load(&h200_snapshot()).unwrap();
    let inventory = nodes::plan(&snapshot(vec![h200(0, 0, false, vec![])]), &tables).unwrap();
    assert_eq!(inventory.devices.len(), 1);
    let gpu = &inventory.devices[0];
    assert_eq!(gpu.kind, DeviceKind::Gpu);
    assert_eq!(gpu.index_name(), "0");
    assert_eq!(
        gpu.nodes,
        vec![node("/dev/nvidia0", 195, 0, 0o666, NodeRole::Gpu)]
    );
    let control: Vec<_> = inventory
        .control_nodes
        .iter()
        .map(|n| (n.path.as_str(), n.major, n.minor))
        .collect();
    assert_eq!(
        control,
        vec![
            ("/dev/nvidia-modeset", 195, 254),
            ("/dev/nvidia-uvm", 238, 0),
            ("/dev/nvidia-uvm-tools", 238, 1),
            ("/dev/nvidiactl", 195, 255),
        ]
    );
    assert!(
        inventory.mig_management.is_empty(),
        "no MIG GPU, no management nodes"
    );
}

#[test]
fn capability_nodes_are_keyed_by_the_gpu_minor_not_the_nvml_index() {
    let root = writable_root();
    // NVML index 0 is the GPU with minor 1: its caps are gpu1/... in mig-minors.
    add_capability(root.path(), "gpu1/mig/gi1/access", 147, 0o444);
    add_capability(root.path(), "gpu1/mig/gi1/ci0/access", 148, 0o444);
    let info = root
        .path()
        .join("proc/driver/nvidia/gpus/0000:00:06.0/information");
    let text = fs::read_to_string(&info)
        .unwrap()
        .replace("Device Minor: \t 0", "Device Minor: \t 1");
    fs::write(&info, text).unwrap();
    let tables = DriverTables::load(root.path()).unwrap();
    let inventory = nodes::plan(
        &snapshot(vec![h200(0, 1, true, vec![mig(0, 1, 0)])]),
        &tables,
    )
    .unwrap();
    assert_eq!(
        inventory.devices.len(),
        1,
        "a MIG GPU has no device of its own"
    );
    let device = &inventory.devices[0];
    assert_eq!(device.index_name(), "0:0");
    assert_eq!(
        device.nodes,
        vec![
            node("/dev/nvidia1", 195, 1, 0o666, NodeRole::Gpu),
            node(
                "/dev/nvidia-caps/nvidia-cap147",
                241,
                147,
                0o444,
                NodeRole::GiAccess
            ),
            node(
                "/dev/nvidia-caps/nvidia-cap148",
                241,
                148,
                0o444,
                NodeRole::CiAccess
            ),
        ]
    );
    assert_eq!(
        inventory.mig_management,
        vec![(
            1,
            vec![
                node(
                    "/dev/nvidia-caps/nvidia-cap1",
                    241,
                    1,
                    0o400,
                    NodeRole::MigConfig
                ),
                node(
                    "/dev/nvidia-caps/nvidia-cap2",
                    241,
                    2,
                    0o444,
                    NodeRole::MigMonitor
                ),
            ]
        )]
    );
}

#[test]
fn a_mig_device_without_its_capability_file_is_an_error_naming_the_file() {
    // The real snapshot has MIG disabled: no gpu0/mig/gi*/ files exist.
    let tables = DriverTables::load(&h200_snapshot()).unwrap();
    let err = nodes::plan(
        &snapshot(vec![h200(0, 0, true, vec![mig(0, 7, 0)])]),
        &tables,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("proc/driver/nvidia/capabilities/gpu0/mig/gi7/access"),
        "{err}"
    );
}

#[test]
fn a_capability_file_that_disagrees_with_mig_minors_is_refused() {
    let root = writable_root();
    add_capability(root.path(), "gpu0/mig/gi7/access", 66, 0o444);
    add_capability(root.path(), "gpu0/mig/gi7/ci0/access", 99, 0o444);
    let tables = DriverTables::load(root.path()).unwrap();
    let err = nodes::plan(
        &snapshot(vec![h200(0, 0, true, vec![mig(0, 7, 0)])]),
        &tables,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("gi7/ci0/access gives minor 99"), "{err}");
    assert!(
        err.contains("mig-minors says gpu0/gi7/ci0/access is minor 67"),
        "{err}"
    );
}

#[test]
fn the_proc_only_capability_model_is_an_error_that_says_what_to_change() {
    let root = writable_root();
    let devices = root.path().join("proc/devices");
    let text = fs::read_to_string(&devices)
        .unwrap()
        .replace("241 nvidia-caps\n", "");
    fs::write(&devices, text).unwrap();
    let tables = DriverTables::load(root.path()).unwrap();
    let err = nodes::plan(
        &snapshot(vec![h200(0, 0, true, vec![mig(0, 7, 0)])]),
        &tables,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no \"nvidia-caps\" character device"), "{err}");
    assert!(err.contains("nv_cap_enable_devfs=1"), "{err}");
    // With MIG off everywhere the caps major is not needed.
    nodes::plan(&snapshot(vec![h200(0, 0, false, vec![])]), &tables).unwrap();
}

#[test]
fn nvml_and_the_kernel_module_disagreeing_on_a_minor_is_refused() {
    let tables = DriverTables::load(&h200_snapshot()).unwrap();
    let err = nodes::plan(&snapshot(vec![h200(0, 3, false, vec![])]), &tables)
        .unwrap_err()
        .to_string();
    assert!(err.contains("has minor number 3"), "{err}");
    assert!(err.contains("says 0"), "{err}");
}

#[test]
fn bus_ids_compare_across_nvml_and_proc_forms() {
    assert_eq!(nodes::canonical_bus_id("00000000:00:06.0"), "0000:00:06.0");
    assert_eq!(nodes::canonical_bus_id("0000:00:06.0"), "0000:00:06.0");
    assert_eq!(nodes::canonical_bus_id("00000001:3B:00.0"), "0001:3b:00.0");
}

#[test]
fn dev_t_encoding_round_trips_large_numbers() {
    for (major, minor) in [(195, 255), (241, 4322), (4095, 1_048_575), (511, 300)] {
        let dev = nodes::make_dev(major, minor);
        assert_eq!(
            (nodes::dev_major(dev), nodes::dev_minor(dev)),
            (major, minor)
        );
    }
}

#[test]
fn host_check_finds_missing_wrong_and_fake_nodes() {
    if !is_root() {
        eprintln!("skipped: mknod needs root");
        return;
    }
    let root = writable_root();
    let dev = root.path().join("dev");
    mknod(&dev.join("nvidiactl"), 195, 255);
    mknod(&dev.join("nvidia-uvm"), 238, 0);
    mknod(&dev.join("nvidia-uvm-tools"), 238, 7); // wrong minor
    fs::write(dev.join("nvidia0"), "").unwrap(); // not a device
    let tables = DriverTables::load(root.path()).unwrap();
    let mut inventory = nodes::plan(&snapshot(vec![h200(0, 0, false, vec![])]), &tables).unwrap();
    let issues = nodes::check_host(&mut inventory, root.path(), Path::new("/"));
    let found: Vec<_> = issues
        .iter()
        .map(|i| (i.node.path.as_str(), i.problem.clone()))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "/dev/nvidia-uvm-tools",
                HostProblem::WrongNumber {
                    major: 238,
                    minor: 7
                }
            ),
            ("/dev/nvidia0", HostProblem::NotCharDevice),
        ]
    );
    assert!(
        !inventory
            .control_nodes
            .iter()
            .any(|n| n.path == "/dev/nvidia-modeset"),
        "an absent nvidia-modeset is optional and dropped"
    );
    assert_eq!(
        issues[0].to_string(),
        format!(
            "{}: is char 238:7, expected char 238:1",
            dev.join("nvidia-uvm-tools").display()
        )
    );
}
