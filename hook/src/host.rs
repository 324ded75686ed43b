//! Every read the hook makes, behind one seam: [`Host`].
//!
//! The hook reads the bundle's `config.json`, the CDI spec folders, the
//! driver's live tables, the host's `/dev`, the container's
//! `/proc/<pid>/cgroup`, its own mount table and its own capabilities. All
//! of it goes through this trait, beside [`Kernel`](crate::kernel::Kernel)
//! for the writes, so that [`run`](crate::run::run) is a function of what
//! the host reports and is tested end to end in memory, without root:
//! `main` passes [`RealHost`]; tests pick [`fake::FakeHost`] explicitly.
//!
//! Files someone else controls are read through core's `fsread`: regular
//! files only, opened without blocking, with a size cap.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use caps::Capability as Cap;
use mig_cdi_core::cdi::folders;
use mig_cdi_core::driver::{Capability, DriverError, LiveDriver};
use mig_cdi_core::fsread::{self, ReadError, MAX_TABLE_BYTES};
use mig_cdi_core::nodes::{self, HostEntry};
use mig_cdi_core::paths::{self, CapKey};

/// The hook's own privileges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privileges {
    pub effective: HashSet<Cap>,
    pub euid: u32,
    pub egid: u32,
}

/// The majors and node mode of the live driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverView {
    /// `(name, major)` from `/proc/devices`, NVIDIA names only.
    pub majors: Vec<(String, u32)>,
    /// `DeviceFileMode` of the nvidia nodes.
    pub device_file_mode: u32,
}

impl DriverView {
    pub fn major(&self, name: &str) -> Option<u32> {
        self.majors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, major)| *major)
    }
}

/// What the hook reads from the host.
pub trait Host {
    /// A file someone else controls (the bundle's config), whole, at most
    /// `max` bytes.
    fn read_file(&self, path: &Path, max: u64) -> Result<Vec<u8>, ReadError>;
    /// The spec files a runtime reads in `dir`.
    fn spec_files(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// The live driver's majors and mode.
    fn driver(&self) -> Result<DriverView, DriverError>;
    /// Every GI/CI capability of GPU minor `gpu` that exists now.
    fn gpu_capabilities(&self, gpu: u32) -> Result<Vec<(CapKey, Capability)>, DriverError>;
    /// One capability; `None` when the driver has none.
    fn capability(&self, key: CapKey) -> Result<Option<Capability>, DriverError>;
    /// The host's node at `path` (absolute, as a spec names it).
    fn host_node(&self, path: &str) -> HostEntry;
    /// How to name `path` on the host in messages.
    fn host_display(&self, path: &str) -> String;
    /// `/proc/<pid>/cgroup` of the container's process.
    fn proc_cgroup(&self, pid: i32) -> Result<String, ReadError>;
    /// The hook's own `/proc/self/mountinfo`.
    fn mountinfo(&self) -> Result<String, ReadError>;
    /// The hook's own effective capabilities, euid and egid.
    fn privileges(&self) -> io::Result<Privileges>;
    /// When process `pid` started (`/proc/<pid>/stat` field 22, clock
    /// ticks since boot); `None` when there is no such process.
    fn process_start(&self, pid: i32) -> Option<u64>;
}

/// The real host: driver and `/dev` under `--root`; the bundle, spec
/// folders and `/proc` of processes as the hook sees them.
pub struct RealHost {
    root: PathBuf,
    live: std::cell::OnceCell<LiveDriver>,
}

impl RealHost {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            live: std::cell::OnceCell::new(),
        }
    }

    fn live(&self) -> Result<&LiveDriver, DriverError> {
        if let Some(live) = self.live.get() {
            return Ok(live);
        }
        let live = LiveDriver::load(&self.root)?;
        Ok(self.live.get_or_init(|| live))
    }
}

fn text(path: &Path) -> Result<String, ReadError> {
    let bytes = fsread::read(path, MAX_TABLE_BYTES)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

impl Host for RealHost {
    fn read_file(&self, path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
        fsread::read(path, max)
    }
    fn spec_files(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        folders::spec_files(dir)
    }
    fn driver(&self) -> Result<DriverView, DriverError> {
        let live = self.live()?;
        Ok(DriverView {
            majors: live
                .char_devices
                .majors
                .iter()
                .filter(|(name, _)| name.starts_with("nvidia"))
                .map(|(name, major)| (name.clone(), *major))
                .collect(),
            device_file_mode: live.device_file_mode,
        })
    }
    fn gpu_capabilities(&self, gpu: u32) -> Result<Vec<(CapKey, Capability)>, DriverError> {
        self.live()?.gpu_capabilities(gpu)
    }
    fn capability(&self, key: CapKey) -> Result<Option<Capability>, DriverError> {
        self.live()?.capability(key)
    }
    fn host_node(&self, path: &str) -> HostEntry {
        nodes::examine(&paths::under(&self.root, path))
    }
    fn host_display(&self, path: &str) -> String {
        paths::under(&self.root, path).display().to_string()
    }
    fn proc_cgroup(&self, pid: i32) -> Result<String, ReadError> {
        text(Path::new(&format!("/proc/{pid}/cgroup")))
    }
    fn mountinfo(&self) -> Result<String, ReadError> {
        text(Path::new("/proc/self/mountinfo"))
    }
    fn privileges(&self) -> io::Result<Privileges> {
        let effective = caps::read(None, caps::CapSet::Effective)
            .map_err(|e| io::Error::other(format!("cannot read own capabilities: {e}")))?;
        Ok(Privileges {
            effective,
            euid: nix::unistd::geteuid().as_raw(),
            egid: nix::unistd::getegid().as_raw(),
        })
    }
    fn process_start(&self, pid: i32) -> Option<u64> {
        if pid <= 0 {
            return None;
        }
        let bytes = fsread::read(Path::new(&format!("/proc/{pid}/stat")), 4096).ok()?;
        crate::lease::stat_start_time(&String::from_utf8_lossy(&bytes))
    }
}

pub mod fake {
    //! An in-memory host for tests: files, spec folders, a driver and a
    //! host `/dev`, all plain data a test sets up and changes. Public, so
    //! that every test of the hook (and of tools built on it) picks it
    //! explicitly; production code never does.

    use std::collections::BTreeMap;
    use std::io;
    use std::path::{Path, PathBuf};

    use caps::Capability as Cap;
    use mig_cdi_core::cdi::folders::is_spec_file_name;
    use mig_cdi_core::driver::{Capability, DriverError};
    use mig_cdi_core::fsread::ReadError;
    use mig_cdi_core::nodes::HostEntry;
    use mig_cdi_core::paths::{cap_node_path, CapKey};

    use super::{DriverView, Host, Privileges};

    /// What an in-memory path holds.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum FakeFile {
        Bytes(Vec<u8>),
        /// A FIFO, device or directory: refused as `what`.
        NotRegular(&'static str),
    }

    /// An in-memory host.
    #[derive(Debug, Clone)]
    pub struct FakeHost {
        pub files: BTreeMap<PathBuf, FakeFile>,
        pub driver: Option<DriverView>,
        /// GI/CI capabilities that exist now.
        pub caps: Vec<(CapKey, Capability)>,
        /// `mig/config` and `mig/monitor`.
        pub management: BTreeMap<CapKey, Capability>,
        /// The host's `/dev`, by path.
        pub dev: BTreeMap<String, HostEntry>,
        pub proc_cgroup: String,
        pub mountinfo: String,
        pub privileges: Privileges,
        /// Live processes: pid -> start time.
        pub processes: BTreeMap<i32, u64>,
    }

    /// A capability with the driver's `modify` flag set.
    pub fn cap(minor: u32, mode: u32) -> Capability {
        Capability {
            minor,
            mode,
            modify: true,
        }
    }

    /// A character device on the host, mode 0666, owned by root.
    pub fn char_dev(major: u32, minor: u32, mode: u32) -> HostEntry {
        HostEntry::Char {
            major,
            minor,
            mode,
            uid: 0,
            gid: 0,
        }
    }

    impl FakeHost {
        /// A real H200's majors (nvidia 195, nvidia-uvm 238, nvidia-caps
        /// 241) with MIG on GPU minor 0: GI 1/CI 0 (caps 12, 13) and
        /// GI 2/CI 0 (caps 21, 22), config (1) and monitor (2); every node
        /// on the host; a pure cgroup v2 container; a hook with every
        /// capability, as root.
        pub fn h200() -> Self {
            let caps = vec![
                (CapKey::Gi { gpu: 0, gi: 1 }, cap(12, 0o444)),
                (
                    CapKey::Ci {
                        gpu: 0,
                        gi: 1,
                        ci: 0,
                    },
                    cap(13, 0o444),
                ),
                (CapKey::Gi { gpu: 0, gi: 2 }, cap(21, 0o444)),
                (
                    CapKey::Ci {
                        gpu: 0,
                        gi: 2,
                        ci: 0,
                    },
                    cap(22, 0o444),
                ),
            ];
            let management = [
                (CapKey::Config, cap(1, 0o400)),
                (CapKey::Monitor, cap(2, 0o444)),
            ]
            .into_iter()
            .collect();
            let mut dev = BTreeMap::new();
            dev.insert("/dev/nvidia0".to_string(), char_dev(195, 0, 0o666));
            dev.insert("/dev/nvidiactl".to_string(), char_dev(195, 255, 0o666));
            dev.insert("/dev/nvidia-uvm".to_string(), char_dev(238, 0, 0o666));
            dev.insert("/dev/nvidia-uvm-tools".to_string(), char_dev(238, 1, 0o666));
            for m in [1, 2, 12, 13, 21, 22] {
                dev.insert(cap_node_path(m), char_dev(241, m, 0o444));
            }
            let majors = [
                ("nvidia", 195),
                ("nvidiactl", 195),
                ("nvidia-uvm", 238),
                ("nvidia-caps", 241),
            ]
            .into_iter()
            .map(|(n, m)| (n.to_string(), m))
            .collect();
            Self {
                files: BTreeMap::new(),
                driver: Some(DriverView {
                    majors,
                    device_file_mode: 0o666,
                }),
                caps,
                management,
                dev,
                proc_cgroup: "0::/system.slice/c1.scope\n".into(),
                mountinfo: String::new(),
                privileges: Privileges {
                    effective: caps::all(),
                    euid: 0,
                    egid: 0,
                },
                processes: BTreeMap::new(),
            }
        }

        /// Put `bytes` at `path`.
        pub fn write(&mut self, path: impl Into<PathBuf>, bytes: impl Into<Vec<u8>>) {
            self.files
                .insert(path.into(), FakeFile::Bytes(bytes.into()));
        }

        /// Change the minor of an existing GI/CI capability.
        pub fn set_minor(&mut self, key: CapKey, minor: u32) {
            for (k, c) in &mut self.caps {
                if *k == key {
                    c.minor = minor;
                }
            }
        }

        /// Drop a capability from the hook's effective set.
        pub fn without(&mut self, cap: Cap) {
            self.privileges.effective.remove(&cap);
        }
    }

    fn not_found(path: &Path) -> ReadError {
        ReadError::Io {
            path: path.to_path_buf(),
            source: io::Error::from(io::ErrorKind::NotFound),
        }
    }

    impl Host for FakeHost {
        fn read_file(&self, path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
            match self.files.get(path) {
                None => Err(not_found(path)),
                Some(FakeFile::NotRegular(what)) => Err(ReadError::NotRegular {
                    path: path.to_path_buf(),
                    what,
                }),
                Some(FakeFile::Bytes(bytes)) if bytes.len() as u64 > max => {
                    Err(ReadError::TooLarge {
                        path: path.to_path_buf(),
                        max,
                    })
                }
                Some(FakeFile::Bytes(bytes)) => Ok(bytes.clone()),
            }
        }
        fn spec_files(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
            Ok(self
                .files
                .keys()
                .filter(|p| p.parent() == Some(dir) && is_spec_file_name(p))
                .cloned()
                .collect())
        }
        fn driver(&self) -> Result<DriverView, DriverError> {
            self.driver.clone().ok_or_else(|| DriverError::Missing {
                path: "/proc/devices".into(),
                what: "\"nvidia\" major".into(),
                hint: "the NVIDIA kernel module is not loaded",
            })
        }
        fn gpu_capabilities(&self, gpu: u32) -> Result<Vec<(CapKey, Capability)>, DriverError> {
            Ok(self
                .caps
                .iter()
                .filter(|(k, _)| k.gpu() == Some(gpu))
                .copied()
                .collect())
        }
        fn capability(&self, key: CapKey) -> Result<Option<Capability>, DriverError> {
            Ok(match key {
                CapKey::Config | CapKey::Monitor => self.management.get(&key).copied(),
                _ => self.caps.iter().find(|(k, _)| *k == key).map(|(_, c)| *c),
            })
        }
        fn host_node(&self, path: &str) -> HostEntry {
            self.dev.get(path).cloned().unwrap_or(HostEntry::Missing)
        }
        fn host_display(&self, path: &str) -> String {
            path.to_string()
        }
        fn proc_cgroup(&self, _pid: i32) -> Result<String, ReadError> {
            Ok(self.proc_cgroup.clone())
        }
        fn mountinfo(&self) -> Result<String, ReadError> {
            Ok(self.mountinfo.clone())
        }
        fn privileges(&self) -> io::Result<Privileges> {
            Ok(self.privileges.clone())
        }
        fn process_start(&self, pid: i32) -> Option<u64> {
            self.processes.get(&pid).copied()
        }
    }
}
