//! The soname of a shared library, read from its ELF dynamic section.
//!
//! A container needs the soname link (`libcuda.so.1 -> libcuda.so.580.95`)
//! for the loader to find a mounted driver library; the soname is what the
//! library says it is (`DT_SONAME`), not what its file name suggests. Only
//! 64-bit little-endian ELF (x86-64, aarch64) is read; every offset is
//! bounds-checked, so a truncated or hostile file gives `None`.

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const DT_NULL: u64 = 0;
const DT_STRTAB: u64 = 5;
const DT_SONAME: u64 = 14;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// `DT_SONAME` of a 64-bit little-endian ELF shared object, from its
/// bytes.
pub fn soname(bytes: &[u8]) -> Option<String> {
    soname_at(&|offset, len| {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?.min(bytes.len());
        bytes.get(start..end).map(<[u8]>::to_vec)
    })
}

/// `DT_SONAME` of the library in `file`, reading only the few small
/// pieces it needs (a driver library is up to ~100 MiB).
pub fn soname_of(file: &std::fs::File) -> Option<String> {
    use std::os::unix::fs::FileExt;
    soname_at(&|offset, len| {
        let mut buf = vec![0; len];
        let mut got = 0;
        while got < len {
            match file.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(_) => return None,
            }
        }
        buf.truncate(got);
        Some(buf)
    })
}

/// [`soname`] over a reader of up to `len` bytes at `offset` (fewer at the
/// end of the file; every field read is bounds-checked).
fn soname_at(read: &dyn Fn(u64, usize) -> Option<Vec<u8>>) -> Option<String> {
    let header = read(0, 64)?;
    // e_ident: magic, class 2 (64-bit), data 1 (little endian).
    if header.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let phoff = u64_at(&header, 0x20)?;
    let phentsize = usize::from(u16_at(&header, 0x36)?);
    let phnum = usize::from(u16_at(&header, 0x38)?).min(256);
    if phentsize < 56 {
        return None;
    }
    let table = read(phoff, phentsize.checked_mul(phnum)?)?;
    let mut loads = Vec::new();
    let mut dynamic = None;
    for i in 0..phnum {
        let at = i * phentsize;
        let kind = u32_at(&table, at)?;
        let offset = u64_at(&table, at + 8)?;
        let vaddr = u64_at(&table, at + 16)?;
        let filesz = u64_at(&table, at + 32)?;
        match kind {
            PT_LOAD => loads.push((vaddr, offset, filesz)),
            PT_DYNAMIC => dynamic = Some((offset, filesz)),
            _ => {}
        }
    }
    let (dyn_off, dyn_size) = dynamic?;
    let count = usize::try_from(dyn_size / 16).ok()?.min(4096);
    let entries = read(dyn_off, count * 16)?;
    let (mut strtab, mut soname) = (None, None);
    for i in 0..count {
        let tag = u64_at(&entries, i * 16)?;
        let value = u64_at(&entries, i * 16 + 8)?;
        match tag {
            DT_NULL => break,
            DT_STRTAB => strtab = Some(value),
            DT_SONAME => soname = Some(value),
            _ => {}
        }
    }
    // DT_STRTAB is a virtual address: map it through the PT_LOAD segments.
    let strtab = strtab?;
    let file_off = loads.iter().find_map(|&(vaddr, offset, filesz)| {
        (strtab >= vaddr && strtab < vaddr.checked_add(filesz)?)
            .then(|| offset.checked_add(strtab - vaddr))
            .flatten()
    })?;
    let start = file_off.checked_add(soname?)?;
    // A soname is short: 256 bytes (fewer at the end of the file).
    let name = read(start, 256)?;
    let end = name.iter().position(|b| *b == 0)?;
    String::from_utf8(name[..end].to_vec()).ok()
}

/// A minimal 64-bit x86 ELF shared object that only names `soname`: what
/// a simulated driver root holds in place of the real libraries, so that
/// discovery and the specs it gives behave as on a real host (it cannot be
/// loaded; tests that load libraries build real ones).
pub fn stub_shared_object(soname: &str) -> Vec<u8> {
    const PHDRS: u64 = 64;
    const DYNAMIC: u64 = PHDRS + 2 * 56;
    const STRTAB: u64 = DYNAMIC + 3 * 16;
    let size = STRTAB + soname.len() as u64 + 2;
    let mut out = Vec::with_capacity(size as usize);
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&3u16.to_le_bytes()); // ET_DYN
    out.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // entry
    out.extend_from_slice(&PHDRS.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    out.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 2, 64, 0, 0] {
        out.extend_from_slice(&half.to_le_bytes());
    }
    let phdr = |out: &mut Vec<u8>, kind: u32, offset: u64, filesz: u64, align: u64| {
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&4u32.to_le_bytes()); // PF_R
        for v in [offset, offset, offset, filesz, filesz, align] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    };
    phdr(&mut out, PT_LOAD, 0, size, 0x1000);
    phdr(&mut out, PT_DYNAMIC, DYNAMIC, 48, 8);
    for (tag, value) in [(DT_STRTAB, STRTAB), (DT_SONAME, 1), (DT_NULL, 0)] {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.push(0);
    out.extend_from_slice(soname.as_bytes());
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_library_gives_its_soname() {
        for (path, want) in [
            ("/lib/x86_64-linux-gnu/libc.so.6", "libc.so.6"),
            ("/lib/x86_64-linux-gnu/libm.so.6", "libm.so.6"),
        ] {
            let Ok(bytes) = std::fs::read(path) else {
                continue;
            };
            assert_eq!(soname(&bytes).as_deref(), Some(want), "{path}");
            let file = std::fs::File::open(path).unwrap();
            assert_eq!(soname_of(&file).as_deref(), Some(want), "{path}");
        }
    }

    #[test]
    fn a_stub_names_its_soname() {
        assert_eq!(
            soname(&stub_shared_object("libcuda.so.1")).as_deref(),
            Some("libcuda.so.1")
        );
    }

    #[test]
    fn garbage_gives_none() {
        assert_eq!(soname(b""), None);
        assert_eq!(soname(b"\x7fELF\x01\x01"), None);
        let Ok(bytes) = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6") else {
            return;
        };
        for cut in [10, 64, 200, 4096] {
            let _ = soname(&bytes[..cut.min(bytes.len())]);
        }
        // A program (no DT_SONAME) has none.
        if let Ok(sh) = std::fs::read("/bin/sh") {
            assert_eq!(soname(&sh), None);
        }
    }
}
