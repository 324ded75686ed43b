//! The container-side stages a spec with driver files references:
//! `create-symlinks` (the soname links of the mounted libraries) and
//! `update-ldcache` (a loader cache that sees them), run by the runtime as
//! `createContainer` hooks with the OCI state on stdin.
//!
//! Both work inside the container root through [`Kernel`] — every path
//! resolved with `openat2(RESOLVE_IN_ROOT)` from an open handle on the
//! root, a final symlink never followed — and never run anything from the
//! image (no `ldconfig`: the toolkit's CVE-2024-0135..0137 ran the image's,
//! CVE-2025-23267 followed the image's symlinks). The loader cache is
//! written by this program from the image's own cache plus the driver's
//! entries, so every library the image's cache resolved still resolves;
//! `/etc/ld.so.conf` and its folder are not touched. What to link and
//! which entries to add come from the hook's arguments, which the
//! generator wrote into the spec from what it discovered on the host —
//! nothing is read from the container but the cache it extends.

use std::path::{Component, Path};

use mig_cdi_core::ldcache::{self, Entry as CacheEntry, FLAG_X86_64_LIBC6};

use crate::kernel::{Dir, Entry, Kernel};
use crate::log::Log;

/// The loader cache, inside the container.
pub const LD_CACHE: &str = "etc/ld.so.cache";
/// Largest loader cache read (a distribution's is a few hundred KiB).
const MAX_CACHE: u64 = 64 << 20;

/// Why a container stage failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("{what} {path:?} is not a plain absolute path inside the container")]
    BadPath { what: &'static str, path: String },
    #[error(
        "{path} already exists in the container as {found}, not a symlink; refusing to replace it"
    )]
    NotALink { path: String, found: String },
    #[error("the container's /{LD_CACHE} is not a loader cache ({why}); refusing to replace it")]
    BadCache { why: String },
    #[error("cannot {op} {path} in the container root: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a str) -> impl FnOnce(std::io::Error) -> ContainerError + 'a {
    move |source| ContainerError::Io {
        op,
        path: path.to_string(),
        source,
    }
}

/// `(folder relative to the root, file name)` of an absolute container
/// path made of plain names.
fn split(what: &'static str, path: &str) -> Result<(String, String), ContainerError> {
    let bad = || ContainerError::BadPath {
        what,
        path: path.to_string(),
    };
    let p = Path::new(path);
    if !p.is_absolute()
        || p.components().count() < 2
        || !p
            .components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(bad());
    }
    let name = p
        .file_name()
        .ok_or_else(bad)?
        .to_string_lossy()
        .into_owned();
    let dir = p
        .parent()
        .and_then(|d| d.strip_prefix("/").ok())
        .ok_or_else(bad)?
        .display()
        .to_string();
    Ok((dir, name))
}

fn open_folder(k: &mut dyn Kernel, root: Dir, rel: &str) -> Result<Option<Dir>, ContainerError> {
    if rel.is_empty() {
        return Ok(Some(root));
    }
    k.open_dir(root, rel).map_err(io("open", rel))
}

/// Make each `link -> target` (container path, relative target), keeping a
/// link that is already right and replacing another symlink (never
/// followed); a file or folder at a link's path is refused. Links whose
/// folder the image lacks are skipped (the library is not mounted there).
pub fn create_symlinks(
    k: &mut dyn Kernel,
    root: Dir,
    links: &[(String, String)],
    log: &mut Log,
) -> Result<usize, ContainerError> {
    let mut made = 0;
    for (link, target) in links {
        let (dir, name) = split("link", link)?;
        if target.is_empty() || target.contains('\0') {
            return Err(ContainerError::BadPath {
                what: "link target",
                path: target.clone(),
            });
        }
        let Some(folder) = open_folder(k, root, &dir)? else {
            log.line(format_args!(
                "{link}: no folder /{dir} in the image, skipped"
            ));
            continue;
        };
        match k.entry(folder, &name).map_err(io("examine", link))? {
            Entry::Missing => {}
            Entry::Symlink => {
                let current = k.link_target(folder, &name).map_err(io("read", link))?;
                if current.as_deref() == Some(target.as_str()) {
                    continue;
                }
                k.remove(folder, &name, false).map_err(io("remove", link))?;
            }
            other => {
                return Err(ContainerError::NotALink {
                    path: link.clone(),
                    found: match other {
                        Entry::Char { major, minor } => format!("char {major}:{minor}"),
                        Entry::Directory => "a directory".into(),
                        Entry::Other(what) => what.into(),
                        Entry::Missing | Entry::Symlink => unreachable!(),
                    },
                })
            }
        }
        k.symlink(folder, &name, target)
            .map_err(io("create", link))?;
        log.line(format_args!("linked {link} -> {target}"));
        made += 1;
    }
    Ok(made)
}

/// Add `(soname, path)` entries to the container's loader cache: the
/// image's entries are kept (one of ours replaces an image entry of the
/// same soname), the table is sorted as ldconfig sorts it, and the file is
/// replaced atomically. No `/etc` in the image: nothing to do.
pub fn update_ldcache(
    k: &mut dyn Kernel,
    root: Dir,
    entries: &[(String, String)],
    log: &mut Log,
) -> Result<usize, ContainerError> {
    for (soname, path) in entries {
        split("cache entry", path)?;
        if soname.is_empty() || soname.contains('/') {
            return Err(ContainerError::BadPath {
                what: "soname",
                path: soname.clone(),
            });
        }
    }
    let Some(etc) = open_folder(k, root, "etc")? else {
        log.line(format_args!(
            "no /etc in the image: no loader cache to update"
        ));
        return Ok(0);
    };
    let mut table = match k
        .read_file(etc, "ld.so.cache", MAX_CACHE)
        .map_err(io("read", "/etc/ld.so.cache"))?
    {
        Some(bytes) => {
            ldcache::parse(&bytes).map_err(|e| ContainerError::BadCache { why: e.to_string() })?
        }
        None => Vec::new(),
    };
    let ours: Vec<CacheEntry> = entries
        .iter()
        .map(|(soname, path)| CacheEntry {
            flags: FLAG_X86_64_LIBC6,
            soname: soname.clone(),
            path: path.clone(),
            hwcap: 0,
        })
        .collect();
    table.retain(|e| {
        !ours
            .iter()
            .any(|o| o.soname == e.soname && o.flags == e.flags)
    });
    table.extend(ours);
    ldcache::loader_order(&mut table);
    k.replace_file(etc, "ld.so.cache", &ldcache::encode(&table), 0o644)
        .map_err(io("write", "/etc/ld.so.cache"))?;
    log.line(format_args!(
        "loader cache: {} entries, {} of the driver's",
        table.len(),
        entries.len()
    ));
    Ok(entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::recording::{Op, Recording};

    fn kernel() -> (Recording, Dir) {
        let mut k = Recording::default();
        for d in ["usr", "usr/lib64", "etc"] {
            k.entries.insert(d.into(), Entry::Directory);
        }
        let root = k.open_root(1, Path::new("/")).unwrap();
        (k, root)
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn links_are_made_kept_or_replaced_never_over_files() {
        let (mut k, root) = kernel();
        let links = [
            pair("/usr/lib64/libcuda.so.1", "libcuda.so.580.1"),
            pair("/usr/lib64/libcuda.so", "libcuda.so.1"),
            pair("/opt/none/libx.so.1", "libx.so.2"),
        ];
        assert_eq!(
            create_symlinks(&mut k, root, &links, &mut Log::none()).unwrap(),
            2
        );
        // Again: nothing to do.
        assert_eq!(
            create_symlinks(&mut k, root, &links, &mut Log::none()).unwrap(),
            0
        );
        // An image's symlink to /etc/shadow at a link's name is replaced,
        // never followed.
        k.entries
            .insert("usr/lib64/libcuda.so.1".into(), Entry::Symlink);
        k.links
            .insert("usr/lib64/libcuda.so.1".into(), "/etc/shadow".into());
        create_symlinks(&mut k, root, &links[..1], &mut Log::none()).unwrap();
        assert_eq!(k.links["usr/lib64/libcuda.so.1"], "libcuda.so.580.1");
        assert!(k.ops.contains(&Op::Remove("usr/lib64/libcuda.so.1".into())));
        // A real file there is the image's own: refused.
        k.entries.insert(
            "usr/lib64/libcuda.so.1".into(),
            Entry::Other("a regular file"),
        );
        let err = create_symlinks(&mut k, root, &links[..1], &mut Log::none()).unwrap_err();
        assert!(err.to_string().contains("refusing to replace it"), "{err}");
        for bad in ["relative/x", "/usr/../etc/x", "/"] {
            let err = create_symlinks(&mut k, root, &[pair(bad, "t")], &mut Log::none());
            assert!(matches!(err, Err(ContainerError::BadPath { .. })), "{bad}");
        }
    }

    #[test]
    fn the_cache_keeps_the_images_entries_and_adds_ours() {
        let (mut k, root) = kernel();
        let image = vec![
            CacheEntry {
                flags: FLAG_X86_64_LIBC6,
                soname: "libc.so.6".into(),
                path: "/lib/x86_64-linux-gnu/libc.so.6".into(),
                hwcap: 0,
            },
            CacheEntry {
                flags: FLAG_X86_64_LIBC6,
                soname: "libcuda.so.1".into(),
                path: "/usr/local/cuda/compat/libcuda.so.1".into(),
                hwcap: 0,
            },
        ];
        k.files
            .insert("etc/ld.so.cache".into(), ldcache::encode(&image));
        let ours = [pair("libcuda.so.1", "/usr/lib64/libcuda.so.1")];
        update_ldcache(&mut k, root, &ours, &mut Log::none()).unwrap();
        let table = ldcache::parse(&k.files["etc/ld.so.cache"]).unwrap();
        let got: Vec<(&str, &str)> = table
            .iter()
            .map(|e| (e.soname.as_str(), e.path.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("libcuda.so.1", "/usr/lib64/libcuda.so.1"),
                ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"),
            ]
        );
        // A garbled cache is not replaced.
        k.files
            .insert("etc/ld.so.cache".into(), b"garbage".to_vec());
        assert!(matches!(
            update_ldcache(&mut k, root, &ours, &mut Log::none()),
            Err(ContainerError::BadCache { .. })
        ));
        // No cache yet: one with ours alone.
        k.files.remove("etc/ld.so.cache");
        update_ldcache(&mut k, root, &ours, &mut Log::none()).unwrap();
        assert_eq!(
            ldcache::parse(&k.files["etc/ld.so.cache"]).unwrap().len(),
            1
        );
    }
}
