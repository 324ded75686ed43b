//! The one module that changes anything: device nodes, directories and
//! cgroup files, behind the small [`Kernel`] trait.
//!
//! `main` passes [`RealKernel`] to the injector; tests pass a recording
//! double. Every path inside the container root is resolved by the kernel
//! with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` relative to an
//! open handle on that root, so no symlink in the image — absolute,
//! `../..`, or through `/proc/<pid>/root` — can take a lookup outside it;
//! creations and removals then act on a single name under an open parent
//! handle (`mknodat`, `mkdirat`, `fchownat(AT_SYMLINK_NOFOLLOW)`,
//! `unlinkat`), so a symlink in the last component is never followed
//! either.
//!
//! The container root is reached through `/proc/<pid>/root` — the root of
//! the container's mount namespace, where the runtime has already mounted
//! `/dev` (a tmpfs) under `root.path` — opened with a plain `open`: that
//! magic link is the trusted, host-side entry point, and `openat2` with
//! `RESOLVE_IN_ROOT` refuses to cross magic links at all (tested below).
//! `root.path` is then resolved *inside* that namespace root, so even a
//! host-side symlink in it (a bundle's `rootfs -> /var/lib/...`) resolves
//! in the container's namespace, not in the hook's.
//!
//! No `unsafe` here: nix wraps each syscall.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, makedev, mkdirat, mknodat, umask, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use mig_cdi_core::nodes::{dev_major, dev_minor};

/// An open directory inside the container root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dir(pub usize);

/// What a single name in a directory is (symlinks not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Missing,
    Char {
        major: u32,
        minor: u32,
    },
    Directory,
    Symlink,
    /// Regular file, block device, socket, FIFO.
    Other(&'static str),
}

/// The kernel operations the injector needs.
pub trait Kernel {
    /// Open the container's root filesystem `root` (absolute) as the
    /// mount namespace of `pid` sees it.
    fn open_root(&mut self, pid: i32, root: &Path) -> io::Result<Dir>;
    /// Open directory `rel` resolved inside `root`; `None` if it does not
    /// exist.
    fn open_dir(&mut self, root: Dir, rel: &str) -> io::Result<Option<Dir>>;
    /// What `name` (one component) in `dir` is.
    fn entry(&mut self, dir: Dir, name: &str) -> io::Result<Entry>;
    fn mkdir(&mut self, dir: Dir, name: &str, mode: u32) -> io::Result<()>;
    /// Create character device `name` with exactly `mode`.
    fn mknod(&mut self, dir: Dir, name: &str, mode: u32, major: u32, minor: u32) -> io::Result<()>;
    fn chown(&mut self, dir: Dir, name: &str, uid: u32, gid: u32) -> io::Result<()>;
    fn remove(&mut self, dir: Dir, name: &str, is_dir: bool) -> io::Result<()>;
    /// Write one line to a cgroup control file (`devices.allow`).
    fn write_cgroup(&mut self, file: &Path, line: &str) -> io::Result<()>;
    /// The target of symlink `name` in `dir` (`None`: not a symlink, or
    /// missing).
    fn link_target(&mut self, dir: Dir, name: &str) -> io::Result<Option<String>>;
    /// Make symlink `name` -> `target` in `dir` (never followed).
    fn symlink(&mut self, dir: Dir, name: &str, target: &str) -> io::Result<()>;
    /// The bytes of regular file `name` in `dir` (not following a final
    /// symlink), at most `max`; `None` when it does not exist.
    fn read_file(&mut self, dir: Dir, name: &str, max: u64) -> io::Result<Option<Vec<u8>>>;
    /// Replace `name` in `dir` with `bytes` (mode `mode`) through a new
    /// file renamed over it: readers see the old or the new file, whole.
    fn replace_file(&mut self, dir: Dir, name: &str, bytes: &[u8], mode: u32) -> io::Result<()>;
}

/// The real kernel.
pub struct RealKernel {
    dirs: Vec<OwnedFd>,
}

const IN_ROOT: ResolveFlag = ResolveFlag::RESOLVE_IN_ROOT.union(ResolveFlag::RESOLVE_NO_MAGICLINKS);

fn dir_how() -> OpenHow {
    OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(IN_ROOT)
}

impl RealKernel {
    /// Also clears the umask, so nodes get exactly the driver's mode.
    // Not `Default`: creating the kernel clears the process umask.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        umask(Mode::empty());
        Self { dirs: Vec::new() }
    }

    fn fd(&self, dir: Dir) -> &OwnedFd {
        &self.dirs[dir.0]
    }

    fn keep(&mut self, fd: OwnedFd) -> Dir {
        self.dirs.push(fd);
        Dir(self.dirs.len() - 1)
    }
}

/// A single path component: the only thing the *at calls below get.
fn component(name: &str) -> io::Result<&str> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a single path component"),
        ));
    }
    Ok(name)
}

impl Kernel for RealKernel {
    fn open_root(&mut self, pid: i32, root: &Path) -> io::Result<Dir> {
        let namespace_root = nix::fcntl::open(
            format!("/proc/{pid}/root").as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let rel = root.strip_prefix("/").unwrap_or(root);
        let fd = if rel.as_os_str().is_empty() {
            namespace_root
        } else {
            openat2(&namespace_root, rel, dir_how())?
        };
        Ok(self.keep(fd))
    }

    fn open_dir(&mut self, root: Dir, rel: &str) -> io::Result<Option<Dir>> {
        match openat2(self.fd(root), rel, dir_how()) {
            Ok(fd) => Ok(Some(self.keep(fd))),
            Err(Errno::ENOENT) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    fn entry(&mut self, dir: Dir, name: &str) -> io::Result<Entry> {
        let name = component(name)?;
        let stat = match fstatat(self.fd(dir), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::ENOENT) => return Ok(Entry::Missing),
            Err(err) => return Err(err.into()),
        };
        let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
        Ok(match kind {
            SFlag::S_IFCHR => Entry::Char {
                major: dev_major(stat.st_rdev),
                minor: dev_minor(stat.st_rdev),
            },
            SFlag::S_IFDIR => Entry::Directory,
            SFlag::S_IFLNK => Entry::Symlink,
            SFlag::S_IFREG => Entry::Other("a regular file"),
            SFlag::S_IFBLK => Entry::Other("a block device"),
            SFlag::S_IFIFO => Entry::Other("a FIFO"),
            SFlag::S_IFSOCK => Entry::Other("a socket"),
            _ => Entry::Other("an unknown file type"),
        })
    }

    fn mkdir(&mut self, dir: Dir, name: &str, mode: u32) -> io::Result<()> {
        let name = component(name)?;
        Ok(mkdirat(self.fd(dir), name, Mode::from_bits_truncate(mode))?)
    }

    fn mknod(&mut self, dir: Dir, name: &str, mode: u32, major: u32, minor: u32) -> io::Result<()> {
        let name = component(name)?;
        let dev = makedev(u64::from(major), u64::from(minor));
        Ok(mknodat(
            self.fd(dir),
            name,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(mode),
            dev,
        )?)
    }

    fn chown(&mut self, dir: Dir, name: &str, uid: u32, gid: u32) -> io::Result<()> {
        let name = component(name)?;
        Ok(fchownat(
            self.fd(dir),
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?)
    }

    fn remove(&mut self, dir: Dir, name: &str, is_dir: bool) -> io::Result<()> {
        let name = component(name)?;
        let flag = if is_dir {
            UnlinkatFlags::RemoveDir
        } else {
            UnlinkatFlags::NoRemoveDir
        };
        Ok(unlinkat(self.fd(dir), name, flag)?)
    }

    fn write_cgroup(&mut self, file: &Path, line: &str) -> io::Result<()> {
        // cgroupfs has no symlinks; refuse one rather than follow it.
        let mut f = OpenOptions::new()
            .write(true)
            .custom_flags(OFlag::O_NOFOLLOW.bits())
            .open(file)?;
        f.write_all(line.as_bytes())
    }

    fn link_target(&mut self, dir: Dir, name: &str) -> io::Result<Option<String>> {
        let name = component(name)?;
        match nix::fcntl::readlinkat(self.fd(dir), name) {
            Ok(target) => Ok(Some(target.to_string_lossy().into_owned())),
            Err(Errno::ENOENT | Errno::EINVAL) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    fn symlink(&mut self, dir: Dir, name: &str, target: &str) -> io::Result<()> {
        let name = component(name)?;
        Ok(symlinkat(target, self.fd(dir), name)?)
    }

    fn read_file(&mut self, dir: Dir, name: &str, max: u64) -> io::Result<Option<Vec<u8>>> {
        use std::io::Read;
        let name = component(name)?;
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)
            .resolve(IN_ROOT);
        let fd = match openat2(self.fd(dir), name, how) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        let file = std::fs::File::from(fd);
        if !file.metadata()?.is_file() {
            return Err(io::Error::other(format!("{name} is not a regular file")));
        }
        let mut bytes = Vec::new();
        file.take(max + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > max {
            return Err(io::Error::other(format!(
                "{name} holds more than {max} bytes"
            )));
        }
        Ok(Some(bytes))
    }

    fn replace_file(&mut self, dir: Dir, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
        let name = component(name)?;
        let tmp = format!(".{name}.mig-cdi-hook.{}", std::process::id());
        let how = OpenHow::new()
            .flags(
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
            )
            .mode(Mode::from_bits_truncate(mode))
            .resolve(IN_ROOT);
        let mut file = std::fs::File::from(openat2(self.fd(dir), tmp.as_str(), how)?);
        let written = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| {
                nix::fcntl::renameat(self.fd(dir), tmp.as_str(), self.fd(dir), name)
                    .map_err(io::Error::from)
            });
        if written.is_err() {
            let _ = unlinkat(self.fd(dir), tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        written
    }
}

pub mod recording {
    //! A recording double for the injector: an in-memory container root
    //! that records every operation. Public, so every test picks it
    //! explicitly; production code never does.

    use std::collections::BTreeMap;
    use std::io;
    use std::path::Path;

    use nix::errno::Errno;

    use super::{Dir, Entry, Kernel};

    /// What the double did, in order.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Op {
        Mkdir(String),
        Mknod(String, u32, u32, u32),
        Chown(String, u32, u32),
        Remove(String),
        Cgroup(String, String),
        Symlink(String, String),
        Replace(String),
    }

    /// An in-memory container root: paths are full relative paths; no
    /// symlinks are followed (tests of resolution use the real kernel).
    #[derive(Default)]
    pub struct Recording {
        pub ops: Vec<Op>,
        pub entries: BTreeMap<String, Entry>,
        /// Symlink targets, by path.
        pub links: BTreeMap<String, String>,
        /// Regular files' bytes, by path.
        pub files: BTreeMap<String, Vec<u8>>,
        dirs: Vec<String>,
        /// Fail the n-th mknod (0-based) with EIO.
        pub fail_mknod: Option<usize>,
        pub fail_cgroup: Option<usize>,
        mknods: usize,
        cgroups: usize,
    }

    impl Recording {
        fn path(&self, dir: Dir, name: &str) -> String {
            let base = &self.dirs[dir.0];
            if base.is_empty() {
                name.to_string()
            } else {
                format!("{base}/{name}")
            }
        }
        fn push_dir(&mut self, rel: &str) -> Dir {
            self.dirs.push(rel.to_string());
            Dir(self.dirs.len() - 1)
        }
    }

    impl Kernel for Recording {
        fn open_root(&mut self, _pid: i32, _root: &Path) -> io::Result<Dir> {
            Ok(self.push_dir(""))
        }
        fn open_dir(&mut self, _root: Dir, rel: &str) -> io::Result<Option<Dir>> {
            match self.entries.get(rel) {
                Some(Entry::Directory) => Ok(Some(self.push_dir(rel))),
                // A symlink here stands for a dangling one (ENOENT).
                None | Some(Entry::Missing | Entry::Symlink) => Ok(None),
                Some(_) => Err(io::Error::from_raw_os_error(Errno::ENOTDIR as i32)),
            }
        }
        fn entry(&mut self, dir: Dir, name: &str) -> io::Result<Entry> {
            let path = self.path(dir, name);
            Ok(self.entries.get(&path).copied().unwrap_or(Entry::Missing))
        }
        fn mkdir(&mut self, dir: Dir, name: &str, _mode: u32) -> io::Result<()> {
            let path = self.path(dir, name);
            self.entries.insert(path.clone(), Entry::Directory);
            self.ops.push(Op::Mkdir(path));
            Ok(())
        }
        fn mknod(
            &mut self,
            dir: Dir,
            name: &str,
            mode: u32,
            major: u32,
            minor: u32,
        ) -> io::Result<()> {
            let n = self.mknods;
            self.mknods += 1;
            if self.fail_mknod == Some(n) {
                return Err(io::Error::from_raw_os_error(Errno::EIO as i32));
            }
            let path = self.path(dir, name);
            self.entries
                .insert(path.clone(), Entry::Char { major, minor });
            self.ops.push(Op::Mknod(path, mode, major, minor));
            Ok(())
        }
        fn chown(&mut self, dir: Dir, name: &str, uid: u32, gid: u32) -> io::Result<()> {
            let path = self.path(dir, name);
            self.ops.push(Op::Chown(path, uid, gid));
            Ok(())
        }
        fn remove(&mut self, dir: Dir, name: &str, _is_dir: bool) -> io::Result<()> {
            let path = self.path(dir, name);
            self.entries.remove(&path);
            self.links.remove(&path);
            self.files.remove(&path);
            self.ops.push(Op::Remove(path));
            Ok(())
        }
        fn write_cgroup(&mut self, file: &Path, line: &str) -> io::Result<()> {
            let n = self.cgroups;
            self.cgroups += 1;
            if self.fail_cgroup == Some(n) {
                return Err(io::Error::from_raw_os_error(Errno::EPERM as i32));
            }
            self.ops
                .push(Op::Cgroup(file.display().to_string(), line.to_string()));
            Ok(())
        }
        fn link_target(&mut self, dir: Dir, name: &str) -> io::Result<Option<String>> {
            let path = self.path(dir, name);
            Ok(self.links.get(&path).cloned())
        }
        fn symlink(&mut self, dir: Dir, name: &str, target: &str) -> io::Result<()> {
            let path = self.path(dir, name);
            if self.entries.contains_key(&path) {
                return Err(io::Error::from_raw_os_error(Errno::EEXIST as i32));
            }
            self.entries.insert(path.clone(), Entry::Symlink);
            self.links.insert(path.clone(), target.to_string());
            self.ops.push(Op::Symlink(path, target.to_string()));
            Ok(())
        }
        fn read_file(&mut self, dir: Dir, name: &str, _max: u64) -> io::Result<Option<Vec<u8>>> {
            let path = self.path(dir, name);
            Ok(self.files.get(&path).cloned())
        }
        fn replace_file(
            &mut self,
            dir: Dir,
            name: &str,
            bytes: &[u8],
            _mode: u32,
        ) -> io::Result<()> {
            let path = self.path(dir, name);
            self.entries
                .insert(path.clone(), Entry::Other("a regular file"));
            self.files.insert(path.clone(), bytes.to_vec());
            self.ops.push(Op::Replace(path));
            Ok(())
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The real kernel on temporary trees (needs root for mknod, as the
    //! hook itself does), and the recording double for the injector.

    use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};

    use super::*;

    fn own_pid() -> i32 {
        std::process::id() as i32
    }

    /// A container root in a temp dir, opened as the hook opens one.
    fn root() -> (tempfile::TempDir, RealKernel, Dir) {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        let mut k = RealKernel::new();
        let r = k.open_root(own_pid(), &rootfs).unwrap();
        (dir, k, r)
    }

    #[test]
    fn absolute_and_dotdot_symlinks_stay_inside_the_root() {
        let (tmp, mut k, r) = root();
        let rootfs = tmp.path().join("rootfs");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        symlink(&outside, rootfs.join("abs")).unwrap();
        symlink("../../../../../outside", rootfs.join("rel")).unwrap();
        std::fs::create_dir_all(rootfs.join(outside.strip_prefix("/").unwrap())).unwrap();
        for link in ["abs", "rel"] {
            let d = k.open_dir(r, link).unwrap();
            if let Some(d) = d {
                k.mkdir(d, &format!("made-via-{link}"), 0o755).unwrap();
            }
        }
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing outside the root"
        );
        assert!(rootfs
            .join(outside.strip_prefix("/").unwrap())
            .join("made-via-abs")
            .is_dir());
    }

    #[test]
    fn magic_links_are_refused_under_resolve_in_root() {
        // /proc/self/root is a magic link to "/"; resolving through it must
        // fail, which is why open_root opens /proc/<pid>/root itself with
        // plain open and never resolves image paths through /proc.
        let proc_self = nix::fcntl::open(
            "/proc/self",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        for resolve in [
            ResolveFlag::RESOLVE_IN_ROOT,
            ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        ] {
            let how = OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                .resolve(resolve);
            let err = openat2(&proc_self, "root/tmp", how).unwrap_err();
            assert!(
                matches!(err, Errno::EXDEV | Errno::ELOOP),
                "{resolve:?}: {err}"
            );
        }
        // (An image symlink into the container's own procfs, e.g.
        // `dev -> /proc/1/root/...`, meets the same refusal: the e2e test
        // `hook_hostile` runs one under runc.)
    }

    #[test]
    fn root_path_symlink_resolves_in_the_namespace() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        std::fs::write(tmp.path().join("real/marker"), "x").unwrap();
        symlink(tmp.path().join("real"), tmp.path().join("rootfs")).unwrap();
        let mut k = RealKernel::new();
        let r = k.open_root(own_pid(), &tmp.path().join("rootfs")).unwrap();
        assert_eq!(
            k.entry(r, "marker").unwrap(),
            Entry::Other("a regular file")
        );
    }

    #[test]
    fn files_and_links_stay_inside_the_root() {
        let (tmp, mut k, r) = root();
        let rootfs = tmp.path().join("rootfs");
        std::fs::create_dir(rootfs.join("etc")).unwrap();
        let host_file = tmp.path().join("host-secret");
        std::fs::write(&host_file, "host").unwrap();
        let etc = k.open_dir(r, "etc").unwrap().unwrap();
        // A cache that is a symlink to a host file is not read through.
        symlink(&host_file, rootfs.join("etc/ld.so.cache")).unwrap();
        assert!(k.read_file(etc, "ld.so.cache", 1 << 20).is_err());
        // Replacing it renames over the link; the host file stays.
        k.replace_file(etc, "ld.so.cache", b"new", 0o644).unwrap();
        assert_eq!(std::fs::read(&host_file).unwrap(), b"host");
        assert_eq!(
            std::fs::read(rootfs.join("etc/ld.so.cache")).unwrap(),
            b"new"
        );
        assert_eq!(
            std::fs::metadata(rootfs.join("etc/ld.so.cache"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o644
        );
        assert_eq!(
            k.read_file(etc, "ld.so.cache", 10).unwrap().as_deref(),
            Some(&b"new"[..])
        );
        assert!(k.read_file(etc, "ld.so.cache", 2).is_err(), "over the cap");
        assert_eq!(k.read_file(etc, "missing", 10).unwrap(), None);
        // Links are made and read, never followed.
        k.symlink(etc, "l", "/etc/shadow").unwrap();
        assert_eq!(
            k.link_target(etc, "l").unwrap().as_deref(),
            Some("/etc/shadow")
        );
        assert_eq!(k.link_target(etc, "ld.so.cache").unwrap(), None);
        assert!(k.symlink(etc, "../x", "y").is_err());
    }

    #[test]
    fn nodes_get_exact_mode_owner_and_never_follow_a_final_symlink() {
        let (tmp, mut k, r) = root();
        let rootfs = tmp.path().join("rootfs");
        k.mkdir(r, "dev", 0o755).unwrap();
        let dev = k.open_dir(r, "dev").unwrap().unwrap();
        k.mknod(dev, "nvidia0", 0o444, 195, 0).unwrap();
        k.chown(dev, "nvidia0", 1000, 2000).unwrap();
        let meta = std::fs::symlink_metadata(rootfs.join("dev/nvidia0")).unwrap();
        assert!(meta.file_type().is_char_device());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o444);
        assert_eq!((meta.uid(), meta.gid()), (1000, 2000));
        assert_eq!(
            k.entry(dev, "nvidia0").unwrap(),
            Entry::Char {
                major: 195,
                minor: 0
            }
        );

        let target = tmp.path().join("host-file");
        std::fs::write(&target, "host").unwrap();
        symlink(&target, rootfs.join("dev/link")).unwrap();
        assert_eq!(k.entry(dev, "link").unwrap(), Entry::Symlink);
        assert!(k.mknod(dev, "link", 0o666, 195, 1).is_err());
        k.chown(dev, "link", 1234, 1234).unwrap();
        assert_eq!(
            std::fs::metadata(&target).unwrap().uid(),
            0,
            "target untouched"
        );
        k.remove(dev, "nvidia0", false).unwrap();
        assert_eq!(k.entry(dev, "nvidia0").unwrap(), Entry::Missing);
        assert!(k.entry(dev, "../x").is_err(), "only single components");
    }
}
