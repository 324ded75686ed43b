//! Link `mig-cdi-hook` statically against glibc on a plain `cargo build`.
//!
//! Why: the hook runs as root on the host, started by the container runtime.
//! A statically linked binary has no program interpreter, so loader
//! variables (`LD_PRELOAD`, `LD_LIBRARY_PATH`, `LD_AUDIT`) that reach its
//! environment cannot load code into it (CVE-2025-23266 was exactly that).
//!
//! How: `-C target-feature=+crt-static` would do it, but rustflags are
//! per-workspace, and the workspace also builds a cdylib (the NVML
//! simulator) that rustc refuses to build with crt-static on this target.
//! rustc links std's native libraries as `-Wl,-Bdynamic -lgcc_s -lutil
//! -lrt -lpthread -lm -ldl -lc`; we put a folder first on the library
//! search path where each of those names is a one-line GNU linker script
//! that pulls in the static archive instead (`GROUP(libc.a libgcc.a
//! libgcc_eh.a)`), and ask for a static PIE. The linker then finds no
//! shared library to depend on. The result is checked by the e2e test
//! `hook_binary` (`file` says static-pie, `ldd` says not dynamic).
//!
//! Needs the static glibc archives (`libc6-dev` on Debian, installed with
//! any C toolchain). Set `MIG_CDI_HOOK_DYNAMIC=1` to skip all of this (for
//! a toolchain without them; the hook is then *not* hardened).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The native libraries rustc's std asks for on linux-gnu.
const STD_LIBS: &[&str] = &["c", "gcc_s", "util", "rt", "pthread", "m", "dl"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=MIG_CDI_HOOK_DYNAMIC");
    println!("cargo:rerun-if-env-changed=CC");
    let target = std::env::var("TARGET").unwrap_or_default();
    if std::env::var_os("MIG_CDI_HOOK_DYNAMIC").is_some() || !target.ends_with("-linux-gnu") {
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let archive = |name: &str| -> PathBuf {
        let found = Command::new(&cc)
            .arg(format!("-print-file-name={name}"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|p| p.is_absolute() && p.exists());
        found.unwrap_or_else(|| {
            panic!(
                "mig-cdi-hook links statically and needs {name}, which `{cc} -print-file-name` \
                 does not find: install the static C library (Debian: apt-get install \
                 libc6-dev), or set MIG_CDI_HOOK_DYNAMIC=1 for an unhardened dynamic build"
            )
        })
    };
    let libc = archive("libc.a");
    let libgcc = archive("libgcc.a");
    let libgcc_eh = archive("libgcc_eh.a");
    let libm = archive("libm.a");
    let group = format!(
        "GROUP ( {} {} {} )\n",
        quoted(&libc),
        quoted(&libgcc),
        quoted(&libgcc_eh)
    );
    for lib in STD_LIBS {
        let script = match *lib {
            "m" => format!("INPUT ( {} )\n", quoted(&libm)),
            // libpthread, librt, libdl and libutil are part of libc since
            // glibc 2.34; the group covers older ones' symbols too.
            _ => group.clone(),
        };
        let path = out.join(format!("lib{lib}.a"));
        std::fs::write(&path, script)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
    // As link arguments of the binary only (not `rustc-link-search`), so
    // the unit-test harness stays an ordinary dynamic executable.
    println!("cargo:rustc-link-arg-bins=-L{}", out.display());
    println!("cargo:rustc-link-arg-bins=-static-pie");
}

fn quoted(path: &Path) -> String {
    format!("\"{}\"", path.display())
}
