//! The driver's user-space files in a container, with no GPU: a fake
//! driver root holds real little shared objects with the driver's sonames
//! and version suffix (built by the test); core discovers them, the spec
//! mounts them read-only and names mig-cdi-hook's createContainer stages;
//! then a dynamically linked program in the container `dlopen`s
//! `libcuda.so.1`, `libnvidia-ml.so.1` and the PTX JIT by soname and calls
//! their functions — in podman (CDI) and in crun and runc through
//! mig-cdi-runtime — while the image's own library, found only through the
//! image's `/etc/ld.so.cache`, still loads. Hostile images change nothing
//! outside their root.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mig_cdi_core::cdi::render::DriverEdits;
use mig_cdi_core::driver_files::{self, Options};
use mig_cdi_testkit::driver_libs::{self, VERSION};
use mig_cdi_testkit::e2e as support;
use mig_cdi_testkit::hook::*;

/// Not a folder the loader searches by itself: only the cache finds it
/// (the GPU operator's layout, as on the real H200).
const LIB_DIR: &str = "/usr/local/nvidia/lib64";

struct Scene {
    tmp: tempfile::TempDir,
    machine: Machine,
    driver: PathBuf,
    rootfs: PathBuf,
    spec: serde_json::Value,
}

impl Scene {
    fn new() -> Self {
        let machine = Machine::new();
        let tmp = tempfile::Builder::new()
            .prefix("mig-cdi-drv-")
            .tempdir()
            .unwrap();
        let driver = tmp.path().join("driver");
        driver_libs::build_driver(&driver, LIB_DIR);
        let rootfs = driver_libs::glibc_rootfs(tmp.path(), Path::new(support::ROOTFS));
        let files = driver_files::discover(
            VERSION,
            &Options {
                driver_root: driver.clone(),
                graphics: false,
                video: false,
            },
        )
        .expect("the fake driver is found");
        let edits = DriverEdits {
            files,
            driver_root: Some(driver.display().to_string()),
            hook_path: support::bin("mig-cdi-hook").display().to_string(),
        };
        let mut spec = spec();
        spec["containerEdits"]["mounts"] = serde_json::to_value(edits.mounts()).unwrap();
        spec["containerEdits"]["hooks"] = serde_json::to_value(edits.hooks()).unwrap();
        std::fs::write(machine.cdi.join("nvidia.com-gpu.json"), spec.to_string()).unwrap();
        Self {
            tmp,
            machine,
            driver,
            rootfs,
            spec,
        }
    }
}

impl Scene {
    /// A fresh copy of the test image, for one container.
    fn image_copy(&self, name: &str) -> PathBuf {
        let rootfs = self.tmp.path().join(name);
        let status = Command::new("cp")
            .arg("-a")
            .arg(&self.rootfs)
            .arg(&rootfs)
            .status()
            .unwrap();
        assert!(status.success(), "copy the test image");
        rootfs
    }
}

fn probe_script() -> String {
    format!(
        "dlopen-probe {}; nvidia-smi; echo DONE",
        driver_libs::probe_args().join(" ")
    )
}

fn assert_loads(stdout: &str) {
    for (i, (_, soname, _)) in driver_libs::LIBRARIES.iter().enumerate() {
        assert!(
            stdout.contains(&format!("OK {soname} {}", 42 + i)),
            "{soname} must load by soname:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("OK libimage.so.1 7"),
        "the image's own cache entry must still resolve:\n{stdout}"
    );
    assert!(stdout.contains("stand-in nvidia-smi"), "{stdout}");
}

/// `mig-cdi-runtime` for `runtime`, beside its config.
fn wrapper(scene: &Scene, runtime: Runtime) -> PathBuf {
    let dir = scene.tmp.path().join(format!("wrapper-{}", runtime.name()));
    install_runtime(&dir, runtime, &scene.machine)
}

/// Run `script` in `rootfs` through the wrapper, asking for device 0:0.
fn run_bundle(wrapper: &Path, rootfs: &Path, env: &[&str], script: &str) -> Ran {
    let mut b = Bundle::new(rootfs, script);
    b.env("NVIDIA_VISIBLE_DEVICES=0:0");
    for e in env {
        b.env(e);
    }
    b.config["root"]["readonly"] = serde_json::json!(false);
    std::fs::write(
        b.path.join("config.json"),
        serde_json::to_vec(&b.config).unwrap(),
    )
    .unwrap();
    run_through(wrapper, &[], &b.path)
}

#[test]
fn discovery_finds_exactly_the_built_files() {
    let scene = Scene::new();
    let mounts = scene.spec["containerEdits"]["mounts"].as_array().unwrap();
    let paths: Vec<&str> = mounts
        .iter()
        .map(|m| m["containerPath"].as_str().unwrap())
        .collect();
    let mut want: Vec<String> = vec![
        format!("/lib/firmware/nvidia/{VERSION}/gsp_ga10x.bin"),
        "/usr/bin/nvidia-smi".into(),
    ];
    for (stem, _, _) in driver_libs::LIBRARIES {
        want.push(format!("{LIB_DIR}/{stem}.{VERSION}"));
    }
    want.sort();
    assert_eq!(paths, want);
    for m in mounts {
        let host = m["hostPath"].as_str().unwrap();
        assert!(
            host.starts_with(&scene.driver.display().to_string()),
            "{host}"
        );
        assert_eq!(
            m["options"],
            serde_json::json!(["ro", "nosuid", "nodev", "bind"])
        );
    }
    // The sonames came from the libraries' own ELF headers.
    let hooks = scene.spec["containerEdits"]["hooks"].as_array().unwrap();
    let links = hooks[0]["args"].to_string();
    assert!(
        links.contains(&format!("{LIB_DIR}/libcuda.so.1=libcuda.so.{VERSION}")),
        "{links}"
    );
}

#[test]
fn crun_and_runc_through_the_runtime_load_the_driver_by_soname() {
    let scene = Scene::new();
    for runtime in [Runtime::Crun, Runtime::Runc] {
        let rootfs = scene.image_copy(&format!("root-{}", runtime.name()));
        // LD_PRELOAD in the image's environment reaches neither the hooks
        // (their env is the spec's) nor anything else of ours.
        let out = run_bundle(
            &wrapper(&scene, runtime),
            &rootfs,
            &["LD_PRELOAD=/nonexistent/evil.so"],
            &probe_script(),
        );
        let stdout = out.stdout.clone();
        assert!(out.ok, "{runtime:?}: {stdout}\n{}", out.stderr.clone());
        assert_loads(&stdout);
    }
}

#[test]
fn podman_with_the_spec_loads_the_driver_by_soname() {
    let scene = Scene::new();
    let vendor = format!("mig-cdi-drv-{}.test", std::process::id());
    let mut spec = scene.spec.clone();
    spec["kind"] = serde_json::json!(format!("{vendor}/gpu"));
    let file = PathBuf::from(format!("/var/run/cdi/{vendor}.json"));
    std::fs::create_dir_all("/var/run/cdi").unwrap();
    std::fs::write(&file, spec.to_string()).unwrap();
    struct Remove(PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _remove = Remove(file);
    let out = Ran::of(
        Command::new("timeout")
            .arg("180")
            .arg("podman")
            .args(["run", "--rm", "--network", "none", "--device"])
            .arg(format!("{vendor}/gpu=0:0"))
            .arg("--rootfs")
            .arg(&scene.rootfs)
            .args(["sh", "-c", &probe_script()])
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    let stdout = out.stdout.clone();
    assert!(out.ok, "{stdout}\n{}", out.stderr.clone());
    assert_loads(&stdout);
}

/// Names and contents of every file under `dir` (symlinks not followed).
fn checksum(dir: &Path) -> Vec<String> {
    fingerprint(dir)
}

#[test]
fn hostile_images_change_nothing_outside_their_root() {
    let scene = Scene::new();
    let host = scene.tmp.path().join("host");
    std::fs::create_dir_all(host.join("etc")).unwrap();
    std::fs::write(host.join("etc/shadow"), "root:x:secret").unwrap();
    std::fs::write(host.join("ld.so.cache"), "host cache").unwrap();
    let before = checksum(&host);
    let wrapper = wrapper(&scene, Runtime::Crun);
    let hostile = |name: &str, prepare: &dyn Fn(&Path)| {
        let rootfs = scene.image_copy(&format!("hostile-{name}"));
        prepare(&rootfs);
        let out = run_bundle(&wrapper, &rootfs, &[], &probe_script());
        (out, rootfs)
    };
    // The image's loader cache is a symlink to a host file: refused.
    let (out, _) = hostile("cache-link", &|r| {
        std::fs::remove_file(r.join("etc/ld.so.cache")).unwrap();
        std::os::unix::fs::symlink(host.join("ld.so.cache"), r.join("etc/ld.so.cache")).unwrap();
    });
    assert!(!out.ok, "{}", out.stdout.clone());
    // A link name already a symlink to the host's /etc/shadow: replaced
    // inside the root, never followed.
    let (out, rootfs) = hostile("shadow-link", &|r| {
        let dir = r.join(LIB_DIR.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(host.join("etc/shadow"), dir.join("libcuda.so.1")).unwrap();
    });
    let stdout = out.stdout.clone();
    assert!(out.ok, "{stdout}\n{}", out.stderr.clone());
    assert_loads(&stdout);
    let link = std::fs::read_link(
        rootfs
            .join(LIB_DIR.trim_start_matches('/'))
            .join("libcuda.so.1"),
    );
    // (The runtime's mounts are gone after the container; the link stays.)
    assert_eq!(
        link.unwrap(),
        PathBuf::from(format!("libcuda.so.{VERSION}"))
    );
    // The library folder is a symlink to / (absolute): every path is
    // resolved inside the root, so the links land in the root's own /.
    let (_out, rootfs) = hostile("libdir-root", &|r| {
        let dir = r.join(LIB_DIR.trim_start_matches('/'));
        std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/", &dir).unwrap();
    });
    // Whether the runtime then starts the container is its business; no
    // link of ours may appear in the host's own /.
    assert!(
        std::fs::symlink_metadata("/libcuda.so.1").is_err(),
        "a link was made in the host's /"
    );
    assert!(rootfs.join("bin/dlopen-probe").exists());
    // The image's ld.so.conf.d is a symlink to the host: untouched.
    let (out, _) = hostile("conf-link", &|r| {
        std::os::unix::fs::symlink(host.join("etc"), r.join("etc/ld.so.conf.d")).unwrap();
    });
    assert!(out.ok, "{}", out.stderr.clone());
    assert_eq!(checksum(&host), before, "the host tree changed");
}
