//! The live driver as one device needs it: `/proc/devices`, the module's
//! `params`, and the capability files of one GPU — never `mig-minors`.
//!
//! [`DriverTables`](super::DriverTables) reads everything, for a generator
//! that renders every device. A check of one device (the hook before it
//! injects, a verifier) needs far less: the majors, the node mode, and the
//! capability access files of that device's own GPU
//! (`capabilities/gpu<N>/mig/gi*/access`, `gi*/ci*/access`), which exist
//! exactly while the instances do and carry their minors and modes. On a
//! real driver the static 4322-line `mig-minors` is formatted on every read
//! and costs ~5 ms, more than such a check's whole budget, while the
//! capability files say the same for the instances that exist.

use std::path::{Path, PathBuf};

use super::tables::{check_nvidia_majors, read_table};
use super::DriverError;
use super::{parse_capability, parse_params, parse_proc_devices, Capability, CharDevices};
use crate::fsread::{self, MAX_TABLE_BYTES};
use crate::paths::{self, CapKey, NVIDIA_MAJOR_NAME};

const NOT_LOADED: &str = "the NVIDIA kernel module is not loaded (or --root points elsewhere)";

/// The majors and node mode of the loaded module, read under a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveDriver {
    pub root: PathBuf,
    pub char_devices: CharDevices,
    /// `DeviceFileMode` (0o666 when `params` is absent).
    pub device_file_mode: u32,
}

impl LiveDriver {
    /// Read `/proc/devices` (an `nvidia` major is required, each NVIDIA
    /// name once) and `params` under `root`.
    pub fn load(root: &Path) -> Result<Self, DriverError> {
        let path = paths::under(root, paths::PROC_DEVICES);
        let bytes = read_table(&path, NOT_LOADED)?;
        let char_devices = parse_proc_devices(&bytes[..], &path)?;
        check_nvidia_majors(&char_devices, &path)?;
        if char_devices.major(NVIDIA_MAJOR_NAME).is_none() {
            return Err(DriverError::Missing {
                path,
                what: "\"nvidia\" major".into(),
                hint: NOT_LOADED,
            });
        }
        let path = paths::under(root, paths::PARAMS);
        let device_file_mode = match fsread::read_if_exists(&path, MAX_TABLE_BYTES)? {
            Some(bytes) => parse_params(&bytes[..], &path)?.device_file_mode,
            None => super::DriverParams::default().device_file_mode,
        };
        Ok(Self {
            root: root.to_path_buf(),
            char_devices,
            device_file_mode,
        })
    }

    pub fn major(&self, name: &str) -> Option<u32> {
        self.char_devices.major(name)
    }

    /// One capability's access file; `None` when it does not exist (the
    /// instance is gone, or the driver has no such capability).
    pub fn capability(&self, key: CapKey) -> Result<Option<Capability>, DriverError> {
        let path = key.path(&self.root);
        match fsread::read_if_exists(&path, MAX_TABLE_BYTES)? {
            Some(bytes) => Ok(Some(parse_capability(&bytes[..], &path)?)),
            None => Ok(None),
        }
    }

    /// Every GPU- and compute-instance capability of GPU minor `gpu` that
    /// exists now, GIs in order, each followed by its CIs.
    pub fn gpu_capabilities(&self, gpu: u32) -> Result<Vec<(CapKey, Capability)>, DriverError> {
        let mig = paths::under(&self.root, paths::CAPABILITIES).join(format!("gpu{gpu}/mig"));
        let mut out = Vec::new();
        for gi in numbered(&mig, "gi")? {
            let key = CapKey::Gi { gpu, gi };
            if let Some(cap) = self.capability(key)? {
                out.push((key, cap));
            }
            for ci in numbered(&mig.join(format!("gi{gi}")), "ci")? {
                let key = CapKey::Ci { gpu, gi, ci };
                if let Some(cap) = self.capability(key)? {
                    out.push((key, cap));
                }
            }
        }
        Ok(out)
    }
}

/// `n` for each entry `<prefix><n>` of a folder, sorted (none if absent).
fn numbered(dir: &Path, prefix: &str) -> Result<Vec<u32>, DriverError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(DriverError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out: Vec<u32> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix(prefix))
                .and_then(paths::plain_number)
        })
        .collect();
    // Other names (the GI's own `access` file) are not instances.
    out.sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/driver/h200-580.159.04/proc")
    }

    #[test]
    fn reads_only_the_gpu_capabilities() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let caps = paths::under(root, paths::CAPABILITIES);
        std::fs::create_dir_all(caps.join("gpu0/mig/gi7/ci0")).unwrap();
        std::fs::create_dir_all(caps.join("gpu0/mig/gi7/not-a-ci")).unwrap();
        std::fs::create_dir_all(caps.join("mig")).unwrap();
        for rel in ["devices", "driver/nvidia/params"] {
            let to = root.join("proc").join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(snapshot().join(rel), to).unwrap();
        }
        std::fs::copy(
            snapshot().join("driver/nvidia/capabilities/mig/config"),
            caps.join("mig/config"),
        )
        .unwrap();
        let write = |rel: &str, minor: u32| {
            std::fs::write(
                caps.join(rel),
                format!("DeviceFileMinor: {minor}\nDeviceFileMode: 292\n"),
            )
            .unwrap()
        };
        write("gpu0/mig/gi7/access", 66);
        write("gpu0/mig/gi7/ci0/access", 67);
        let live = LiveDriver::load(root).unwrap();
        assert_eq!(
            (live.major("nvidia-caps"), live.device_file_mode),
            (Some(241), 0o666)
        );
        let found: Vec<_> = live
            .gpu_capabilities(0)
            .unwrap()
            .into_iter()
            .map(|(k, c)| (k, c.minor, c.mode))
            .collect();
        assert_eq!(
            found,
            [
                (CapKey::Gi { gpu: 0, gi: 7 }, 66, 0o444),
                (
                    CapKey::Ci {
                        gpu: 0,
                        gi: 7,
                        ci: 0
                    },
                    67,
                    0o444
                ),
            ]
        );
        assert!(live.gpu_capabilities(1).unwrap().is_empty());
        assert_eq!(
            live.capability(CapKey::Config)
                .unwrap()
                .map(|c| (c.minor, c.mode)),
            Some((1, 0o400))
        );
        assert_eq!(live.capability(CapKey::Monitor).unwrap(), None);
        std::fs::remove_file(root.join("proc/devices")).unwrap();
        let err = LiveDriver::load(root).unwrap_err().to_string();
        assert!(err.contains("proc/devices: no such file"), "{err}");
    }

    #[test]
    fn fifo_and_device_tables_are_refused_not_waited_on() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("proc/driver/nvidia")).unwrap();
        std::fs::copy(snapshot().join("devices"), root.join("proc/devices")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", root.join("proc/driver/nvidia/params")).unwrap();
        let err = LiveDriver::load(root).unwrap_err().to_string();
        assert!(
            err.contains("a character device, not a regular file"),
            "{err}"
        );
        std::fs::remove_file(root.join("proc/devices")).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(root.join("proc/devices"))
            .status()
            .unwrap();
        assert!(status.success());
        let err = LiveDriver::load(root).unwrap_err().to_string();
        assert!(err.contains("a FIFO"), "{err}");
    }
}
