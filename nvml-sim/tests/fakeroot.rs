//! The fake driver root against the real H200 snapshot, and its capability
//! files and nodes against the machines' instances.
//!
//! Tests that create device nodes need root (mknod); without it they say
//! so on stderr and check only what they can.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mig_cdi_testkit::e2e::is_root;
use mig_cdi_testkit::paths::{h200_snapshot, machines_dir};
use nvml_sim::fakeroot::{self, BuildOptions, Entry, FakeRootError};
use nvml_sim::Machine;

fn machine(name: &str) -> Machine {
    Machine::load(&machines_dir().join(name)).expect("example machine loads")
}

/// Builds `name` into a fresh temp dir; nodes only when running as root.
fn build(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let opts = BuildOptions {
        nodes: is_root(),
        overwrite: false,
    };
    fakeroot::build(&machine(name), &root, &opts).expect("build the fake root");
    (dir, root)
}

/// Relative paths of the regular files under `dir`.
fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                walk(base, &entry.path(), out);
            } else if kind.is_file() {
                out.insert(entry.path().strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn h200_proc_tree_is_byte_identical_to_the_real_snapshot() {
    let (_dir, root) = build("h200.json");
    let real = h200_snapshot().join("proc");
    let real_files = files_under(&real);
    assert_eq!(files_under(&root.join("proc")), real_files);
    for rel in &real_files {
        let want = fs::read(real.join(rel)).unwrap();
        let got = fs::read(root.join("proc").join(rel)).unwrap();
        assert!(
            got == want,
            "proc/{} differs from the snapshot",
            rel.display()
        );
    }
    // The snapshot's gpu0/mig folder existed but was empty (git drops it).
    let mig = root.join("proc/driver/nvidia/capabilities/gpu0/mig");
    assert!(mig.is_dir());
    assert_eq!(fs::read_dir(&mig).unwrap().count(), 0);
}

#[test]
fn mig_minors_is_the_real_static_table_for_every_machine() {
    let real = fs::read(h200_snapshot().join("proc/driver/nvidia-caps/mig-minors")).unwrap();
    assert_eq!(fakeroot::mig_minors_table().as_bytes(), real.as_slice());
    for name in ["a100x8.json", "h100x4.json", "h200-mig.json"] {
        let (_dir, root) = build(name);
        let got = fs::read(root.join("proc/driver/nvidia-caps/mig-minors")).unwrap();
        assert!(got == real, "{name}");
    }
}

/// `stat -c '%n %F %t:%T %a %U:%G'` lines of the snapshot.
#[test]
fn h200_nodes_match_real_dev_stat() {
    if !is_root() {
        eprintln!("skipped: device nodes need root");
        return;
    }
    let (_dir, root) = build("h200.json");
    let text = fs::read_to_string(h200_snapshot().join("dev-stat.txt")).unwrap();
    let mut checked = 0;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let path = root.join(fields[0].trim_start_matches('/'));
        let meta =
            fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mode = format!("{:o}", meta.permissions().mode() & 0o7777);
        let (major_minor, want_mode) = (fields[fields.len() - 3], fields[fields.len() - 2]);
        assert_eq!(mode, want_mode, "{line}");
        if line.contains("character special file") {
            assert!(meta.file_type().is_char_device(), "{line}");
            let rdev = meta.rdev();
            let got = format!("{:x}:{:x}", libc::major(rdev), libc::minor(rdev));
            assert_eq!(got, major_minor, "{line}");
        } else {
            assert!(meta.is_dir(), "{line}");
        }
        checked += 1;
    }
    assert_eq!(checked, 7);
    // Nothing else NVIDIA-like in dev/.
    let names: BTreeSet<String> = fs::read_dir(root.join("dev"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "nvidia-caps",
            "nvidia-uvm",
            "nvidia-uvm-tools",
            "nvidia0",
            "nvidiactl"
        ]
        .map(String::from)
        .into()
    );
}

/// `gpuN/giG/access` and `gpuN/giG/ciC/access` names of a machine's
/// existing instances, N being the GPU minor.
fn existing_caps(machine: &Machine) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for gpu in machine.gpus() {
        for gi in gpu.gpu_instances() {
            out.insert(format!("gpu{}/gi{}/access", gpu.minor(), gi.id()));
            for ci in gi.compute_instances() {
                out.insert(format!(
                    "gpu{}/gi{}/ci{}/access",
                    gpu.minor(),
                    gi.id(),
                    ci.id()
                ));
            }
        }
    }
    out
}

/// mig-minors as name -> minor.
fn mig_minors(root: &Path) -> std::collections::BTreeMap<String, u32> {
    fs::read_to_string(root.join("proc/driver/nvidia-caps/mig-minors"))
        .unwrap()
        .lines()
        .map(|l| {
            let (name, minor) = l.split_once(' ').unwrap();
            (name.to_owned(), minor.parse().unwrap())
        })
        .collect()
}

fn check_caps_for_existing_instances_only(name: &str) {
    let machine = machine(name);
    let (_dir, root) = build(name);
    let caps_root = root.join("proc/driver/nvidia/capabilities");
    let table = mig_minors(&root);

    // Capability files: exactly the existing instances (+ mig/config, mig/monitor).
    let got: BTreeSet<String> = files_under(&caps_root)
        .into_iter()
        .map(|p| p.to_string_lossy().replace("/mig/", "/"))
        .filter(|p| p.starts_with("gpu"))
        .collect();
    let want = existing_caps(&machine);
    assert_eq!(got, want, "{name}");

    // Each one names its mig-minors minor, mode 0444.
    for cap in &want {
        let rel = cap.replacen('/', "/mig/", 1);
        let text = fs::read_to_string(caps_root.join(&rel)).unwrap();
        let minor = table[cap.as_str()];
        assert_eq!(
            text,
            format!("DeviceFileMinor: {minor}\nDeviceFileMode: 292\nDeviceFileModify: 1\n"),
            "{name} {cap}"
        );
    }

    // Nodes: cap1, cap2 and one per existing instance, 241:M.
    if !is_root() {
        eprintln!("skipped node checks: device nodes need root");
        return;
    }
    let mut want_nodes: BTreeSet<u32> = want.iter().map(|c| table[c.as_str()]).collect();
    want_nodes.extend([1, 2]);
    let caps_dev = root.join("dev/nvidia-caps");
    let mut got_nodes = BTreeSet::new();
    for entry in fs::read_dir(&caps_dev).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        assert!(meta.file_type().is_char_device());
        let name = entry.file_name().to_string_lossy().into_owned();
        let minor: u32 = name.strip_prefix("nvidia-cap").unwrap().parse().unwrap();
        assert_eq!(libc::major(meta.rdev()), 241, "{name}");
        assert_eq!(libc::minor(meta.rdev()), minor, "{name}");
        let mode = meta.permissions().mode() & 0o777;
        assert_eq!(mode, if minor == 1 { 0o400 } else { 0o444 }, "{name}");
        got_nodes.insert(minor);
    }
    assert_eq!(got_nodes, want_nodes, "{name}");

    // One /dev/nvidiaN per GPU minor, 195:N, 0666.
    for gpu in machine.gpus() {
        let meta = fs::metadata(root.join(format!("dev/nvidia{}", gpu.minor()))).unwrap();
        assert!(meta.file_type().is_char_device());
        assert_eq!(
            (libc::major(meta.rdev()), libc::minor(meta.rdev())),
            (195, gpu.minor())
        );
        assert_eq!(meta.permissions().mode() & 0o777, 0o666);
    }
}

#[test]
fn a100x8_capabilities_for_existing_instances_only() {
    check_caps_for_existing_instances_only("a100x8.json");
    // Spot checks against the geometry: the split GI has CIs 0 and 2, not 1.
    let (_dir, root) = build("a100x8.json");
    let gi = root.join("proc/driver/nvidia/capabilities/gpu3/mig/gi1");
    assert!(gi.join("ci0/access").is_file());
    assert!(!gi.join("ci1").exists());
    assert!(gi.join("ci2/access").is_file());
    // MIG disabled or empty: the folder only.
    for n in [4, 5] {
        let mig = root.join(format!("proc/driver/nvidia/capabilities/gpu{n}/mig"));
        assert_eq!(fs::read_dir(mig).unwrap().count(), 0, "gpu{n}");
    }
}

#[test]
fn h100x4_capabilities_follow_minors_not_indexes() {
    check_caps_for_existing_instances_only("h100x4.json");
    let (_dir, root) = build("h100x4.json");
    let caps = root.join("proc/driver/nvidia/capabilities");
    // NVML index 0 is minor 2: its 1g.10gb+me (GI 7) is under gpu2.
    assert!(caps.join("gpu2/mig/gi7/ci0/access").is_file());
    assert_eq!(
        fs::read_dir(caps.join("gpu0/mig")).unwrap().count(),
        0,
        "minor 0 = index 1, MIG off"
    );
    // information files carry the minor too.
    let info =
        fs::read_to_string(root.join("proc/driver/nvidia/gpus/0000:18:00.0/information")).unwrap();
    assert!(info.contains("Device Minor: \t 2\n"), "{info}");
    assert!(
        info.contains("Model: \t\t NVIDIA H100 80GB HBM3\n"),
        "{info}"
    );
}

#[test]
fn h200_mig_capabilities() {
    check_caps_for_existing_instances_only("h200-mig.json");
}

#[test]
fn plan_without_nodes_makes_dev_folders_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let opts = BuildOptions {
        nodes: false,
        overwrite: false,
    };
    let done = fakeroot::build(&machine("a100x8.json"), &root, &opts).unwrap();
    assert!(!done.iter().any(|e| matches!(e, Entry::CharDevice { .. })));
    assert!(root.join("dev/nvidia-caps").is_dir());
    assert_eq!(
        fs::read_dir(root.join("dev/nvidia-caps")).unwrap().count(),
        0
    );
    assert!(!root.join("dev/nvidia0").exists());
}

#[test]
fn refuses_a_non_empty_root_unless_overwriting() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    fs::write(root.join("keep-me"), "mine").unwrap();
    let opts = BuildOptions {
        nodes: false,
        overwrite: false,
    };
    let err = fakeroot::build(&machine("h200.json"), &root, &opts).unwrap_err();
    assert!(matches!(err, FakeRootError::NotEmpty(_)), "{err}");
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(fs::read_dir(&root).unwrap().count(), 1, "nothing written");
}

#[test]
fn overwrite_replaces_only_what_it_generated() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let nodes = is_root();
    let first = BuildOptions {
        nodes,
        overwrite: false,
    };
    fakeroot::build(&machine("a100x8.json"), &root, &first).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/hosts"), "user file").unwrap();
    fs::write(root.join("proc/cpuinfo"), "user file").unwrap();

    let again = BuildOptions {
        nodes,
        overwrite: true,
    };
    fakeroot::build(&machine("h200.json"), &root, &again).unwrap();
    // The A100 machine's traces are gone...
    assert!(!root.join("proc/driver/nvidia/gpus/0000:07:00.0").exists());
    assert!(!root.join("proc/driver/nvidia/capabilities/gpu1").exists());
    assert!(!root.join("dev/nvidia7").exists());
    if nodes {
        let caps: Vec<_> = fs::read_dir(root.join("dev/nvidia-caps"))
            .unwrap()
            .collect();
        assert_eq!(caps.len(), 2, "only config and monitor remain");
    }
    // ... the H200's are there, and the user's files are untouched.
    assert!(root
        .join("proc/driver/nvidia/gpus/0000:00:06.0/information")
        .is_file());
    assert_eq!(
        fs::read_to_string(root.join("etc/hosts")).unwrap(),
        "user file"
    );
    assert_eq!(
        fs::read_to_string(root.join("proc/cpuinfo")).unwrap(),
        "user file"
    );
}

#[test]
fn never_follows_symlinks_out_of_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir_all(outside.join("driver/nvidia")).unwrap();
    fs::write(outside.join("driver/nvidia/version"), "precious").unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("proc")).unwrap();

    let opts = BuildOptions {
        nodes: false,
        overwrite: true,
    };
    let err = fakeroot::build(&machine("h200.json"), &root, &opts).unwrap_err();
    assert!(matches!(err, FakeRootError::Symlink(_)), "{err}");
    assert_eq!(
        fs::read_to_string(outside.join("driver/nvidia/version")).unwrap(),
        "precious"
    );

    // A root that is itself a link is refused too.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let err = fakeroot::build(&machine("h200.json"), &link, &opts).unwrap_err();
    assert!(matches!(err, FakeRootError::Symlink(_)), "{err}");
}

#[test]
fn refuses_the_real_root() {
    // overwrite: false, so even a broken check could not remove anything.
    let opts = BuildOptions {
        nodes: false,
        overwrite: false,
    };
    let err = fakeroot::build(&machine("h200.json"), Path::new("/"), &opts).unwrap_err();
    assert!(matches!(err, FakeRootError::RealRoot(_)), "{err}");
}

fn planted(fake_root: serde_json::Value) -> Machine {
    let mut value: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(machines_dir().join("h200-mig.json")).unwrap())
            .unwrap();
    value["fakeRoot"] = fake_root;
    Machine::from_json(&value.to_string()).unwrap()
}

fn char_nodes(entries: &[Entry]) -> std::collections::BTreeMap<PathBuf, (u32, u32)> {
    entries
        .iter()
        .filter_map(|e| match e {
            Entry::CharDevice {
                path, major, minor, ..
            } => Some((path.clone(), (*major, *minor))),
            _ => None,
        })
        .collect()
}

#[test]
fn planted_missing_and_wrong_nodes_change_only_those_nodes() {
    let clean = char_nodes(&fakeroot::plan(&machine("h200-mig.json")));
    let faulty = planted(serde_json::json!({
        "missingNodes": ["/dev/nvidia-caps/nvidia-cap67"],
        "wrongNodes": [{ "path": "/dev/nvidia-caps/nvidia-cap76", "major": 241, "minor": 94 }]
    }));
    let mut want = clean.clone();
    want.remove(Path::new("dev/nvidia-caps/nvidia-cap67"));
    want.insert("dev/nvidia-caps/nvidia-cap76".into(), (241, 94));
    assert_eq!(char_nodes(&fakeroot::plan(&faulty)), want);
    // The /proc side is the driver's, untouched.
    let files = |m: &Machine| -> Vec<Entry> {
        fakeroot::plan(m)
            .into_iter()
            .filter(|e| matches!(e, Entry::File { .. }))
            .collect()
    };
    assert_eq!(files(&faulty), files(&machine("h200-mig.json")));
}

#[test]
fn the_proc_capability_model_has_no_caps_major_and_no_cap_nodes() {
    let machine = planted(serde_json::json!({ "capabilityModel": "proc" }));
    let entries = fakeroot::plan(&machine);
    assert!(entries
        .iter()
        .all(|e| !e.path().starts_with("dev/nvidia-caps")));
    let file = |rel: &str| -> String {
        entries
            .iter()
            .find_map(|e| match e {
                Entry::File { path, contents } if path == Path::new(rel) => Some(contents.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {rel}"))
    };
    let devices = file("proc/devices");
    assert!(!devices.contains("241 nvidia-caps\n"), "{devices}");
    assert!(devices.contains("242 nvidia-caps-imex-channels\n"));
    assert_eq!(
        file("sys/module/nvidia/parameters/nv_cap_enable_devfs"),
        "0\n"
    );
    // The capability files stay: the /proc model is made of them.
    assert!(entries
        .iter()
        .any(|e| e.path() == Path::new("proc/driver/nvidia/capabilities/gpu0/mig/gi7/access")));
}
