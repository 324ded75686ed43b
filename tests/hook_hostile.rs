//! Hostile images under real runc and crun: whatever the image's `/dev`
//! holds — no /dev tmpfs in the config, `dev` or `dev/nvidia-caps` a
//! symlink to a host folder (absolute, `../..`, or through
//! `/proc/1/root`), a regular file or a symlink where a node should go —
//! nothing on the host outside the container root is created or changed
//! (each test fingerprints the host folders the links point at), and the
//! container either gets exactly the device's nodes inside its root or is
//! refused with the hook's message and left as it was.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use mig_cdi_testkit::hook::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Nodes,
    Refused,
    /// The runtime decides how it mounts through the link: either outcome
    /// is correct as long as the host is untouched.
    Either,
}

struct Scene {
    tmp: tempfile::TempDir,
    rootfs: PathBuf,
    /// Host folder the image's links point at; must stay as it is.
    host_dir: PathBuf,
    host_file: PathBuf,
}

impl Scene {
    fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("mig-hook-hostile-")
            .tempdir()
            .unwrap();
        let rootfs = rootfs_copy(tmp.path());
        let host_dir = tmp.path().join("host/folder");
        std::fs::create_dir_all(&host_dir).unwrap();
        std::fs::write(host_dir.join("keep"), "host data").unwrap();
        let host_file = tmp.path().join("host/file");
        std::fs::write(&host_file, "host file").unwrap();
        Self {
            tmp,
            rootfs,
            host_dir,
            host_file,
        }
    }

    /// `../` enough times to climb from rootfs/<depth dirs> to `/`, then
    /// the host folder.
    fn dotdot_to(&self, target: &Path, depth: usize) -> PathBuf {
        let climb = self.rootfs.components().count() + depth + 3;
        let mut p = PathBuf::new();
        for _ in 0..climb {
            p.push("..");
        }
        p.join(target.strip_prefix("/").unwrap())
    }
}

/// The host folders as names and file types (relative to the scene).
fn host_entries(scene: &Scene) -> Vec<String> {
    let base = scene.tmp.path();
    fingerprint_entries(&base.join("host"), base)
}

/// Run the image with the hook under each runtime, and once without it:
/// the hook must change nothing on the host beyond what the runtime itself
/// does with the same image, and nothing named nvidia may appear outside
/// the root. (The runtimes here are not immune themselves: with `dev` a
/// symlink to a host folder, runc 1.1.5 creates its /dev symlinks there and
/// crun 1.8.1 without a /dev tmpfs even its default device nodes.)
fn case(name: &str, tmpfs: bool, expect: Expect, prepare: impl Fn(&Scene)) {
    let machine = Machine::new();
    for runtime in [Runtime::Runc, Runtime::Crun] {
        let run = |hook: bool| {
            let scene = Scene::new();
            prepare(&scene);
            let before = host_entries(&scene);
            let keep = std::fs::read_to_string(scene.host_dir.join("keep")).unwrap();
            let mut b = Bundle::new(&scene.rootfs, PROBE);
            if hook {
                b.hook("createRuntime", &machine.hook_args());
            }
            b.env("NVIDIA_VISIBLE_DEVICES=0:0");
            if !tmpfs {
                b.without_dev_tmpfs();
            }
            let ran = b.run(runtime);
            let after = host_entries(&scene);
            assert_eq!(keep, "host data");
            assert_eq!(
                std::fs::read_to_string(&scene.host_file).unwrap(),
                "host file"
            );
            (before, after, ran)
        };
        let (_, runtime_alone, baseline) = run(false);
        let (before, after, ran) = run(true);
        assert!(
            !after.iter().any(|e| e.contains("nvidia")),
            "{name} ({runtime:?}): an NVIDIA node appeared outside the root: {after:?}"
        );
        assert_eq!(
            after,
            runtime_alone,
            "{name} ({runtime:?}): with the hook the host changed beyond what {} does alone \
             (before: {before:?})\n{}",
            runtime.name(),
            ran.stderr
        );
        let got = if ran.ok {
            assert_exactly(&ran.stdout, &nodes_0_0());
            Expect::Nodes
        } else if !baseline.ok {
            // The runtime refuses this image by itself.
            assert!(!ran.stdout.contains("PROBE-DONE"), "{name}: container ran");
            Expect::Either
        } else {
            assert!(
                ran.stderr.contains("mig-cdi-hook: "),
                "{name} ({runtime:?}): failed, but not by the hook:\n{}",
                ran.stderr
            );
            assert!(!ran.stdout.contains("PROBE-DONE"), "{name}: container ran");
            Expect::Refused
        };
        assert!(
            expect == Expect::Either || got == expect,
            "{name} ({runtime:?}): expected {expect:?}, got {got:?}\n{}\n{}",
            ran.stdout,
            ran.stderr
        );
        eprintln!(
            "{name} ({runtime:?}): {got:?}{}",
            if baseline.ok {
                ""
            } else {
                " (the runtime refuses this image alone)"
            }
        );
    }
}

fn replace_dev(scene: &Scene, target: &Path) {
    std::fs::remove_dir_all(scene.rootfs.join("dev")).unwrap();
    symlink(target, scene.rootfs.join("dev")).unwrap();
}

#[test]
fn no_dev_tmpfs_nodes_go_into_the_image_dev() {
    case("no /dev tmpfs", false, Expect::Nodes, |_| {});
}

#[test]
fn dev_symlink_to_absolute_host_folder_with_tmpfs() {
    case("dev -> /abs (tmpfs)", true, Expect::Either, |s| {
        replace_dev(s, &s.host_dir)
    });
}

#[test]
fn dev_symlink_to_absolute_host_folder_without_tmpfs() {
    case("dev -> /abs", false, Expect::Either, |s| {
        replace_dev(s, &s.host_dir)
    });
}

#[test]
fn dev_symlink_dotdot_to_host_folder_without_tmpfs() {
    case("dev -> ../..", false, Expect::Either, |s| {
        replace_dev(s, &s.dotdot_to(&s.host_dir, 0))
    });
}

#[test]
fn dev_symlink_through_proc_1_root_with_tmpfs() {
    case("dev -> /proc/1/root/...", true, Expect::Either, |s| {
        replace_dev(
            s,
            &Path::new("/proc/1/root").join(s.host_dir.strip_prefix("/").unwrap()),
        )
    });
}

#[test]
fn nvidia_caps_symlink_to_absolute_host_folder() {
    case("dev/nvidia-caps -> /abs", false, Expect::Refused, |s| {
        symlink(&s.host_dir, s.rootfs.join("dev/nvidia-caps")).unwrap()
    });
}

#[test]
fn nvidia_caps_symlink_dotdot_to_host_folder() {
    case("dev/nvidia-caps -> ../..", false, Expect::Refused, |s| {
        symlink(
            s.dotdot_to(&s.host_dir, 1),
            s.rootfs.join("dev/nvidia-caps"),
        )
        .unwrap()
    });
}

#[test]
fn regular_file_where_a_node_goes_is_refused_and_rolled_back() {
    case("file at nvidia-cap13", false, Expect::Refused, |s| {
        std::fs::create_dir(s.rootfs.join("dev/nvidia-caps")).unwrap();
        std::fs::write(s.rootfs.join("dev/nvidia-caps/nvidia-cap13"), "x").unwrap();
    });
    // And what the refused run created before it met the file is gone.
    let machine = Machine::new();
    let scene = Scene::new();
    std::fs::create_dir(scene.rootfs.join("dev/nvidia-caps")).unwrap();
    std::fs::write(scene.rootfs.join("dev/nvidia-caps/nvidia-cap13"), "x").unwrap();
    let mut b = Bundle::new(&scene.rootfs, PROBE);
    b.hook("createRuntime", &machine.hook_args())
        .env("NVIDIA_VISIBLE_DEVICES=0:0")
        .without_dev_tmpfs();
    b.run(Runtime::Runc).assert_refused(
        "/dev/nvidia-caps/nvidia-cap13 already exists in the container as a regular file",
    );
    let dev = scene.rootfs.join("dev");
    assert!(!dev.join("nvidia0").exists(), "rollback left /dev/nvidia0");
    assert!(
        !dev.join("nvidia-caps/nvidia-cap12").exists(),
        "rollback left nvidia-cap12"
    );
    assert_eq!(
        std::fs::read_to_string(dev.join("nvidia-caps/nvidia-cap13")).unwrap(),
        "x"
    );
}

#[test]
fn symlink_where_a_node_goes_is_refused() {
    case("dev/nvidia0 -> host file", false, Expect::Refused, |s| {
        symlink(&s.host_file, s.rootfs.join("dev/nvidia0")).unwrap()
    });
    case(
        "dev/nvidia-caps/nvidia-cap12 -> host dir",
        false,
        Expect::Refused,
        |s| {
            std::fs::create_dir(s.rootfs.join("dev/nvidia-caps")).unwrap();
            symlink(&s.host_dir, s.rootfs.join("dev/nvidia-caps/nvidia-cap12")).unwrap()
        },
    );
}

#[test]
fn wrong_device_where_a_node_goes_is_refused_and_a_right_one_kept() {
    case("nvidia0 is 1:3", false, Expect::Refused, |s| {
        let status = std::process::Command::new("mknod")
            .arg(s.rootfs.join("dev/nvidia0"))
            .args(["c", "1", "3"])
            .status()
            .unwrap();
        assert!(status.success());
    });
    case("nvidia0 already right", false, Expect::Nodes, |s| {
        let status = std::process::Command::new("mknod")
            .arg(s.rootfs.join("dev/nvidia0"))
            .args(["-m", "666", "c", "195", "0"])
            .status()
            .unwrap();
        assert!(status.success());
    });
}
