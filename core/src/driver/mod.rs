//! The NVIDIA driver's `/proc` tables, parsed.
//!
//! Every parser is a pure function over a reader and the file's name (for
//! error messages); [`DriverTables::load`] reads them all under a host root
//! prefix so tests run on fake trees and the real H200 snapshot.
//!
//! PARSER HELPER: implement this module (see the task you were given).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Something in the driver's tables is missing or not as expected.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Character-device majors from `/proc/devices` (name -> major).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CharDevices {
    pub majors: BTreeMap<String, u32>,
}

impl CharDevices {
    pub fn major(&self, name: &str) -> Option<u32> {
        self.majors.get(name).copied()
    }
}

/// `/proc/driver/nvidia-caps/mig-minors`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigMinors {
    pub config: Option<u32>,
    pub monitor: Option<u32>,
    /// (gpu minor, gi) -> cap minor
    pub gi_access: BTreeMap<(u32, u32), u32>,
    /// (gpu minor, gi, ci) -> cap minor
    pub ci_access: BTreeMap<(u32, u32, u32), u32>,
}

/// A capability access file (`DeviceFileMinor`, `DeviceFileMode`, `DeviceFileModify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    pub minor: u32,
    /// Permission bits, e.g. 0o444.
    pub mode: u32,
    pub modify: bool,
}

/// Every table, read under one host root.
#[derive(Debug, Clone)]
pub struct DriverTables {
    pub root: PathBuf,
    pub version: String,
    pub char_devices: CharDevices,
    pub mig_minors: MigMinors,
    /// `DeviceFileMode` from `/proc/driver/nvidia/params` (0o666 if absent).
    pub device_file_mode: u32,
}

impl DriverTables {
    pub fn load(root: &Path) -> Result<Self, DriverError> {
        let _ = root;
        unimplemented!()
    }

    /// Read `proc/driver/nvidia/capabilities/<rel>` under the root,
    /// e.g. `rel` = `gpu0/mig/gi1/ci0/access` or `mig/config`.
    pub fn capability(&self, rel: &str) -> Result<Capability, DriverError> {
        let _ = rel;
        unimplemented!()
    }
}
