//! Reading every driver table under one host root.
//!
//! The generator and the hook both need the same picture of the loaded
//! module; [`DriverTables::load`] takes it once, reading each file once,
//! under a root prefix (`/` on a host, a fake tree in tests), and decides
//! which files are required and what to tell the user when one is absent.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use super::{
    parse_capability, parse_gpu_information, parse_params, parse_proc_devices, parse_version,
    Capability, CharDevices, DriverError, DriverParams, DriverVersion, GpuInformation, MigMinors,
    UNEXPECTED_TABLE,
};

use crate::fsread::{self, MAX_TABLE_BYTES};
use crate::paths::{CAPABILITIES, GPUS, MIG_MINORS, PARAMS, PROC_DEVICES, VERSION};

const NO_PROC: &str = "is /proc mounted, and does --root point at the host's root filesystem?";
const NOT_LOADED: &str = "the NVIDIA kernel module does not seem loaded (load it with \
     `modprobe nvidia` or run `nvidia-smi`), or --root does not point at the host's root";
const NO_MIG_CAPS: &str = "the driver is too old for MIG (mig-cdi supports 450.51+) or the \
     nvidia module is not loaded; check `nvidia-smi` and --root";
const NO_CAPABILITY: &str = "the driver has no such capability: the GPU or MIG instance it \
     names does not exist now — check `nvidia-smi mig -lgi` / `-lci`";
const TWO_MAJORS: &str = "two NVIDIA kernel modules seem loaded at once — reload the driver \
     (or reboot) so that each NVIDIA device has one major";
const SHARED_MINOR: &str = "the kernel module's GPU list is inconsistent — reload the nvidia \
     module or report a driver bug";

/// Every table, read under one host root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverTables {
    /// The host root everything was read under (`/` on a real host).
    pub root: PathBuf,
    /// The kernel module's version, e.g. `580.159.04`
    /// (`driver_version.version`).
    pub version: String,
    /// The parsed `proc/driver/nvidia/version`, with the whole NVRM line.
    pub driver_version: DriverVersion,
    pub char_devices: CharDevices,
    pub mig_minors: MigMinors,
    /// `DeviceFileMode` from `/proc/driver/nvidia/params` (0o666 if absent).
    pub device_file_mode: u32,
    /// `/proc/driver/nvidia/params`; `None` when the file is absent.
    pub params: Option<DriverParams>,
    /// Every `/proc/driver/nvidia/gpus/*/information`, sorted by bus
    /// location; no two share a device minor.
    pub gpus: Vec<GpuInformation>,
}

impl DriverTables {
    /// Read every table under `root` (`/` on a host).
    ///
    /// Required: `proc/devices`, `proc/driver/nvidia/version`,
    /// `proc/driver/nvidia-caps/mig-minors`. Optional: `params` (driver
    /// defaults), the `gpus` folder (no GPUs). Each file is read once.
    pub fn load(root: &Path) -> Result<Self, DriverError> {
        Self::read(root, true)
    }

    /// [`Self::load`] without `mig-minors`, whose `mig_minors` stays empty:
    /// for a node with no GPU in MIG mode, which needs no capability minor.
    /// On a real driver that one file costs ~5 ms to read (the module
    /// formats all 4322 lines on every read), more than every other table.
    pub fn load_without_mig_minors(root: &Path) -> Result<Self, DriverError> {
        Self::read(root, false)
    }

    /// [`Self::load`] with `mig-minors` entries only for the GPU minors in
    /// `gpus` (the node's MIG GPUs): the rest of the table is skipped.
    pub fn load_for_gpus(root: &Path, gpus: &[u32]) -> Result<Self, DriverError> {
        Self::read_filtered(root, true, Some(gpus))
    }

    fn read(root: &Path, with_mig_minors: bool) -> Result<Self, DriverError> {
        Self::read_filtered(root, with_mig_minors, None)
    }

    fn read_filtered(
        root: &Path,
        with_mig_minors: bool,
        gpus: Option<&[u32]>,
    ) -> Result<Self, DriverError> {
        let path = root.join(PROC_DEVICES);
        let char_devices = parse_proc_devices(&read_table(&path, NO_PROC)?[..], &path)?;

        let path = root.join(VERSION);
        let driver_version = parse_version(&read_table(&path, NOT_LOADED)?[..], &path)?;
        check_nvidia_majors(&char_devices, &root.join(PROC_DEVICES))?;

        let mig_minors = if with_mig_minors {
            let path = root.join(MIG_MINORS);
            super::mig_minors::parse_mig_minors_for(
                &read_table(&path, NO_MIG_CAPS)?[..],
                &path,
                gpus,
            )?
        } else {
            MigMinors::default()
        };

        let path = root.join(PARAMS);
        let params = match fsread::read_if_exists(&path, MAX_TABLE_BYTES)? {
            Some(bytes) => Some(parse_params(&bytes[..], &path)?),
            None => None,
        };
        let device_file_mode = params.unwrap_or_default().device_file_mode;

        let gpus = load_gpus(&root.join(GPUS))?;

        Ok(DriverTables {
            root: root.to_path_buf(),
            version: driver_version.version.clone(),
            driver_version,
            char_devices,
            mig_minors,
            device_file_mode,
            params,
            gpus,
        })
    }

    /// Read `proc/driver/nvidia/capabilities/<rel>` under the root,
    /// e.g. `rel` = `gpu0/mig/gi1/ci0/access` or `mig/config`.
    ///
    /// `rel` must be a plain relative path (no `..`, not absolute), so a
    /// name taken from elsewhere cannot read outside the capabilities
    /// folder.
    pub fn capability(&self, rel: &str) -> Result<Capability, DriverError> {
        let plain = !rel.is_empty()
            && Path::new(rel)
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(DriverError::BadCapabilityName {
                rel: rel.to_string(),
            });
        }
        let path = self.root.join(CAPABILITIES).join(rel);
        parse_capability(&read_table(&path, NO_CAPABILITY)?[..], &path)
    }

    /// The GPU whose `/dev/nvidia<minor>` is `minor`.
    pub fn gpu_by_minor(&self, minor: u32) -> Option<&GpuInformation> {
        self.gpus.iter().find(|gpu| gpu.device_minor == minor)
    }
}

/// A required table, whole (regular files only, at most
/// [`MAX_TABLE_BYTES`]); absent means `hint`.
pub(super) fn read_table(path: &Path, hint: &'static str) -> Result<Vec<u8>, DriverError> {
    fsread::read(path, MAX_TABLE_BYTES).map_err(|err| match err {
        err if err.is_not_found() => DriverError::Missing {
            path: path.to_path_buf(),
            what: "such file".to_string(),
            hint,
        },
        err => DriverError::from(err),
    })
}

/// An `nvidia*` name under two majors leaves no way to tell which node is
/// the driver's; refuse rather than pick one.
pub(super) fn check_nvidia_majors(devices: &CharDevices, path: &Path) -> Result<(), DriverError> {
    let Some((name, majors)) = devices
        .repeated
        .iter()
        .find(|(name, _)| name.starts_with("nvidia"))
    else {
        return Ok(());
    };
    let majors: Vec<String> = majors.iter().map(u32::to_string).collect();
    Err(DriverError::Inconsistent {
        path: path.to_path_buf(),
        message: format!(
            "\"{name}\" is listed under several majors ({})",
            majors.join(", ")
        ),
        hint: TWO_MAJORS,
    })
}

/// Every `<dir>/*/information`, sorted by bus location. An absent `dir`
/// means the module has bound no GPU.
fn load_gpus(dir: &Path) -> Result<Vec<GpuInformation>, DriverError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(DriverError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut gpus = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| DriverError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let folder = entry.path();
        if !folder.is_dir() {
            continue;
        }
        let path = folder.join("information");
        gpus.push(parse_gpu_information(
            &read_table(&path, UNEXPECTED_TABLE)?[..],
            &path,
        )?);
    }
    // The kernel prints `%04x:%02x:%02x.%x`: fixed width, so text order is
    // address order.
    gpus.sort_by(|a, b| a.bus_location.cmp(&b.bus_location));
    for (i, gpu) in gpus.iter().enumerate() {
        let later = gpus.get(i + 1..).unwrap_or_default();
        if let Some(other) = later.iter().find(|o| o.device_minor == gpu.device_minor) {
            return Err(DriverError::Inconsistent {
                path: dir.to_path_buf(),
                message: format!(
                    "GPUs {} and {} both have Device Minor {}",
                    gpu.bus_location, other.bus_location, gpu.device_minor
                ),
                hint: SHARED_MINOR,
            });
        }
    }
    Ok(gpus)
}
