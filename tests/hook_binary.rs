//! The hook binary itself: statically linked (no program interpreter, no
//! shared library), so `LD_PRELOAD` in its environment runs nothing — shown
//! with a real preload library that does run in a dynamic program; its own
//! environment is never read as a request; failures are one line and exit 1.

use std::path::Path;
use std::process::{Command, Stdio};

use mig_cdi_testkit::e2e as support;
use mig_cdi_testkit::hook::*;

const PT_INTERP: u32 = 3;
const PT_DYNAMIC: u32 = 2;
const DT_NEEDED: u64 = 1;

fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) as usize
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// (has a program interpreter, number of DT_NEEDED entries) of an ELF64
/// little-endian executable.
fn elf_dynamic_facts(path: &Path) -> (bool, usize) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..4], b"\x7fELF", "{} is not ELF", path.display());
    assert_eq!((b[4], b[5]), (2, 1), "ELF64 little-endian expected");
    let phoff = u64_at(&b, 0x20) as usize;
    let phentsize = u16_at(&b, 0x36);
    let phnum = u16_at(&b, 0x38);
    let mut interp = false;
    let mut needed = 0;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        match u32_at(&b, ph) {
            PT_INTERP => interp = true,
            PT_DYNAMIC => {
                let (off, size) = (u64_at(&b, ph + 8) as usize, u64_at(&b, ph + 32) as usize);
                for entry in b[off..off + size].chunks_exact(16) {
                    if u64_at(entry, 0) == DT_NEEDED {
                        needed += 1;
                    }
                }
            }
            _ => {}
        }
    }
    (interp, needed)
}

#[test]
fn the_parser_sees_a_dynamic_binary_as_dynamic() {
    // Guard for the next test: a known dynamic program reads as dynamic.
    let (interp, needed) = elf_dynamic_facts(Path::new("/bin/true"));
    assert!(interp && needed > 0);
}

#[test]
fn hook_is_statically_linked() {
    let hook = support::bin("mig-cdi-hook");
    assert_eq!(
        elf_dynamic_facts(&hook),
        (false, 0),
        "{} has a program interpreter or needs shared libraries",
        hook.display()
    );
    let out = Command::new("ldd").arg(&hook).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("statically linked") || text.contains("not a dynamic executable"),
        "ldd {}: {text}",
        hook.display()
    );
}

/// A preload library whose constructor creates the file named by
/// `$MIG_HOOK_MARKER`.
fn preload_library(dir: &Path) -> std::path::PathBuf {
    let src = dir.join("preload.c");
    std::fs::write(
        &src,
        r#"#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((constructor)) static void injected(void) {
    const char *marker = getenv("MIG_HOOK_MARKER");
    if (marker) { int fd = open(marker, O_CREAT | O_WRONLY, 0644); if (fd >= 0) close(fd); }
}
"#,
    )
    .unwrap();
    let lib = dir.join("libinjected.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .expect("a C compiler (cc) to build the preload library");
    assert!(status.success());
    lib
}

#[test]
fn ld_preload_in_the_hook_environment_does_not_run() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = preload_library(tmp.path());
    // The library does run in a dynamic program: the test can fail.
    let control = tmp.path().join("control");
    let status = Command::new("/bin/true")
        .env("LD_PRELOAD", &lib)
        .env("MIG_HOOK_MARKER", &control)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        control.exists(),
        "the preload library did not run in /bin/true"
    );

    // Run directly with loader variables set.
    let marker = tmp.path().join("hook-direct");
    let out = Command::new(support::bin("mig-cdi-hook"))
        .arg("--version")
        .env("LD_PRELOAD", &lib)
        .env("LD_AUDIT", &lib)
        .env("MIG_HOOK_MARKER", &marker)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!marker.exists(), "LD_PRELOAD ran code in mig-cdi-hook");

    // And as a real runc hook whose entry carries the variables, while it
    // injects a device.
    let machine = Machine::new();
    let marker = tmp.path().join("hook-runc");
    let mut b = Bundle::new(Path::new(support::ROOTFS), PROBE);
    let mut entry = example_hook_entry(&machine.hook_args());
    entry["env"].as_array_mut().unwrap().extend([
        serde_json::json!(format!("LD_PRELOAD={}", lib.display())),
        serde_json::json!(format!("MIG_HOOK_MARKER={}", marker.display())),
    ]);
    b.config["hooks"] = serde_json::json!({"createRuntime": [entry]});
    b.env("NVIDIA_VISIBLE_DEVICES=0:0");
    let ran = b.run(Runtime::Runc);
    ran.assert_ok();
    assert_exactly(&ran.stdout, &nodes_0_0());
    assert!(!marker.exists(), "LD_PRELOAD ran code in the runc hook");
}

#[test]
fn the_hook_environment_is_not_a_request() {
    // Only the container's config.json carries a request; the hook's own
    // environment (set by whoever configures the runtime) is ignored.
    let machine = Machine::new();
    let mut b = Bundle::new(Path::new(support::ROOTFS), PROBE);
    let mut entry = example_hook_entry(&machine.hook_args());
    entry["env"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!("NVIDIA_VISIBLE_DEVICES=0:0"));
    b.config["hooks"] = serde_json::json!({"createRuntime": [entry]});
    let ran = b.run(Runtime::Runc);
    ran.assert_ok();
    assert_no_nvidia_nodes(&ran.stdout);
}

#[test]
fn failure_is_one_line_and_exit_1() {
    let mut child = Command::new(support::bin("mig-cdi-hook"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"not json").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("mig-cdi-hook: cannot decode the OCI state on stdin"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    let out = Command::new(support::bin("mig-cdi-hook"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("see `mig-cdi-hook --help`"));
}
