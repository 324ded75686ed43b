//! The running driver's user-space files: what a container needs besides
//! device nodes for CUDA to run and `nvidia-smi` to answer.
//!
//! The kernel module's version (`/proc/driver/nvidia/version`) decides
//! everything: the libraries must be exactly that version (a
//! `libcuda.so.<other>` is a mismatch, named with both versions), found the
//! way the loader finds them — the driver root's `/etc/ld.so.cache`, read
//! by [`crate::ldcache`], never by running `ldconfig` — and, failing that,
//! in the usual library folders (the distribution's, the GPU operator's
//! `/usr/local/nvidia/lib64`). Each library's soname comes from its own
//! ELF header ([`crate::elf`]), for the links a container needs.
//!
//! The set: the compute libraries (CUDA driver, NVML, the PTX JIT — these
//! three are required; NVVM, the CUDA debugger, OpenCL, the allocator,
//! `libnvidia-cfg`, `gpucomp` and the PKCS#11 module where present),
//! graphics and video ones only when asked for; the utilities
//! (`nvidia-smi`, `nvidia-debugdump`, `nvidia-persistenced`, MPS control
//! and server); the persistenced and MPS sockets where present; the GSP
//! firmware of this version. Paths in a container are the paths under the
//! driver root (`--driver-root /run/nvidia/driver` for the GPU operator's
//! layout: `/run/nvidia/driver/usr/lib/...` is mounted at `/usr/lib/...`).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::fsread;

/// Which set a library belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Compute,
    Graphics,
    Video,
}

/// A library of the set: its unversioned name and whether the set needs it.
#[derive(Debug, Clone, Copy)]
pub struct Library {
    pub stem: &'static str,
    pub required: bool,
    pub class: Class,
}

const fn lib(stem: &'static str, required: bool, class: Class) -> Library {
    Library {
        stem,
        required,
        class,
    }
}

/// Every library discovery looks for.
pub const LIBRARIES: &[Library] = &[
    lib("libcuda.so", true, Class::Compute),
    lib("libnvidia-ml.so", true, Class::Compute),
    lib("libnvidia-ptxjitcompiler.so", true, Class::Compute),
    lib("libnvidia-nvvm.so", false, Class::Compute),
    lib("libcudadebugger.so", false, Class::Compute),
    lib("libnvidia-opencl.so", false, Class::Compute),
    lib("libnvidia-allocator.so", false, Class::Compute),
    lib("libnvidia-cfg.so", false, Class::Compute),
    lib("libnvidia-gpucomp.so", false, Class::Compute),
    lib("libnvidia-pkcs11-openssl3.so", false, Class::Compute),
    lib("libnvidia-pkcs11.so", false, Class::Compute),
    lib("libEGL_nvidia.so", false, Class::Graphics),
    lib("libGLESv1_CM_nvidia.so", false, Class::Graphics),
    lib("libGLESv2_nvidia.so", false, Class::Graphics),
    lib("libGLX_nvidia.so", false, Class::Graphics),
    lib("libnvidia-eglcore.so", false, Class::Graphics),
    lib("libnvidia-glcore.so", false, Class::Graphics),
    lib("libnvidia-glsi.so", false, Class::Graphics),
    lib("libnvidia-glvkspirv.so", false, Class::Graphics),
    lib("libnvidia-tls.so", false, Class::Graphics),
    lib("libnvidia-rtcore.so", false, Class::Graphics),
    lib("libnvoptix.so", false, Class::Graphics),
    lib("libnvidia-fbc.so", false, Class::Graphics),
    lib("libnvcuvid.so", false, Class::Video),
    lib("libnvidia-encode.so", false, Class::Video),
    lib("libnvidia-opticalflow.so", false, Class::Video),
    lib("libvdpau_nvidia.so", false, Class::Video),
];

/// Library folders searched after the loader cache, in order.
pub const LIBRARY_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib64",
    "/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib",
    "/lib",
    "/usr/local/nvidia/lib64",
];

/// Utilities a container gets.
pub const UTILITIES: &[&str] = &[
    "nvidia-smi",
    "nvidia-debugdump",
    "nvidia-persistenced",
    "nvidia-cuda-mps-control",
    "nvidia-cuda-mps-server",
];

/// Folders searched for the utilities.
pub const UTILITY_DIRS: &[&str] = &[
    "/usr/bin",
    "/usr/local/bin",
    "/usr/local/nvidia/bin",
    "/bin",
];

/// Sockets and pipe folders, mounted where present.
pub const SOCKETS: &[&str] = &["/run/nvidia-persistenced/socket", "/tmp/nvidia-mps"];

/// Folders holding `nvidia/<version>/gsp_*.bin`.
pub const FIRMWARE_DIRS: &[&str] = &[
    "/lib/firmware",
    "/usr/lib/firmware",
    "/usr/local/nvidia/firmware",
];

/// What a file is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A library, with its soname (`libcuda.so.1`) when it has one.
    Library {
        soname: Option<String>,
    },
    Utility,
    Firmware,
    Socket,
}

/// One file to mount read-only into containers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DriverFile {
    /// Where it is in the container (and, under the driver root, on the host).
    pub path: String,
    /// Where it is on the host (`<driver root>/<path>`).
    pub host_path: PathBuf,
    pub kind: Kind,
}

/// The driver's files, for one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverFiles {
    pub version: String,
    /// Sorted by path.
    pub files: Vec<DriverFile>,
}

impl DriverFiles {
    /// The folders (container paths) holding libraries, sorted: what the
    /// container's loader cache must cover.
    pub fn library_dirs(&self) -> Vec<String> {
        let mut dirs: Vec<String> = self
            .files
            .iter()
            .filter(|f| matches!(f.kind, Kind::Library { .. }))
            .filter_map(|f| Path::new(&f.path).parent())
            .map(|d| d.display().to_string())
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// `(link, target)` soname links a container needs, both container
    /// paths: `libcuda.so.1 -> libcuda.so.<version>` and the development
    /// name `libcuda.so -> libcuda.so.1`.
    pub fn links(&self) -> Vec<(String, String)> {
        let mut links = Vec::new();
        for file in &self.files {
            let Kind::Library { soname } = &file.kind else {
                continue;
            };
            let path = Path::new(&file.path);
            let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                continue;
            };
            let name = name.to_string_lossy();
            if let Some(soname) = soname.as_ref().filter(|s| **s != name) {
                links.push((dir.join(soname).display().to_string(), name.to_string()));
            }
            let stem = name.split(".so").next().unwrap_or("");
            let dev = format!("{stem}.so");
            let target = soname.clone().unwrap_or_else(|| name.to_string());
            if dev != target && dev != name {
                links.push((dir.join(dev).display().to_string(), target));
            }
        }
        links.sort();
        links.dedup();
        links
    }
}

/// Why the files could not be discovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilesError {
    /// A required library is absent.
    Missing {
        library: &'static str,
        version: String,
        searched: Vec<String>,
    },
    /// A library is there only for another version.
    Mismatch {
        library: &'static str,
        found: String,
        version: String,
        path: PathBuf,
    },
    /// The loader cache is unreadable or garbled.
    Cache { path: PathBuf, why: String },
}

impl fmt::Display for FilesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing {
                library,
                version,
                searched,
            } => write!(
                f,
                "{library}.{version} (the running driver's) is not installed: not in the loader \
                 cache nor in {}; install the driver's user-space libraries of version \
                 {version}, point --driver-root at them, or use --no-driver-files for a spec of \
                 device nodes only",
                searched.join(", ")
            ),
            Self::Mismatch {
                library,
                found,
                version,
                path,
            } => write!(
                f,
                "{} is version {found} but the loaded kernel module is {version}: {library} and \
                 the module must match — reinstall the driver (or reboot into the module that \
                 matches {found})",
                path.display(),
            ),
            Self::Cache { path, why } => write!(f, "{}: {why}", path.display()),
        }
    }
}

impl std::error::Error for FilesError {}

/// What to look for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the driver's files are (`/`, or `/run/nvidia/driver`).
    pub driver_root: PathBuf,
    pub graphics: bool,
    pub video: bool,
}

fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// `<stem>.<version>` names a library of `version`; any other
/// `<stem>.<digits and dots>` of three parts is another driver version.
fn other_version(name: &str, stem: &str, version: &str) -> Option<String> {
    let rest = name.strip_prefix(stem)?.strip_prefix('.')?;
    let parts: Vec<&str> = rest.split('.').collect();
    let driverish = parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    (driverish && rest != version).then(|| rest.to_string())
}

/// The names in a folder; none when it cannot be listed.
fn list_dir(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Does the file start with the ELF magic?
fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    fsread::open(path)
        .ok()
        .and_then(|mut f| f.read_exact(&mut magic).ok())
        .is_some()
        && magic == *b"\x7fELF"
}

/// Discover the driver's files for kernel module `version`.
pub fn discover(version: &str, options: &Options) -> Result<DriverFiles, FilesError> {
    let root = &options.driver_root;
    let cache_path = under(root, "/etc/ld.so.cache");
    let cache = match fsread::read_if_exists(&cache_path, 64 << 20) {
        Ok(Some(bytes)) => crate::ldcache::parse(&bytes).map_err(|e| FilesError::Cache {
            path: cache_path.clone(),
            why: e.to_string(),
        })?,
        Ok(None) => Vec::new(),
        Err(e) => {
            return Err(FilesError::Cache {
                path: cache_path,
                why: e.reason(),
            })
        }
    };
    // Folders to look in: those the cache names for each library first.
    // Each folder is listed once (a distribution's library folder holds
    // thousands of names, and a listing is slow on some file systems).
    let mut listings: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut files = Vec::new();
    for library in LIBRARIES {
        let wanted = match library.class {
            Class::Compute => true,
            Class::Graphics => options.graphics,
            Class::Video => options.video,
        };
        if !wanted {
            continue;
        }
        let mut dirs: Vec<String> = cache
            .iter()
            .filter(|e| e.flags & crate::ldcache::FLAG_TYPE_MASK == crate::ldcache::FLAG_ELF_LIBC6)
            .filter(|e| {
                e.soname == library.stem || e.soname.starts_with(&format!("{}.", library.stem))
            })
            .filter_map(|e| Path::new(&e.path).parent().map(|d| d.display().to_string()))
            .collect();
        dirs.extend(LIBRARY_DIRS.iter().map(|d| d.to_string()));
        let mut seen = Vec::new();
        dirs.retain(|d| {
            let fresh = !seen.contains(d);
            seen.push(d.clone());
            fresh
        });
        let file_name = format!("{}.{version}", library.stem);
        let mut found = None;
        let mut mismatch = None;
        for dir in &dirs {
            let names = listings
                .entry(dir.clone())
                .or_insert_with(|| list_dir(&under(root, dir)));
            if names.contains(&file_name) {
                let candidate = format!("{}/{file_name}", dir.trim_end_matches('/'));
                let host = under(root, &candidate);
                if host.is_file() {
                    found = Some((candidate, host));
                    break;
                }
            }
            if mismatch.is_none() {
                mismatch = names.iter().find_map(|name| {
                    let other = other_version(name, library.stem, version)?;
                    Some((other, under(root, dir).join(name)))
                });
            }
        }
        match (found, mismatch) {
            (Some((path, host_path)), _) => {
                // The soname: the loader cache's entry in the same folder
                // whose link points at this very file (one readlink), else
                // the library's own ELF header (a few small reads, which
                // are slow on some driver mounts).
                let dir = Path::new(&path)
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                let from_cache = cache
                    .iter()
                    .filter(|e| e.soname != library.stem && e.soname.starts_with(library.stem))
                    .filter(|e| Path::new(&e.path).parent() == Some(dir.as_path()))
                    .map(|e| e.soname.clone())
                    .find(|soname| {
                        std::fs::read_link(under(root, &dir.join(soname).display().to_string()))
                            .is_ok_and(|t| t.file_name() == Some(std::ffi::OsStr::new(&file_name)))
                    });
                let soname = from_cache.or_else(|| {
                    fsread::open(&host_path)
                        .ok()
                        .and_then(|f| crate::elf::soname_of(&f))
                });
                files.push(DriverFile {
                    path,
                    host_path,
                    kind: Kind::Library { soname },
                });
            }
            (None, Some((found, path))) if library.required => {
                return Err(FilesError::Mismatch {
                    library: library.stem,
                    found,
                    version: version.to_string(),
                    path,
                })
            }
            (None, _) if library.required => {
                return Err(FilesError::Missing {
                    library: library.stem,
                    version: version.to_string(),
                    searched: dirs,
                })
            }
            (None, _) => {}
        }
    }
    for utility in UTILITIES {
        // The driver's own program, not a wrapper script that execs it
        // from elsewhere (which would fail in a container): an ELF file
        // first, any file else.
        let candidates: Vec<String> = UTILITY_DIRS
            .iter()
            .map(|d| format!("{d}/{utility}"))
            .filter(|p| under(root, p).is_file())
            .collect();
        let elf = match candidates.len() {
            0 | 1 => None,
            _ => candidates.iter().find(|p| is_elf(&under(root, p))),
        };
        if let Some(path) = elf.or(candidates.first()).cloned() {
            files.push(DriverFile {
                host_path: under(root, &path),
                path,
                kind: Kind::Utility,
            });
        }
    }
    for socket in SOCKETS {
        // Sockets belong to the host's running daemons, not the driver root.
        if Path::new(socket).exists() {
            files.push(DriverFile {
                path: socket.to_string(),
                host_path: PathBuf::from(socket),
                kind: Kind::Socket,
            });
        }
    }
    for dir in FIRMWARE_DIRS {
        let folder = format!("{dir}/nvidia/{version}");
        let Ok(entries) = std::fs::read_dir(under(root, &folder)) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("gsp_") && n.ends_with(".bin"))
            .collect();
        names.sort();
        for name in names {
            let path = format!("{folder}/{name}");
            files.push(DriverFile {
                host_path: under(root, &path),
                path,
                kind: Kind::Firmware,
            });
        }
        break;
    }
    files.sort();
    Ok(DriverFiles {
        version: version.to_string(),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "580.159.04";

    fn touch(root: &Path, path: &str) {
        let p = under(root, path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"not an elf").unwrap();
    }

    fn opts(root: &Path) -> Options {
        Options {
            driver_root: root.to_path_buf(),
            graphics: false,
            video: false,
        }
    }

    #[test]
    fn the_compute_set_of_the_running_version() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        for lib in [
            "libcuda.so",
            "libnvidia-ml.so",
            "libnvidia-ptxjitcompiler.so",
            "libEGL_nvidia.so",
        ] {
            touch(r, &format!("/usr/local/nvidia/lib64/{lib}.{V}"));
        }
        touch(
            r,
            &format!("/usr/lib/x86_64-linux-gnu/libnvidia-cfg.so.{V}"),
        );
        touch(r, "/usr/local/nvidia/bin/nvidia-smi");
        // A wrapper script in /usr/bin that execs the real one: not it.
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::fs::write(
            r.join("usr/bin/nvidia-smi"),
            "#!/bin/sh\nexec /usr/local/nvidia/bin/nvidia-smi \"$@\"\n",
        )
        .unwrap();
        std::fs::write(
            r.join("usr/local/nvidia/bin/nvidia-smi"),
            crate::elf::stub_shared_object("not-really"),
        )
        .unwrap();
        touch(
            r,
            &format!("/usr/local/nvidia/firmware/nvidia/{V}/gsp_ga10x.bin"),
        );
        touch(r, "/usr/local/nvidia/firmware/nvidia/1.2.3/gsp_ga10x.bin");
        let found = discover(V, &opts(r)).unwrap();
        let paths: Vec<&str> = found.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                format!("/usr/lib/x86_64-linux-gnu/libnvidia-cfg.so.{V}"),
                "/usr/local/nvidia/bin/nvidia-smi".into(),
                format!("/usr/local/nvidia/firmware/nvidia/{V}/gsp_ga10x.bin"),
                format!("/usr/local/nvidia/lib64/libcuda.so.{V}"),
                format!("/usr/local/nvidia/lib64/libnvidia-ml.so.{V}"),
                format!("/usr/local/nvidia/lib64/libnvidia-ptxjitcompiler.so.{V}"),
            ]
        );
        assert_eq!(
            found.library_dirs(),
            ["/usr/lib/x86_64-linux-gnu", "/usr/local/nvidia/lib64"]
        );
        let mut with_graphics = opts(r);
        with_graphics.graphics = true;
        let found = discover(V, &with_graphics).unwrap();
        assert!(found.files.iter().any(|f| f.path.contains("libEGL_nvidia")));
    }

    #[test]
    fn missing_and_mismatched_libraries_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        touch(r, &format!("/usr/lib64/libcuda.so.{V}"));
        touch(r, "/usr/lib64/libnvidia-ml.so.570.86.10");
        let err = discover(V, &opts(r)).unwrap_err().to_string();
        assert!(
            err.contains(
                "libnvidia-ml.so.570.86.10 is version 570.86.10 but the loaded kernel \
                          module is 580.159.04"
            ),
            "{err}"
        );
        touch(r, &format!("/usr/lib64/libnvidia-ml.so.{V}"));
        let err = discover(V, &opts(r)).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "libnvidia-ptxjitcompiler.so.{V} (the running driver's) is not installed"
            )),
            "{err}"
        );
    }

    #[test]
    fn sonames_come_from_the_cache_when_its_link_points_at_the_file() {
        use crate::ldcache::{encode, Entry, FLAG_X86_64_LIBC6};
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        let dir = "/usr/local/nvidia/lib64";
        for lib in [
            "libcuda.so",
            "libnvidia-ml.so",
            "libnvidia-ptxjitcompiler.so",
        ] {
            // Not ELF: only the cache can name the soname.
            touch(r, &format!("{dir}/{lib}.{V}"));
        }
        std::os::unix::fs::symlink(
            format!("libcuda.so.{V}"),
            under(r, &format!("{dir}/libcuda.so.1")),
        )
        .unwrap();
        let entry = |soname: &str| Entry {
            flags: FLAG_X86_64_LIBC6,
            soname: soname.into(),
            path: format!("{dir}/{soname}"),
            hwcap: 0,
        };
        std::fs::create_dir_all(r.join("etc")).unwrap();
        // libnvidia-ml.so.1 is in the cache but its link is missing: not trusted.
        std::fs::write(
            r.join("etc/ld.so.cache"),
            encode(&[
                entry("libcuda.so.1"),
                entry("libcuda.so"),
                entry("libnvidia-ml.so.1"),
            ]),
        )
        .unwrap();
        let found = discover(V, &opts(r)).unwrap();
        let soname = |stem: &str| {
            found
                .files
                .iter()
                .find(|f| f.path.contains(stem))
                .map(|f| f.kind.clone())
        };
        assert_eq!(
            soname("libcuda.so"),
            Some(Kind::Library {
                soname: Some("libcuda.so.1".into())
            })
        );
        assert_eq!(
            soname("libnvidia-ml.so"),
            Some(Kind::Library { soname: None })
        );
    }

    #[test]
    fn a_garbled_loader_cache_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("etc")).unwrap();
        std::fs::write(
            tmp.path().join("etc/ld.so.cache"),
            b"glibc-ld.so.cache1.1\xff\xff",
        )
        .unwrap();
        let err = discover(V, &opts(tmp.path())).unwrap_err().to_string();
        assert!(err.contains("ld.so.cache: truncated"), "{err}");
        // Unreadable as a file (a directory, a FIFO): one error, not a wait.
        std::fs::remove_file(tmp.path().join("etc/ld.so.cache")).unwrap();
        std::fs::create_dir(tmp.path().join("etc/ld.so.cache")).unwrap();
        let err = discover(V, &opts(tmp.path())).unwrap_err().to_string();
        assert!(
            err.contains("ld.so.cache: it is a directory, not a regular file"),
            "{err}"
        );
    }

    #[test]
    fn links_follow_the_sonames() {
        let files = DriverFiles {
            version: V.into(),
            files: vec![
                DriverFile {
                    path: format!("/usr/lib64/libcuda.so.{V}"),
                    host_path: PathBuf::new(),
                    kind: Kind::Library {
                        soname: Some("libcuda.so.1".into()),
                    },
                },
                DriverFile {
                    path: format!("/usr/lib64/libnvidia-gpucomp.so.{V}"),
                    host_path: PathBuf::new(),
                    kind: Kind::Library { soname: None },
                },
            ],
        };
        assert_eq!(
            files.links(),
            [
                (
                    "/usr/lib64/libcuda.so".to_string(),
                    "libcuda.so.1".to_string()
                ),
                (
                    "/usr/lib64/libcuda.so.1".to_string(),
                    format!("libcuda.so.{V}")
                ),
                (
                    "/usr/lib64/libnvidia-gpucomp.so".to_string(),
                    format!("libnvidia-gpucomp.so.{V}")
                ),
            ]
        );
    }
}
