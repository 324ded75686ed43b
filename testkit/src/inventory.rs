//! Hand-built inventories for the CDI tests: the shapes `nodes::plan`
//! produces, without a driver root, so that rendering and its properties
//! can be tested on any device layout, not only the ones a fixture has.

use mig_cdi_core::nodes::{DeviceKind, DeviceNode, Inventory, InventoryDevice, NodeRole};

pub const NVIDIA: u32 = 195;
pub const UVM: u32 = 238;
pub const CAPS: u32 = 241;

pub fn node(path: &str, major: u32, minor: u32, mode: u32, role: NodeRole) -> DeviceNode {
    DeviceNode::new(path.into(), major, minor, mode, role)
}

pub fn control_nodes() -> Vec<DeviceNode> {
    vec![
        node("/dev/nvidia-uvm", UVM, 0, 0o666, NodeRole::Control),
        node("/dev/nvidia-uvm-tools", UVM, 1, 0o666, NodeRole::Control),
        node("/dev/nvidiactl", NVIDIA, 255, 0o666, NodeRole::Control),
    ]
}

pub fn gpu(index: u32, minor: u32, uuid: &str) -> InventoryDevice {
    InventoryDevice {
        kind: DeviceKind::Gpu,
        gpu_index: index,
        gpu_minor: minor,
        uuid: uuid.into(),
        gpu_uuid: uuid.into(),
        nodes: vec![node(
            &format!("/dev/nvidia{minor}"),
            NVIDIA,
            minor,
            0o666,
            NodeRole::Gpu,
        )],
    }
}

/// MIG device `mig_index` of GPU `index` (minor `minor`), with GI/CI cap
/// minors as the driver's mig-minors table numbers them.
pub fn mig(
    index: u32,
    minor: u32,
    mig_index: u32,
    gi: u32,
    ci: u32,
    uuid: &str,
) -> InventoryDevice {
    let gi_minor = 3 + minor * 135 + gi * 9;
    let ci_minor = gi_minor + 1 + ci;
    InventoryDevice {
        kind: DeviceKind::Mig {
            mig_index,
            gi,
            ci,
            profile: "1g.18gb".into(),
        },
        gpu_index: index,
        gpu_minor: minor,
        uuid: uuid.into(),
        gpu_uuid: format!("GPU-0000000{index}-0000-0000-0000-000000000000"),
        nodes: vec![
            node(
                &format!("/dev/nvidia{minor}"),
                NVIDIA,
                minor,
                0o666,
                NodeRole::Gpu,
            ),
            node(
                &format!("/dev/nvidia-caps/nvidia-cap{gi_minor}"),
                CAPS,
                gi_minor,
                0o444,
                NodeRole::GiAccess,
            ),
            node(
                &format!("/dev/nvidia-caps/nvidia-cap{ci_minor}"),
                CAPS,
                ci_minor,
                0o444,
                NodeRole::CiAccess,
            ),
        ],
    }
}

/// GPU 0 (minor 1) in MIG mode with two MIG devices, GPU 1 (minor 0) whole.
pub fn two_gpus() -> Inventory {
    Inventory {
        control_nodes: control_nodes(),
        devices: vec![
            mig(0, 1, 0, 1, 0, "MIG-aaaaaaaa-0000-0000-0000-000000000001"),
            mig(0, 1, 1, 2, 0, "MIG-aaaaaaaa-0000-0000-0000-000000000002"),
            gpu(1, 0, "GPU-bbbbbbbb-0000-0000-0000-000000000000"),
        ],
        mig_management: Vec::new(),
    }
}
