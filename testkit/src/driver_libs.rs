//! A driver's user-space files that are real enough to load: tests of the
//! driver-files path need shared objects with the driver's sonames and
//! version suffix that a program in a container can `dlopen` by soname and
//! call, and an image with a C library and a loader cache of its own.
//! Built here with the system's C compiler (`cc`), once per test.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The driver version of the simulated H200 machines.
pub const VERSION: &str = "580.159.04";

/// `(file stem, soname, exported function)` of each library built.
pub const LIBRARIES: [(&str, &str, &str); 3] = [
    ("libcuda.so", "libcuda.so.1", "cuInit"),
    ("libnvidia-ml.so", "libnvidia-ml.so.1", "nvmlInit_v2"),
    (
        "libnvidia-ptxjitcompiler.so",
        "libnvidia-ptxjitcompiler.so.1",
        "__cuda_ptxjit_stub",
    ),
];

fn cc(args: &[&str], what: &str) {
    let out = Command::new("cc").args(args).output().expect("cc runs");
    assert!(
        out.status.success(),
        "cc {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Build the driver's libraries of [`VERSION`] into `<root><dir>`, each
/// exporting its function returning 42 + its index; plus a stand-in
/// `nvidia-smi` in `<root>/usr/bin` and GSP firmware. Returns the
/// libraries' paths.
pub fn build_driver(root: &Path, dir: &str) -> Vec<PathBuf> {
    let folder = root.join(dir.trim_start_matches('/'));
    std::fs::create_dir_all(&folder).unwrap();
    let src = folder.join(".src.c");
    let mut out = Vec::new();
    for (i, (stem, soname, function)) in LIBRARIES.iter().enumerate() {
        std::fs::write(
            &src,
            format!("int {function}(void) {{ return {}; }}\n", 42 + i),
        )
        .unwrap();
        let lib = folder.join(format!("{stem}.{VERSION}"));
        cc(
            &[
                "-shared",
                "-fPIC",
                &format!("-Wl,-soname,{soname}"),
                "-o",
                lib.to_str().unwrap(),
                src.to_str().unwrap(),
            ],
            stem,
        );
        out.push(lib);
    }
    std::fs::remove_file(&src).unwrap();
    let smi = root.join("usr/bin/nvidia-smi");
    std::fs::create_dir_all(smi.parent().unwrap()).unwrap();
    std::fs::write(&smi, "#!/bin/sh\necho 'stand-in nvidia-smi'\n").unwrap();
    set_mode(&smi, 0o755);
    let fw = root.join(format!("lib/firmware/nvidia/{VERSION}/gsp_ga10x.bin"));
    std::fs::create_dir_all(fw.parent().unwrap()).unwrap();
    std::fs::write(&fw, b"firmware").unwrap();
    out
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The C source of `dlopen-probe`: for each soname=function argument it
/// dlopens the soname (no path: the loader's search, its cache included),
/// calls the function and prints `OK soname value` or `FAIL soname why`.
const PROBE_C: &str = r#"
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        char name[256];
        strncpy(name, argv[i], sizeof name - 1);
        name[sizeof name - 1] = 0;
        char *fn = strchr(name, '=');
        if (!fn) { printf("FAIL %s no function\n", name); failed = 1; continue; }
        *fn++ = 0;
        void *h = dlopen(name, RTLD_NOW);
        if (!h) { printf("FAIL %s %s\n", name, dlerror()); failed = 1; continue; }
        int (*f)(void) = (int (*)(void))dlsym(h, fn);
        if (!f) { printf("FAIL %s no %s\n", name, fn); failed = 1; continue; }
        printf("OK %s %d\n", name, f());
    }
    return failed;
}
"#;

/// A root filesystem with busybox, the host's C library and loader, the
/// `dlopen-probe` program, and an image library `libimage.so.1` in
/// `/opt/image/lib` that only the image's own `/etc/ld.so.cache` finds.
pub fn glibc_rootfs(parent: &Path, busybox_root: &Path) -> PathBuf {
    let root = parent.join("glibc-rootfs");
    let status = Command::new("cp")
        .arg("-a")
        .arg(busybox_root)
        .arg(&root)
        .status()
        .unwrap();
    assert!(status.success(), "copy the busybox root");
    for lib in [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    ] {
        let src = std::fs::canonicalize(lib).unwrap();
        let dest = root.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&src, &dest).unwrap();
    }
    let src = parent.join("probe.c");
    std::fs::write(&src, PROBE_C).unwrap();
    let probe = root.join("bin/dlopen-probe");
    cc(
        &["-o", probe.to_str().unwrap(), src.to_str().unwrap(), "-ldl"],
        "dlopen-probe",
    );
    let image = root.join("opt/image/lib");
    std::fs::create_dir_all(&image).unwrap();
    std::fs::write(&src, "int image_fn(void) { return 7; }\n").unwrap();
    cc(
        &[
            "-shared",
            "-fPIC",
            "-Wl,-soname,libimage.so.1",
            "-o",
            image.join("libimage.so.1").to_str().unwrap(),
            src.to_str().unwrap(),
        ],
        "libimage",
    );
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/ld.so.conf"),
        "/opt/image/lib\n/lib/x86_64-linux-gnu\n",
    )
    .unwrap();
    // The image's own cache, as its build would have made it.
    let status = Command::new("/sbin/ldconfig")
        .arg("-r")
        .arg(&root)
        .status()
        .unwrap();
    assert!(status.success(), "ldconfig -r for the test image");
    root
}

/// The probe's arguments for every driver library and the image's own.
pub fn probe_args() -> Vec<String> {
    let mut args: Vec<String> = LIBRARIES
        .iter()
        .map(|(_, soname, f)| format!("{soname}={f}"))
        .collect();
    args.push("libimage.so.1=image_fn".into());
    args
}
