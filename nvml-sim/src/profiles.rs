//! GPU models and their MIG GPU-instance profile tables.
//!
//! The simulator is only as good as these numbers: every test of the
//! generator believes them. So each table says where it comes from.
//!
//! * **H200** (`NVIDIA H200`, 141 GB): copied from the real machine in
//!   `shared/fixtures/driver/h200-580.159.04` — `nvml-profiles.txt`
//!   (NVML `nvmlDeviceGetGpuInstanceProfileInfo` for indexes 0..16),
//!   `nvidia-smi-mig-lgip.txt` (names) and `nvidia-smi-mig-lgipp.txt`
//!   (placements). Driver 580.159.04. A test re-parses those files and
//!   compares.
//! * **A100-SXM4-80GB**: a published `nvidia-smi mig -lgip` of an
//!   A100-SXM4-80GB on driver 550.54.14 (memory in GiB with two decimals,
//!   SM, CE, DEC, ENC, JPEG, OFA). It agrees with the numbers this project
//!   was briefed with except the full `7g.80gb` profile: that listing says
//!   78.75 GiB (80640 MiB), not 79.25 GiB (81152 MiB). Other published
//!   listings of the same board print 78.50, 79.00 or 79.12 GiB: the
//!   driver reserves a version-dependent amount. We keep 80640 MiB, the
//!   value of the one listing that also shows its driver version.
//! * **H100 80GB HBM3**: published `nvidia-smi mig -lgip` listings of an
//!   H100 80GB HBM3 (two independent ones agree): 1g.10gb 9.75 GiB/16 SM,
//!   1g.20gb 19.62 GiB/26 SM, 2g.20gb 32 SM, 3g.40gb 39.50 GiB/60 SM,
//!   4g.40gb 64 SM, 7g.80gb 79.25 GiB/132 SM, CE/DEC/JPEG/OFA as below.
//!   These match the brief exactly.
//!
//! Placements (start slot and size on the 8-slot memory axis) are the same
//! for the 8-slot boards: `nvidia-smi mig -lgipp` of the H200 snapshot, of
//! an H100 NVL and the A100 listing in NVIDIA's MIG user guide print the
//! same sets.
//!
//! The boards added for `doctor` and NVIDIA's toolkit getters take their
//! profile names, instance counts, memory and SM fractions and engines
//! from NVIDIA's MIG user guide, "Supported MIG Profiles"
//! (<https://docs.nvidia.com/datacenter/tesla/mig-user-guide/supported-mig-profiles.html>),
//! and the exact MiB, SMs and engine counts NVML reports from published
//! `nvidia-smi mig -lgip` listings; `tests/profiles.rs` holds each listing
//! and compares every row. Where the two disagree (the A30's 1g.6gb has a
//! decoder in the listing, none in the guide; the B200's 2g.45gb has 2
//! decoders and 4 copy engines in NVIDIA's listing, 1 and 3 in the guide)
//! the listing wins: it is what NVML answered.
//!
//! * **A30-24GB**: the guide's table; MiB, SMs and engines from a
//!   published listing with all five profiles (R525 or later: it has
//!   2g.12gb+me), placements from an older A30 listing's `-lgipp` ({0,1,2,3}
//!   for 1g, {0,2} for 2g, {0} for 4g; 2g.12gb+me is assumed to share
//!   2g.12gb's). 4 memory and 4 compute slices; GI ids follow the 4-slot
//!   tree (that listing's four 1g.6gb are GIs 3..6).
//! * **A100-SXM4-40GB**: the `-lgip`/`-lgipp` listing of NVIDIA's MIG user
//!   guide ("Getting Started", A100-SXM4-40GB).
//! * **H100 NVL** (94 GB): a published listing of an H100 NVL on driver
//!   560.35.03 (Azure NC40ads H100 v5), with its `-lgipp`.
//! * **GH200** (its H100 with 96 GB): a published listing of a GH200;
//!   placements as every 8-slot board's.
//! * **B200**: NVIDIA's own listing in mig-parted PR 166 / gpu-operator PR
//!   1242 gives 1g.23gb, 1g.23gb+me, 1g.45gb and 2g.45gb; the rest of that
//!   listing was not available here. For 3g.90gb, 4g.90gb and 7g.180gb the
//!   guide gives instances, fractions, copy engines (6, 8, 16) and NVDEC/
//!   JPEG/OFA; their MiB and SMs are **derived, not published**: twice and
//!   four times 1g.45gb's MiB, 3 and 4 times 1g's 18 SMs, 148 SMs for 7g
//!   (the B200's SM count). Profile ids 9, 5, 0 as every 8-slot board's.
//! * **RTX PRO 6000 Blackwell Server Edition** (96 GB): a published listing
//!   gives the five 1-slice profiles (1g.24gb, +me, +gfx, +me.all, -me:
//!   23.12 GiB, 46 SMs, ids 14, 21, 47, 65, 67); the 2g.48gb and 4g.96gb
//!   rows were not available here: engines and instances from the guide,
//!   MiB and SMs **derived** (2 and 4 times 1g.24gb's), ids 5 and 0 as the
//!   other 4-slot board's (A30). The `+gfx`, `+me.all` and `-me` variants
//!   of 2g and 4g are left out. 4 memory and 4 compute slices.
//! * **L40S**: no MIG (below).
//!
//! Board totals, PCI subsystem ids and vBIOS strings of the added boards
//! are illustrative (except the H100 NVL's total, from its listing, and the
//! PCI device ids, named in NVIDIA's and others' published files).
//!
//! Profile indexes are NVML's `NVML_GPU_INSTANCE_PROFILE_*` constants
//! (0 = 1 slice, 1 = 2, 2 = 3, 3 = 4, 4 = 7, 5 = 8, 6 = 6, 7 = 1 slice
//! rev1 (`+me`), 8 = 2 slice rev1, 9 = 1 slice rev2 (double memory), ...).
//! An index a board lacks answers `NVML_ERROR_NOT_SUPPORTED`, like the
//! real H200 does for 5, 6, 8 and 10..16.

use std::fmt;

/// One GPU-instance profile of one board, as NVML reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GiProfile {
    /// NVML profile index (`NVML_GPU_INSTANCE_PROFILE_*`).
    pub index: u32,
    /// Profile id (`nvidia-smi mig -lgip` "ID", e.g. 19 for `1g.*`).
    pub id: u32,
    /// Short name without the `MIG ` prefix, e.g. `1g.18gb+me`.
    pub name: &'static str,
    /// Compute slices (`sliceCount`).
    pub slices: u32,
    /// Memory slots out of 8 (the placement size).
    pub memory_slots: u32,
    /// How many instances of this profile fit on an empty GPU.
    pub instances: u32,
    /// Memory of one instance, MiB.
    pub memory_mib: u64,
    /// Streaming multiprocessors.
    pub sms: u32,
    /// Copy engines.
    pub ce: u32,
    /// Video decoders.
    pub dec: u32,
    /// Video encoders.
    pub enc: u32,
    /// JPEG engines.
    pub jpeg: u32,
    /// Optical-flow accelerators.
    pub ofa: u32,
    /// Peer-to-peer support.
    pub p2p: bool,
    /// Allowed placement starts, in memory slots.
    pub placements: &'static [u32],
}

impl GiProfile {
    /// The name NVML puts in the profile info `name` field: `MIG 1g.18gb`.
    pub fn nvml_name(&self) -> String {
        format!("MIG {}", self.name)
    }

    /// Memory slots `[start, start + memory_slots)` taken at `start`.
    pub fn span(&self, start: u32) -> std::ops::Range<u32> {
        start..start + self.memory_slots
    }
}

const P1: &[u32] = &[0, 1, 2, 3, 4, 5, 6];
const P2_4: &[u32] = &[0, 2, 4, 6];
const P2_3: &[u32] = &[0, 2, 4];
const P4_2: &[u32] = &[0, 4];
const P0: &[u32] = &[0];

#[allow(clippy::too_many_arguments)]
const fn p(
    index: u32,
    id: u32,
    name: &'static str,
    slices: u32,
    memory_slots: u32,
    instances: u32,
    memory_mib: u64,
    sms: u32,
    engines: [u32; 5],
    placements: &'static [u32],
) -> GiProfile {
    GiProfile {
        index,
        id,
        name,
        slices,
        memory_slots,
        instances,
        memory_mib,
        sms,
        ce: engines[0],
        dec: engines[1],
        enc: engines[2],
        jpeg: engines[3],
        ofa: engines[4],
        p2p: false,
        placements,
    }
}

// engines: [ce, dec, enc, jpeg, ofa]
static A100_SXM4_80GB: &[GiProfile] = &[
    p(0, 19, "1g.10gb", 1, 1, 7, 9728, 14, [1, 0, 0, 0, 0], P1),
    p(1, 14, "2g.20gb", 2, 2, 3, 19968, 28, [2, 1, 0, 0, 0], P2_3),
    p(2, 9, "3g.40gb", 3, 4, 2, 40192, 42, [3, 2, 0, 0, 0], P4_2),
    p(3, 5, "4g.40gb", 4, 4, 1, 40192, 56, [4, 2, 0, 0, 0], P0),
    p(4, 0, "7g.80gb", 7, 8, 1, 80640, 98, [7, 5, 0, 1, 1], P0),
    p(7, 20, "1g.10gb+me", 1, 1, 1, 9728, 14, [1, 1, 0, 1, 1], P1),
    p(9, 15, "1g.20gb", 1, 2, 4, 19968, 14, [1, 1, 0, 0, 0], P2_4),
];

static H100_80GB_HBM3: &[GiProfile] = &[
    p(0, 19, "1g.10gb", 1, 1, 7, 9984, 16, [1, 1, 0, 1, 0], P1),
    p(1, 14, "2g.20gb", 2, 2, 3, 20096, 32, [2, 2, 0, 2, 0], P2_3),
    p(2, 9, "3g.40gb", 3, 4, 2, 40448, 60, [3, 3, 0, 3, 0], P4_2),
    p(3, 5, "4g.40gb", 4, 4, 1, 40448, 64, [4, 4, 0, 4, 0], P0),
    p(4, 0, "7g.80gb", 7, 8, 1, 81152, 132, [8, 7, 0, 7, 1], P0),
    p(7, 20, "1g.10gb+me", 1, 1, 1, 9984, 16, [1, 1, 0, 1, 1], P1),
    p(9, 15, "1g.20gb", 1, 2, 4, 20096, 26, [1, 1, 0, 1, 0], P2_4),
];

static H200: &[GiProfile] = &[
    p(0, 19, "1g.18gb", 1, 1, 7, 16384, 16, [1, 1, 0, 1, 0], P1),
    p(1, 14, "2g.35gb", 2, 2, 3, 33280, 32, [2, 2, 0, 2, 0], P2_3),
    p(2, 9, "3g.71gb", 3, 4, 2, 71424, 60, [3, 3, 0, 3, 0], P4_2),
    p(3, 5, "4g.71gb", 4, 4, 1, 71424, 64, [4, 4, 0, 4, 0], P0),
    p(4, 0, "7g.141gb", 7, 8, 1, 143360, 132, [8, 7, 0, 7, 1], P0),
    p(7, 20, "1g.18gb+me", 1, 1, 1, 16384, 16, [1, 1, 0, 1, 1], P1),
    p(9, 15, "1g.35gb", 1, 2, 4, 33280, 26, [1, 1, 0, 1, 0], P2_4),
];

// The boards added for doctor (sources in the module doc; `tests/profiles.rs`
// pins every row to them).

const P4_1: &[u32] = &[0, 1, 2, 3];
const P4_2G: &[u32] = &[0, 2];

static A30_24GB: &[GiProfile] = &[
    p(0, 14, "1g.6gb", 1, 1, 4, 5952, 14, [1, 1, 0, 0, 0], P4_1),
    p(1, 5, "2g.12gb", 2, 2, 2, 11968, 28, [2, 2, 0, 0, 0], P4_2G),
    p(3, 0, "4g.24gb", 4, 4, 1, 24000, 56, [4, 4, 0, 1, 1], P0),
    p(7, 21, "1g.6gb+me", 1, 1, 1, 5952, 14, [1, 1, 0, 1, 1], P4_1),
    p(
        8,
        6,
        "2g.12gb+me",
        2,
        2,
        1,
        11968,
        28,
        [2, 2, 0, 1, 1],
        P4_2G,
    ),
];

static A100_SXM4_40GB: &[GiProfile] = &[
    p(0, 19, "1g.5gb", 1, 1, 7, 4864, 14, [1, 0, 0, 0, 0], P1),
    p(1, 14, "2g.10gb", 2, 2, 3, 9856, 28, [2, 1, 0, 0, 0], P2_3),
    p(2, 9, "3g.20gb", 3, 4, 2, 19968, 42, [3, 2, 0, 0, 0], P4_2),
    p(3, 5, "4g.20gb", 4, 4, 1, 19968, 56, [4, 2, 0, 0, 0], P0),
    p(4, 0, "7g.40gb", 7, 8, 1, 40192, 98, [7, 5, 0, 1, 1], P0),
    p(7, 20, "1g.5gb+me", 1, 1, 1, 4864, 14, [1, 1, 0, 1, 1], P1),
    p(9, 15, "1g.10gb", 1, 2, 4, 9856, 14, [1, 1, 0, 0, 0], P2_4),
];

static H100_NVL: &[GiProfile] = &[
    p(0, 19, "1g.12gb", 1, 1, 7, 11008, 16, [1, 1, 0, 1, 0], P1),
    p(1, 14, "2g.24gb", 2, 2, 3, 22144, 32, [2, 2, 0, 2, 0], P2_3),
    p(2, 9, "3g.47gb", 3, 4, 2, 47488, 60, [3, 3, 0, 3, 0], P4_2),
    p(3, 5, "4g.47gb", 4, 4, 1, 47488, 64, [4, 4, 0, 4, 0], P0),
    p(4, 0, "7g.94gb", 7, 8, 1, 95360, 132, [8, 7, 0, 7, 1], P0),
    p(7, 20, "1g.12gb+me", 1, 1, 1, 11008, 16, [1, 1, 0, 1, 1], P1),
    p(9, 15, "1g.24gb", 1, 2, 4, 22144, 26, [1, 1, 0, 1, 0], P2_4),
];

static GH200: &[GiProfile] = &[
    p(0, 19, "1g.12gb", 1, 1, 7, 11264, 16, [1, 1, 0, 1, 0], P1),
    p(1, 14, "2g.24gb", 2, 2, 3, 23552, 32, [2, 2, 0, 2, 0], P2_3),
    p(2, 9, "3g.48gb", 3, 4, 2, 47616, 60, [3, 3, 0, 3, 0], P4_2),
    p(3, 5, "4g.48gb", 4, 4, 1, 47616, 64, [4, 4, 0, 4, 0], P0),
    p(4, 0, "7g.96gb", 7, 8, 1, 95232, 132, [8, 7, 0, 7, 1], P0),
    p(7, 20, "1g.12gb+me", 1, 1, 1, 11264, 16, [1, 1, 0, 1, 1], P1),
    p(9, 15, "1g.24gb", 1, 2, 4, 23552, 26, [1, 1, 0, 1, 0], P2_4),
];

static B200: &[GiProfile] = &[
    p(0, 19, "1g.23gb", 1, 1, 7, 22528, 18, [2, 1, 0, 1, 0], P1),
    p(1, 14, "2g.45gb", 2, 2, 3, 45312, 36, [4, 2, 0, 2, 0], P2_3),
    // Derived MiB and SMs (module doc); engines from the guide.
    p(2, 9, "3g.90gb", 3, 4, 2, 90624, 54, [6, 1, 0, 1, 0], P4_2),
    p(3, 5, "4g.90gb", 4, 4, 1, 90624, 72, [8, 1, 0, 1, 0], P0),
    p(4, 0, "7g.180gb", 7, 8, 1, 181248, 148, [16, 1, 0, 1, 1], P0),
    p(7, 20, "1g.23gb+me", 1, 1, 1, 22528, 18, [2, 1, 0, 1, 1], P1),
    p(9, 15, "1g.45gb", 1, 2, 4, 45312, 30, [2, 1, 0, 1, 0], P2_4),
];

static RTX_PRO_6000: &[GiProfile] = &[
    p(0, 14, "1g.24gb", 1, 1, 4, 23680, 46, [1, 1, 1, 1, 0], P4_1),
    // Derived MiB and SMs (module doc); engines from the guide.
    p(1, 5, "2g.48gb", 2, 2, 2, 47360, 92, [2, 2, 2, 2, 0], P4_2G),
    p(3, 0, "4g.96gb", 4, 4, 1, 94720, 184, [4, 4, 4, 4, 1], P0),
    p(
        7,
        21,
        "1g.24gb+me",
        1,
        1,
        1,
        23680,
        46,
        [1, 1, 1, 1, 1],
        P4_1,
    ),
    p(
        10,
        47,
        "1g.24gb+gfx",
        1,
        1,
        4,
        23680,
        46,
        [1, 1, 1, 1, 0],
        P4_1,
    ),
    p(
        13,
        67,
        "1g.24gb-me",
        1,
        1,
        4,
        23680,
        46,
        [1, 0, 0, 0, 0],
        P4_1,
    ),
    p(
        15,
        65,
        "1g.24gb+me.all",
        1,
        1,
        1,
        23680,
        46,
        [1, 4, 4, 4, 1],
        P4_1,
    ),
];

/// NVML's architecture of a board (`nvmlDeviceGetArchitecture`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// `NVML_DEVICE_ARCH_AMPERE` (7).
    Ampere,
    /// `NVML_DEVICE_ARCH_ADA` (8).
    Ada,
    /// `NVML_DEVICE_ARCH_HOPPER` (9).
    Hopper,
    /// `NVML_DEVICE_ARCH_BLACKWELL` (10).
    Blackwell,
}

impl Architecture {
    /// The `nvmlDeviceArchitecture_t` value.
    pub fn nvml_code(self) -> u32 {
        match self {
            Architecture::Ampere => 7,
            Architecture::Ada => 8,
            Architecture::Hopper => 9,
            Architecture::Blackwell => 10,
        }
    }
}

/// Everything the simulator knows about one board.
#[derive(Debug)]
pub struct Board {
    /// Key in machine descriptions (`"A100-SXM4-80GB"`).
    pub key: &'static str,
    /// `nvmlDeviceGetName` and the `Model:` line of /proc.
    pub product_name: &'static str,
    /// `nvmlDeviceGetArchitecture`.
    pub architecture: Architecture,
    /// `nvmlDeviceGetCudaComputeCapability`.
    pub compute_capability: (i32, i32),
    /// `nvmlDeviceGetMemoryInfo` total, MiB.
    pub memory_total_mib: u64,
    /// PCI device id (the high half of `pciDeviceId`).
    pub pci_device: u32,
    /// PCI subsystem id (illustrative; nothing reads it).
    pub pci_subsystem: u32,
    /// Default `Video BIOS:` / `nvmlDeviceGetVbiosVersion`.
    pub vbios: &'static str,
    /// Memory slots of the placement axis (8, or 4 on A30 and RTX PRO 6000).
    pub memory_slots: u32,
    /// Compute slices, also the most MIG devices it holds (7, or 4).
    pub compute_slices: u32,
    /// GPU-instance profiles by NVML profile index; empty without MIG.
    pub profiles: &'static [GiProfile],
}

static A100_SXM4_80GB_BOARD: Board = Board {
    key: "A100-SXM4-80GB",
    product_name: "NVIDIA A100-SXM4-80GB",
    architecture: Architecture::Ampere,
    compute_capability: (8, 0),
    memory_total_mib: 81920,
    pci_device: 0x20b2,
    pci_subsystem: 0x1463,
    vbios: "92.00.36.00.02",
    memory_slots: 8,
    compute_slices: 7,
    profiles: A100_SXM4_80GB,
};

static H100_80GB_HBM3_BOARD: Board = Board {
    key: "H100-80GB-HBM3",
    product_name: "NVIDIA H100 80GB HBM3",
    architecture: Architecture::Hopper,
    compute_capability: (9, 0),
    memory_total_mib: 81559,
    pci_device: 0x2330,
    pci_subsystem: 0x16c1,
    vbios: "96.00.74.00.0b",
    memory_slots: 8,
    compute_slices: 7,
    profiles: H100_80GB_HBM3,
};

static H200_BOARD: Board = Board {
    key: "H200",
    product_name: "NVIDIA H200",
    architecture: Architecture::Hopper,
    compute_capability: (9, 0),
    memory_total_mib: 143771,
    pci_device: 0x2335,
    pci_subsystem: 0x18be,
    vbios: "96.00.a5.00.1a",
    memory_slots: 8,
    compute_slices: 7,
    profiles: H200,
};

static A30_24GB_BOARD: Board = Board {
    key: "A30-24GB",
    product_name: "NVIDIA A30",
    architecture: Architecture::Ampere,
    compute_capability: (8, 0),
    memory_total_mib: 24576,
    pci_device: 0x20b7,
    pci_subsystem: 0x1532,
    vbios: "92.00.66.00.01",
    memory_slots: 4,
    compute_slices: 4,
    profiles: A30_24GB,
};

static A100_SXM4_40GB_BOARD: Board = Board {
    key: "A100-SXM4-40GB",
    product_name: "NVIDIA A100-SXM4-40GB",
    architecture: Architecture::Ampere,
    compute_capability: (8, 0),
    memory_total_mib: 40960,
    pci_device: 0x20b0,
    pci_subsystem: 0x134f,
    vbios: "92.00.19.00.10",
    memory_slots: 8,
    compute_slices: 7,
    profiles: A100_SXM4_40GB,
};

/// Total memory as the listing's `nvidia-smi` prints it (95830 MiB).
static H100_NVL_BOARD: Board = Board {
    key: "H100-NVL",
    product_name: "NVIDIA H100 NVL",
    architecture: Architecture::Hopper,
    compute_capability: (9, 0),
    memory_total_mib: 95830,
    pci_device: 0x2321,
    pci_subsystem: 0x1839,
    vbios: "96.00.99.00.01",
    memory_slots: 8,
    compute_slices: 7,
    profiles: H100_NVL,
};

static GH200_BOARD: Board = Board {
    key: "GH200",
    product_name: "NVIDIA GH200 480GB",
    architecture: Architecture::Hopper,
    compute_capability: (9, 0),
    memory_total_mib: 97871,
    pci_device: 0x2342,
    pci_subsystem: 0x16eb,
    vbios: "96.00.8e.00.01",
    memory_slots: 8,
    compute_slices: 7,
    profiles: GH200,
};

/// PCI device 0x2901 as NVIDIA's B200 pull requests name it.
static B200_BOARD: Board = Board {
    key: "B200",
    product_name: "NVIDIA B200",
    architecture: Architecture::Blackwell,
    compute_capability: (10, 0),
    memory_total_mib: 183359,
    pci_device: 0x2901,
    pci_subsystem: 0x1999,
    vbios: "97.00.4a.00.04",
    memory_slots: 8,
    compute_slices: 7,
    profiles: B200,
};

/// PCI device 0x2bb5 as a published `nvidia_gpu_tools.py` run of the
/// Server Edition shows it; compute capability 12.0 (the guide's
/// Supported GPUs).
static RTX_PRO_6000_BOARD: Board = Board {
    key: "RTX-PRO-6000",
    product_name: "NVIDIA RTX PRO 6000 Blackwell Server Edition",
    architecture: Architecture::Blackwell,
    compute_capability: (12, 0),
    memory_total_mib: 97887,
    pci_device: 0x2bb5,
    pci_subsystem: 0x204e,
    vbios: "98.02.52.00.02",
    memory_slots: 4,
    compute_slices: 4,
    profiles: RTX_PRO_6000,
};

/// NVIDIA L40S (Ada): no MIG at all, the GPU every MIG check must
/// recognise as such (`nvmlDeviceGetMigMode` answers NOT_SUPPORTED).
/// Name, memory (46068 MiB, as `nvidia-smi` prints its total) and PCI id
/// 0x26b9 from public `nvidia-smi` / `lspci` listings of the board; the
/// vBIOS string is illustrative.
static L40S_BOARD: Board = Board {
    key: "L40S",
    product_name: "NVIDIA L40S",
    architecture: Architecture::Ada,
    compute_capability: (8, 9),
    memory_total_mib: 46068,
    pci_device: 0x26b9,
    pci_subsystem: 0x1851,
    vbios: "95.02.4b.00.01",
    memory_slots: 0,
    compute_slices: 0,
    profiles: &[],
};

/// The boards the simulator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// NVIDIA A100-SXM4-80GB (Ampere, compute capability 8.0).
    A100Sxm4_80Gb,
    /// NVIDIA H100 80GB HBM3 (Hopper SXM5, compute capability 9.0).
    H100_80GbHbm3,
    /// NVIDIA H200 (Hopper, 141 GB, compute capability 9.0).
    H200,
    /// NVIDIA A30 (Ampere, 24 GB, 4 slices).
    A30_24Gb,
    /// NVIDIA A100-SXM4-40GB (Ampere).
    A100Sxm4_40Gb,
    /// NVIDIA H100 NVL (Hopper, 94 GB).
    H100Nvl,
    /// NVIDIA GH200 480GB (its H100 with 96 GB).
    Gh200,
    /// NVIDIA B200 (Blackwell, 180 GB).
    B200,
    /// NVIDIA RTX PRO 6000 Blackwell Server Edition (96 GB, 4 slices).
    RtxPro6000,
    /// NVIDIA L40S (Ada, no MIG).
    L40S,
}

impl Model {
    /// Every model, for messages listing the valid keys.
    pub const ALL: [Model; 10] = [
        Model::A100Sxm4_80Gb,
        Model::H100_80GbHbm3,
        Model::H200,
        Model::A30_24Gb,
        Model::A100Sxm4_40Gb,
        Model::H100Nvl,
        Model::Gh200,
        Model::B200,
        Model::RtxPro6000,
        Model::L40S,
    ];

    /// Everything known about the board.
    pub fn board(self) -> &'static Board {
        match self {
            Model::A100Sxm4_80Gb => &A100_SXM4_80GB_BOARD,
            Model::H100_80GbHbm3 => &H100_80GB_HBM3_BOARD,
            Model::H200 => &H200_BOARD,
            Model::A30_24Gb => &A30_24GB_BOARD,
            Model::A100Sxm4_40Gb => &A100_SXM4_40GB_BOARD,
            Model::H100Nvl => &H100_NVL_BOARD,
            Model::Gh200 => &GH200_BOARD,
            Model::B200 => &B200_BOARD,
            Model::RtxPro6000 => &RTX_PRO_6000_BOARD,
            Model::L40S => &L40S_BOARD,
        }
    }

    /// Parses the key used in machine descriptions.
    pub fn from_key(key: &str) -> Option<Model> {
        Model::ALL.into_iter().find(|m| m.key() == key)
    }

    /// Every key, comma-separated, for messages.
    pub fn keys() -> String {
        Model::ALL.map(Model::key).join(", ")
    }

    /// The key used in machine descriptions (`"A100-SXM4-80GB"`).
    pub fn key(self) -> &'static str {
        self.board().key
    }

    /// `nvmlDeviceGetName` and the `Model:` line of the /proc information file.
    pub fn product_name(self) -> &'static str {
        self.board().product_name
    }

    /// `nvmlDeviceGetArchitecture`.
    pub fn architecture(self) -> Architecture {
        self.board().architecture
    }

    /// Whether the board has MIG at all.
    pub fn supports_mig(self) -> bool {
        !self.board().profiles.is_empty()
    }

    /// Memory slots of the placement axis (8, or 4 on 4-slice boards).
    pub fn memory_slots(self) -> u32 {
        self.board().memory_slots
    }

    /// Compute slices: the most MIG devices the board holds.
    pub fn compute_slices(self) -> u32 {
        self.board().compute_slices
    }

    /// The profile table, ordered by profile index.
    pub fn profiles(self) -> &'static [GiProfile] {
        self.board().profiles
    }

    /// Profile by NVML profile index.
    pub fn profile_by_index(self, index: u32) -> Option<&'static GiProfile> {
        self.profiles().iter().find(|p| p.index == index)
    }

    /// Profile by profile id (19, 20, 15, 14, 9, 5, 0 on 8-slot boards).
    pub fn profile_by_id(self, id: u32) -> Option<&'static GiProfile> {
        self.profiles().iter().find(|p| p.id == id)
    }

    /// Profile by name, with or without the `MIG ` prefix.
    pub fn profile_by_name(self, name: &str) -> Option<&'static GiProfile> {
        let name = name.strip_prefix("MIG ").unwrap_or(name);
        self.profiles().iter().find(|p| p.name == name)
    }

    /// The plain (no `+me`, no double memory) profile of `slices` compute
    /// slices, if the board has one.
    pub fn plain_profile(self, slices: u32) -> Option<&'static GiProfile> {
        let index = match slices {
            1 => 0,
            2 => 1,
            3 => 2,
            4 => 3,
            7 => 4,
            8 => 5,
            6 => 6,
            _ => return None,
        };
        self.profile_by_index(index)
    }

    /// SMs of a compute instance of `ci_slices` slices inside a GI of
    /// profile `gi`: the whole GI's SMs for a full CI, else the SMs of the
    /// board's plain profile with that many slices (`1c.*` = `1g.*`), as
    /// `nvidia-smi mig -lcip` shows (A100 3g.40gb: 1c 14, 2c 28, 3g 42).
    pub fn compute_instance_sms(self, gi: &GiProfile, ci_slices: u32) -> u32 {
        if ci_slices == gi.slices {
            return gi.sms;
        }
        self.plain_profile(ci_slices)
            .map_or(gi.sms / gi.slices * ci_slices, |p| p.sms)
    }

    /// Total framebuffer as `nvmlDeviceGetMemoryInfo` reports it, MiB
    /// (the totals `nvidia-smi` prints for these boards).
    pub fn memory_total_mib(self) -> u64 {
        self.board().memory_total_mib
    }

    /// `pciDeviceId` (device << 16 | vendor 0x10de).
    pub fn pci_device_id(self) -> u32 {
        (self.board().pci_device << 16) | 0x10de
    }

    /// `pciSubSystemId` (illustrative values; nothing in this project
    /// reads them).
    pub fn pci_subsystem_id(self) -> u32 {
        (self.board().pci_subsystem << 16) | 0x10de
    }

    /// CUDA compute capability.
    pub fn compute_capability(self) -> (i32, i32) {
        self.board().compute_capability
    }

    /// Default `Video BIOS:` line (H200: the real snapshot's; others
    /// illustrative).
    pub fn default_vbios(self) -> &'static str {
        self.board().vbios
    }

    /// The GI id the driver gives a GI of `memory_slots` at `start` on
    /// this board (see [`gpu_instance_id_on`]).
    pub fn gpu_instance_id(self, memory_slots: u32, start: u32) -> u32 {
        gpu_instance_id_on(self.memory_slots(), memory_slots, start)
    }

    /// Memory slots covered by GI id `id` on this board.
    pub fn gpu_instance_span(self, id: u32) -> Option<std::ops::Range<u32>> {
        gpu_instance_span_on(self.memory_slots(), id)
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// NVML's compute-instance profile index (`NVML_COMPUTE_INSTANCE_PROFILE_*`,
/// which is also the CI profile id `nvidia-smi mig -lcip` shows) of a CI of
/// `slices` compute slices: 1 -> 0, 2 -> 1, 3 -> 2, 4 -> 3, 7 -> 4, 8 -> 5,
/// 6 -> 6. (Index 7, `1_SLICE_REV1`, is not simulated.)
pub fn ci_profile_index(slices: u32) -> Option<u32> {
    match slices {
        1 => Some(0),
        2 => Some(1),
        3 => Some(2),
        4 => Some(3),
        7 => Some(4),
        8 => Some(5),
        6 => Some(6),
        _ => None,
    }
}

/// The compute slices of CI profile index `index` (inverse of
/// [`ci_profile_index`]).
pub fn ci_profile_slices(index: u32) -> Option<u32> {
    (1..=8).find(|&slices| ci_profile_index(slices) == Some(index))
}

/// Compute-instance placement starts allowed for a CI of `ci_slices` in a GI
/// of `gi_slices`: aligned to the next power of two of the CI size and
/// fitting inside the GI (7g: 1c at 0..6, 2c at 0,2,4, 3c at 0,4, 4c at 0;
/// 3g: 1c at 0,1,2, 2c at 0). This reproduces the instance counts of
/// `nvidia-smi mig -lcip` (7g: 7/3/2/1, 4g: 4/2/1/1, 3g: 3/1/1).
pub fn compute_placements(gi_slices: u32, ci_slices: u32) -> Vec<u32> {
    if ci_slices == 0 || ci_slices > gi_slices {
        return Vec::new();
    }
    if ci_slices == gi_slices {
        return vec![0];
    }
    let align = ci_slices.next_power_of_two();
    (0..gi_slices)
        .step_by(align as usize)
        .filter(|start| start + ci_slices <= gi_slices)
        .collect()
}

/// The GPU-instance id the driver gives a GI by its memory placement on
/// an 8-slot board ([`gpu_instance_id_on`] with 8 slots).
pub fn gpu_instance_id(memory_slots: u32, start: u32) -> u32 {
    gpu_instance_id_on(8, memory_slots, start)
}

/// The GPU-instance id the driver gives a GI of `memory_slots` at `start`
/// on a board of `total` memory slots.
///
/// GI ids are the driver's "swizzIds": a binary tree over the memory
/// slots. NVIDIA's open kernel module (`kmigmgrMemSizeFlagToSwizzIdRange_GA100`
/// and `kmigmgrSwizzIdToSpan_GA100`, used for GA100, GH100 and GB100) gives
/// full = 0, halves = 1..2, quarters = 3..6, eighths = 7..14, each level
/// numbered from slot 0 upwards. Hence on 8 slots: 8 -> 0; 4 at s ->
/// 1 + s/4; 2 -> 3 + s/2; 1 -> 7 + s. A 4-slot board (A30) is the same
/// tree one level shorter: a published A30 `nvidia-smi mig -lgi` shows
/// four 1g.6gb GIs at placements 0..3 with ids 3..6.
pub fn gpu_instance_id_on(total: u32, memory_slots: u32, start: u32) -> u32 {
    let size = memory_slots.max(1);
    let fraction = (total / size).max(1);
    fraction - 1 + start / size
}

/// Memory slots covered by GI id `id` on an 8-slot board (the inverse of
/// [`gpu_instance_id`]), `None` above 14.
pub fn gpu_instance_span(id: u32) -> Option<std::ops::Range<u32>> {
    gpu_instance_span_on(8, id)
}

/// Memory slots covered by GI id `id` on a board of `total` slots, `None`
/// for an id the tree does not have.
pub fn gpu_instance_span_on(total: u32, id: u32) -> Option<std::ops::Range<u32>> {
    let mut fraction = 1;
    while fraction <= total {
        let first = fraction - 1;
        if id < first + fraction {
            let size = total / fraction;
            let start = (id - first) * size;
            return Some(start..start + size);
        }
        fraction *= 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gi_ids_follow_the_swizzle_tree() {
        assert_eq!(gpu_instance_id(8, 0), 0);
        assert_eq!(gpu_instance_id(4, 0), 1);
        assert_eq!(gpu_instance_id(4, 4), 2);
        assert_eq!(
            [0, 2, 4].map(|s| gpu_instance_id(2, s)),
            [3, 4, 5],
            "three 2g"
        );
        assert_eq!(
            (0..7).map(|s| gpu_instance_id(1, s)).collect::<Vec<_>>(),
            (7..14).collect::<Vec<_>>()
        );
        for id in 0..15 {
            let span = gpu_instance_span(id).unwrap();
            assert_eq!(gpu_instance_id(span.end - span.start, span.start), id);
        }
        assert_eq!(gpu_instance_span(15), None);
        // A 4-slot board: the tree one level shorter.
        assert_eq!(
            (0..4)
                .map(|s| gpu_instance_id_on(4, 1, s))
                .collect::<Vec<_>>(),
            [3, 4, 5, 6]
        );
        assert_eq!(gpu_instance_id_on(4, 2, 2), 2);
        assert_eq!(gpu_instance_id_on(4, 4, 0), 0);
        for id in 0..7 {
            let span = gpu_instance_span_on(4, id).unwrap();
            assert_eq!(gpu_instance_id_on(4, span.end - span.start, span.start), id);
        }
        assert_eq!(gpu_instance_span_on(4, 7), None);
    }

    #[test]
    fn ci_placements_match_lcip_counts() {
        assert_eq!(compute_placements(7, 1).len(), 7);
        assert_eq!(compute_placements(7, 2), vec![0, 2, 4]);
        assert_eq!(compute_placements(7, 3), vec![0, 4]);
        assert_eq!(compute_placements(7, 4), vec![0]);
        assert_eq!(compute_placements(3, 1), vec![0, 1, 2]);
        assert_eq!(compute_placements(3, 2), vec![0]);
        assert_eq!(compute_placements(4, 3), vec![0]);
        assert!(compute_placements(2, 3).is_empty());
    }

    /// The "Memory GiB" column of the published `nvidia-smi mig -lgip`
    /// listings the module doc names (profile order 19, 20, 15, 14, 9, 5, 0).
    #[test]
    fn memory_matches_published_lgip_listings() {
        let gib = |model: Model| -> Vec<String> {
            [19, 20, 15, 14, 9, 5, 0]
                .map(|id| {
                    let mib = model.profile_by_id(id).unwrap().memory_mib;
                    format!("{:.2}", mib as f64 / 1024.0)
                })
                .to_vec()
        };
        assert_eq!(
            gib(Model::A100Sxm4_80Gb),
            ["9.50", "9.50", "19.50", "19.50", "39.25", "39.25", "78.75"]
        );
        assert_eq!(
            gib(Model::H100_80GbHbm3),
            ["9.75", "9.75", "19.62", "19.62", "39.50", "39.50", "79.25"]
        );
        assert_eq!(
            gib(Model::H200),
            ["16.00", "16.00", "32.50", "32.50", "69.75", "69.75", "140.00"]
        );
    }

    #[test]
    fn tables_are_consistent() {
        for model in Model::ALL {
            for prof in model.profiles() {
                let total = model.memory_slots();
                assert!(prof
                    .placements
                    .iter()
                    .all(|s| s + prof.memory_slots <= total));
                assert!(prof.slices <= model.compute_slices());
                assert!(prof.instances as usize <= prof.placements.len());
                assert_eq!(model.profile_by_id(prof.id), Some(prof));
                assert_eq!(model.profile_by_name(&prof.nvml_name()), Some(prof));
            }
        }
    }
}
