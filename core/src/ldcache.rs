//! The dynamic loader's cache, `/etc/ld.so.cache`, read (and written) in
//! its binary format, without running `ldconfig`.
//!
//! Finding the driver's libraries the way the loader finds them means
//! reading this cache; running `ldconfig -p` would mean running a binary,
//! and the toolkit's CVE-2024-0135..0137 came from running the wrong one.
//! Parsing it is small:
//!
//! - glibc 2.32+ writes only the "new" format: a 48-byte header
//!   (`glibc-ld.so.cache` `1.1`, entry count, string-table length, flags,
//!   extension offset), then 24-byte entries (flags, key, value, osversion,
//!   hwcap), then NUL-terminated strings; key and value are offsets of the
//!   soname and the path, from the start of the new header.
//! - Older glibc wrote the "old" format (`ld.so-1.7.0`, 12-byte entries)
//!   first, then the new one at the next 8-byte boundary; the old part is
//!   skipped.
//!
//! Every offset is bounds-checked: a truncated or garbled cache is an error
//! that says where, never a panic or a read past the end.

use std::fmt;

const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_HEADER: usize = 48;
const NEW_ENTRY: usize = 24;
const OLD_HEADER: usize = 16;
const OLD_ENTRY: usize = 12;

/// `FLAG_ELF_LIBC6 | FLAG_X8664_LIB64`: a 64-bit x86 library.
pub const FLAG_X86_64_LIBC6: i32 = 0x0303;
/// The type bits of an entry's flags.
pub const FLAG_TYPE_MASK: i32 = 0x00ff;
/// `FLAG_ELF_LIBC6`.
pub const FLAG_ELF_LIBC6: i32 = 0x0003;

/// One library the loader knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// ELF class and ABI (`0x0303` is libc6, x86-64).
    pub flags: i32,
    /// The soname, e.g. `libcuda.so.1`.
    pub soname: String,
    /// The path the loader opens, e.g. `/usr/lib/x86_64-linux-gnu/libcuda.so.1`.
    pub path: String,
    pub hwcap: u64,
}

/// Why a cache could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheError {
    /// Neither format's magic at the start.
    NotACache,
    /// The file ends inside what its header promises.
    Truncated { at: usize, need: usize, len: usize },
    /// A string offset outside the file, or a string without its NUL.
    BadString { entry: usize },
    /// A string that is not UTF-8.
    NotText { entry: usize },
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotACache => write!(
                f,
                "not a loader cache (no glibc-ld.so.cache1.1 header); regenerate it with ldconfig"
            ),
            Self::Truncated { at, need, len } => write!(
                f,
                "truncated: {need} bytes needed at offset {at}, the file has {len}; regenerate \
                 it with ldconfig"
            ),
            Self::BadString { entry } => write!(
                f,
                "entry {entry} points outside the string table; regenerate it with ldconfig"
            ),
            Self::NotText { entry } => write!(f, "entry {entry} names a path that is not UTF-8"),
        }
    }
}

impl std::error::Error for CacheError {}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, CacheError> {
    let slice = bytes.get(at..at + 4).ok_or(CacheError::Truncated {
        at,
        need: 4,
        len: bytes.len(),
    })?;
    Ok(u32::from_le_bytes(slice.try_into().expect("4 bytes")))
}

fn u64_at(bytes: &[u8], at: usize) -> Result<u64, CacheError> {
    let slice = bytes.get(at..at + 8).ok_or(CacheError::Truncated {
        at,
        need: 8,
        len: bytes.len(),
    })?;
    Ok(u64::from_le_bytes(slice.try_into().expect("8 bytes")))
}

/// Where the new-format header starts.
fn new_header(bytes: &[u8]) -> Result<usize, CacheError> {
    if bytes.starts_with(NEW_MAGIC) {
        return Ok(0);
    }
    if !bytes.starts_with(OLD_MAGIC) {
        return Err(CacheError::NotACache);
    }
    let nlibs = u32_at(bytes, OLD_MAGIC.len() + 1)? as usize;
    let end = OLD_HEADER + nlibs * OLD_ENTRY;
    // The new header follows, aligned; try the alignments glibc has used.
    for align in [8, 4] {
        let at = end.div_ceil(align) * align;
        if bytes
            .get(at..)
            .is_some_and(|rest| rest.starts_with(NEW_MAGIC))
        {
            return Ok(at);
        }
    }
    Err(CacheError::NotACache)
}

fn string(bytes: &[u8], base: usize, offset: u32, entry: usize) -> Result<String, CacheError> {
    let start = base
        .checked_add(offset as usize)
        .filter(|s| *s < bytes.len())
        .ok_or(CacheError::BadString { entry })?;
    let rest = &bytes[start..];
    let end = rest
        .iter()
        .position(|b| *b == 0)
        .ok_or(CacheError::BadString { entry })?;
    String::from_utf8(rest[..end].to_vec()).map_err(|_| CacheError::NotText { entry })
}

/// Every entry of a cache file's bytes, in file order (the loader's order
/// of preference).
pub fn parse(bytes: &[u8]) -> Result<Vec<Entry>, CacheError> {
    let base = new_header(bytes)?;
    // Little-endian x86 caches only: the flags byte says the endianness
    // (0 unknown, 2 little); the counts would be nonsense otherwise.
    let nlibs = u32_at(bytes, base + 20)? as usize;
    let table = base + NEW_HEADER;
    let need = nlibs.checked_mul(NEW_ENTRY).ok_or(CacheError::Truncated {
        at: table,
        need: usize::MAX,
        len: bytes.len(),
    })?;
    if bytes.len() < table + need {
        return Err(CacheError::Truncated {
            at: table,
            need,
            len: bytes.len(),
        });
    }
    let mut out = Vec::with_capacity(nlibs);
    for entry in 0..nlibs {
        let at = table + entry * NEW_ENTRY;
        let flags = u32_at(bytes, at)? as i32;
        let key = u32_at(bytes, at + 4)?;
        let value = u32_at(bytes, at + 8)?;
        let hwcap = u64_at(bytes, at + 16)?;
        out.push(Entry {
            flags,
            soname: string(bytes, base, key, entry)?,
            path: string(bytes, base, value, entry)?,
            hwcap,
        });
    }
    Ok(out)
}

/// A new-format cache holding `entries`, in that order (the loader
/// searches the table by binary search over sonames as ldconfig sorts
/// them, so callers pass them sorted with [`loader_order`]).
pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut strings: Vec<u8> = Vec::new();
    let mut offsets = Vec::with_capacity(entries.len());
    let strings_at = NEW_HEADER + entries.len() * NEW_ENTRY;
    for entry in entries {
        let key = strings_at + strings.len();
        strings.extend_from_slice(entry.soname.as_bytes());
        strings.push(0);
        let value = strings_at + strings.len();
        strings.extend_from_slice(entry.path.as_bytes());
        strings.push(0);
        offsets.push((key as u32, value as u32));
    }
    let mut out = Vec::with_capacity(strings_at + strings.len());
    out.extend_from_slice(NEW_MAGIC);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    // Flags: little endian (2), then padding, extension offset 0, unused.
    out.push(2);
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    for (entry, (key, value)) in entries.iter().zip(offsets) {
        out.extend_from_slice(&entry.flags.to_le_bytes());
        out.extend_from_slice(&key.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&entry.hwcap.to_le_bytes());
    }
    out.extend_from_slice(&strings);
    out
}

/// ldconfig's order: sonames compared as `_dl_cache_libcmp` does (digit
/// runs by value, everything else bytewise), descending; ties keep their
/// order.
pub fn loader_order(entries: &mut [Entry]) {
    entries.sort_by(|a, b| libcmp(&b.soname, &a.soname));
}

/// glibc's `_dl_cache_libcmp`: digit runs compare by value; a digit sorts
/// after a non-digit.
pub fn libcmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (ca, cb) = (a[i], b[j]);
        if ca.is_ascii_digit() {
            if !cb.is_ascii_digit() {
                return Ordering::Greater;
            }
            let (mut va, mut vb) = (0u64, 0u64);
            while i < a.len() && a[i].is_ascii_digit() {
                va = va.saturating_mul(10).saturating_add(u64::from(a[i] - b'0'));
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                vb = vb.saturating_mul(10).saturating_add(u64::from(b[j] - b'0'));
                j += 1;
            }
            match va.cmp(&vb) {
                Ordering::Equal => continue,
                other => return other,
            }
        } else if cb.is_ascii_digit() {
            return Ordering::Less;
        } else if ca != cb {
            return ca.cmp(&cb);
        } else {
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(soname: &str, path: &str) -> Entry {
        Entry {
            flags: FLAG_X86_64_LIBC6,
            soname: soname.into(),
            path: path.into(),
            hwcap: 0,
        }
    }

    #[test]
    fn encode_then_parse_is_the_same() {
        let entries = vec![
            entry("libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.1"),
            entry("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"),
        ];
        assert_eq!(parse(&encode(&entries)).unwrap(), entries);
        assert_eq!(parse(&encode(&[])).unwrap(), []);
    }

    #[test]
    fn this_machines_cache_reads_as_ldconfig_prints_it() {
        let Ok(bytes) = std::fs::read("/etc/ld.so.cache") else {
            return;
        };
        let ours = parse(&bytes).unwrap();
        // ldconfig itself, in a test only, to check the parser.
        let Ok(out) = std::process::Command::new("/sbin/ldconfig")
            .arg("-p")
            .output()
        else {
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let theirs: Vec<(&str, &str)> = text
            .lines()
            .skip(1)
            .filter_map(|l| {
                let (left, path) = l.trim().split_once(" => ")?;
                Some((left.split(' ').next()?, path))
            })
            .collect();
        let ours: Vec<(&str, &str)> = ours
            .iter()
            .map(|e| (e.soname.as_str(), e.path.as_str()))
            .collect();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let good = encode(&[entry("liba.so.1", "/a/liba.so.1")]);
        assert_eq!(parse(b"").unwrap_err(), CacheError::NotACache);
        assert_eq!(parse(b"hello world").unwrap_err(), CacheError::NotACache);
        for cut in 0..good.len() {
            assert!(parse(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = good.clone();
        bad[NEW_HEADER + 4..NEW_HEADER + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&bad).unwrap_err(), CacheError::BadString { entry: 0 });
        let mut huge = good.clone();
        huge[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            parse(&huge).unwrap_err(),
            CacheError::Truncated { .. }
        ));
    }

    #[test]
    fn an_old_format_prefix_is_skipped() {
        let new = encode(&[entry("liba.so.1", "/a/liba.so.1")]);
        let mut old = OLD_MAGIC.to_vec();
        old.push(0);
        old.extend_from_slice(&1u32.to_le_bytes());
        old.extend_from_slice(&[0; OLD_ENTRY]);
        while !old.len().is_multiple_of(8) {
            old.push(0);
        }
        // Offsets in the new part are relative to its own header.
        old.extend_from_slice(&new);
        let got = parse(&old).unwrap();
        assert_eq!(got[0].soname, "liba.so.1");
    }

    #[test]
    fn loader_order_is_ldconfigs() {
        use std::cmp::Ordering::*;
        assert_eq!(libcmp("libc.so.10", "libc.so.9"), Greater);
        assert_eq!(libcmp("libcuda.so.1", "libcuda.so"), Greater);
        assert_eq!(libcmp("liba.so", "libb.so"), Less);
        assert_eq!(libcmp("libx.so.1", "libx.so.1"), Equal);
        let mut e = vec![entry("liba.so.1", "/a"), entry("libz.so.1", "/z")];
        loader_order(&mut e);
        assert_eq!(e[0].soname, "libz.so.1");
    }
}
