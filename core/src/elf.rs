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

/// `DT_SONAME` of a 64-bit little-endian ELF shared object.
pub fn soname(bytes: &[u8]) -> Option<String> {
    // e_ident: magic, class 2 (64-bit), data 1 (little endian).
    if bytes.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let phoff = usize::try_from(u64_at(bytes, 0x20)?).ok()?;
    let phentsize = usize::from(u16_at(bytes, 0x36)?);
    let phnum = usize::from(u16_at(bytes, 0x38)?);
    if phentsize < 56 {
        return None;
    }
    let mut loads = Vec::new();
    let mut dynamic = None;
    for i in 0..phnum.min(256) {
        let at = phoff.checked_add(i.checked_mul(phentsize)?)?;
        let kind = u32_at(bytes, at)?;
        let offset = u64_at(bytes, at + 8)?;
        let vaddr = u64_at(bytes, at + 16)?;
        let filesz = u64_at(bytes, at + 32)?;
        match kind {
            PT_LOAD => loads.push((vaddr, offset, filesz)),
            PT_DYNAMIC => dynamic = Some((offset, filesz)),
            _ => {}
        }
    }
    let (dyn_off, dyn_size) = dynamic?;
    let (mut strtab, mut soname) = (None, None);
    let count = usize::try_from(dyn_size / 16).ok()?.min(4096);
    for i in 0..count {
        let at = usize::try_from(dyn_off).ok()?.checked_add(i * 16)?;
        let tag = u64_at(bytes, at)?;
        let value = u64_at(bytes, at + 8)?;
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
    let start = usize::try_from(file_off.checked_add(soname?)?).ok()?;
    let rest = bytes.get(start..)?;
    let end = rest.iter().take(4096).position(|b| *b == 0)?;
    String::from_utf8(rest[..end].to_vec()).ok()
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
        }
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
