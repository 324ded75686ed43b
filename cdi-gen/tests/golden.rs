//! Golden specs: the real `mig-cdi-gen generate` through the NVML
//! simulator, on every machine in examples/machines and every naming
//! strategy, compared byte for byte with tests/golden/. Reviewed by eye
//! once, then pinned: a change here is a change every node would see.
//!
//! To re-pin after an intended change: `MIG_CDI_UPDATE_GOLDEN=1 cargo test
//! -p mig-cdi-gen --test golden`, then review `git diff tests/golden`.

use std::path::{Path, PathBuf};

use mig_cdi_core::cdi::{self, Format, SchemaValidator};
use mig_cdi_testkit::e2e::FakeMachine;
use mig_cdi_testkit::paths::repo_root;

const STRATEGY_SETS: [(&str, &[&str]); 4] = [
    ("default", &[]),
    ("index", &["--device-name-strategy", "index"]),
    ("uuid", &["--device-name-strategy", "uuid"]),
    ("type-index", &["--device-name-strategy", "type-index"]),
];

fn golden(rel: &str) -> PathBuf {
    repo_root().join("tests/golden").join(rel)
}

/// Compare with the pinned file, or pin it when asked to.
fn assert_golden(rel: &str, actual: &[u8]) {
    let path = golden(rel);
    if std::env::var_os("MIG_CDI_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; pin it with MIG_CDI_UPDATE_GOLDEN=1 and review it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs from the generated spec; if the change is intended, rerun with \
         MIG_CDI_UPDATE_GOLDEN=1 and review `git diff tests/golden`\n--- generated:\n{}",
        path.display(),
        String::from_utf8_lossy(actual)
    );
}

fn assert_valid(bytes: &[u8], format: Format) -> cdi::Spec {
    let checked = cdi::check_document(bytes, format, &SchemaValidator::new().unwrap());
    assert!(checked.is_valid(), "{:#?}", checked.problems);
    assert!(checked.notes.is_empty(), "{:?}", checked.notes);
    checked.spec.unwrap()
}

fn machines() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("examples/machines"))
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            (path.extension()? == "json").then(|| path.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    assert!(!names.is_empty());
    names
}

#[test]
fn every_machine_and_strategy_matches_its_golden_spec() {
    for name in machines() {
        let machine = FakeMachine::new(&name);
        for (set, flags) in STRATEGY_SETS {
            let mut args = vec!["generate", "--no-driver-files"];
            args.extend_from_slice(flags);
            let out = machine.gen_ok(&args);
            let spec = assert_valid(out.as_bytes(), Format::Json);
            assert!(spec.devices.iter().all(|d| d.name != "all"));
            // Twice the same bytes.
            assert_eq!(machine.gen_ok(&args), out, "{name} {set}");
            assert_golden(&format!("{name}/{set}.json"), out.as_bytes());
        }
    }
}

#[test]
fn yaml_output_matches_its_golden_and_the_json() {
    let machine = FakeMachine::new("h100x4");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nvidia.com-gpu.yaml");
    machine.gen_ok(&[
        "generate",
        "--no-driver-files",
        "--output",
        file.to_str().unwrap(),
    ]);
    let yaml = std::fs::read(&file).unwrap();
    assert_golden("h100x4/default.yaml", &yaml);
    let from_yaml = assert_valid(&yaml, Format::Yaml);
    let json = machine.gen_ok(&["generate", "--no-driver-files"]);
    assert_eq!(from_yaml, assert_valid(json.as_bytes(), Format::Json));
}

#[test]
fn h100_index_names_follow_nvml_order_and_nodes_follow_minor_numbers() {
    // h100x4: NVML index 0 -> minor 2, 1 -> 0, 2 -> 3, 3 -> 1.
    let machine = FakeMachine::new("h100x4");
    let spec = assert_valid(
        machine
            .gen_ok(&["generate", "--no-driver-files"])
            .as_bytes(),
        Format::Json,
    );
    let paths = |name: &str| -> Vec<String> {
        let device = spec.devices.iter().find(|d| d.name == name).unwrap();
        device
            .container_edits
            .device_nodes
            .iter()
            .map(|n| format!("{} {}:{}", n.path, n.major.unwrap(), n.minor.unwrap()))
            .collect()
    };
    // MIG 0:0 is GI 4 of GPU minor 2: caps 3 + 135*2 + 9*4 = 309, CI 0 = 310.
    assert_eq!(
        paths("0:0"),
        [
            "/dev/nvidia2 195:2",
            "/dev/nvidia-caps/nvidia-cap309 241:309",
            "/dev/nvidia-caps/nvidia-cap310 241:310"
        ]
    );
    assert_eq!(paths("1"), ["/dev/nvidia0 195:0"]);
    // 7g.80gb (GI 0) of minor 3 split into CI 0 and CI 4.
    assert_eq!(
        paths("2:1"),
        [
            "/dev/nvidia3 195:3",
            "/dev/nvidia-caps/nvidia-cap408 241:408",
            "/dev/nvidia-caps/nvidia-cap413 241:413"
        ]
    );
    // 3g.40gb at 4 is GI 2 of minor 1.
    assert_eq!(
        paths("3:0"),
        [
            "/dev/nvidia1 195:1",
            "/dev/nvidia-caps/nvidia-cap156 241:156",
            "/dev/nvidia-caps/nvidia-cap157 241:157"
        ]
    );
    // A GPU in MIG mode has no device of its own.
    assert!(spec
        .devices
        .iter()
        .all(|d| !matches!(d.name.as_str(), "0" | "2" | "3")));
}

/// The profile in the spec is the one `list` reports, under every name of
/// every MIG device; a whole GPU gets no environment at all.
#[test]
fn every_mig_device_carries_its_profile_as_list_reports_it() {
    use mig_cdi_core::cdi::render::PROFILE_ENV;
    for name in machines() {
        let machine = FakeMachine::new(&name);
        let out = machine.gen_ok(&[
            "generate",
            "--no-driver-files",
            "--device-name-strategy",
            "index,uuid,type-index",
        ]);
        let spec = assert_valid(out.as_bytes(), Format::Json);
        let list: serde_json::Value =
            serde_json::from_str(&machine.gen_ok(&["list", "--json"])).unwrap();
        let devices = list["devices"].as_array().unwrap();
        assert!(!devices.is_empty(), "{name}");
        for device in devices {
            let (index, uuid) = (
                device["name"].as_str().unwrap(),
                device["uuid"].as_str().unwrap(),
            );
            let type_index = match device["kind"].as_str().unwrap() {
                "mig" => format!("mig{index}"),
                _ => format!("gpu{index}"),
            };
            let want: Vec<String> = match device["kind"].as_str().unwrap() {
                "mig" => vec![format!(
                    "{PROFILE_ENV}={}",
                    device["profile"].as_str().unwrap()
                )],
                _ => Vec::new(),
            };
            for spec_name in [index, uuid, type_index.as_str()] {
                let found = spec
                    .devices
                    .iter()
                    .find(|d| d.name == spec_name)
                    .unwrap_or_else(|| panic!("{name}: no device {spec_name}"));
                assert_eq!(found.container_edits.env, want, "{name} {spec_name}");
            }
        }
        assert_eq!(spec.devices.len(), 3 * devices.len(), "{name}");
        assert!(spec.container_edits.env.is_empty(), "{name}");
    }
}

/// Move the fake root's dev/ under `<root>/run/nvidia/driver`, as a
/// driver container installs it.
fn move_dev_under(root: &Path, dev_root: &str) {
    let target = root.join(dev_root.trim_start_matches('/'));
    std::fs::create_dir_all(&target).unwrap();
    std::fs::rename(root.join("dev"), target.join("dev")).unwrap();
}

#[test]
fn dev_root_gives_host_paths() {
    let machine = FakeMachine::new("h200-mig");
    move_dev_under(&machine.root, "/run/nvidia/driver");
    let out = machine.gen_ok(&[
        "--dev-root",
        "/run/nvidia/driver",
        "generate",
        "--no-driver-files",
        "--device-name-strategy",
        "uuid",
    ]);
    let spec = assert_valid(out.as_bytes(), Format::Json);
    assert_eq!(spec.cdi_version, "0.5.0");
    assert_golden("h200-mig/dev-root-uuid.json", out.as_bytes());
    // Without it the nodes are not found, and the error says which.
    let fail = machine.gen(&["generate", "--no-driver-files"]);
    assert_eq!(fail.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&fail.stderr).contains("missing"));
}

/// With the driver's files (the default): the simulated root's stand-in
/// libraries, utility and firmware as read-only mounts, and the
/// createContainer hooks with their soname links and cache entries. The
/// hook's path is given, so each MIG device also has its verify and
/// release hooks (`verify_hooks.rs` checks those).
#[test]
fn every_machine_with_driver_files_matches_its_golden_spec() {
    for name in machines() {
        let machine = FakeMachine::new(&name);
        let hook = ["--hook-path", "/usr/local/bin/mig-cdi-hook"];
        let args = ["generate", hook[0], hook[1]];
        let out = machine.gen_ok(&args);
        let spec = assert_valid(out.as_bytes(), Format::Json);
        let edits = &spec.container_edits;
        assert!(
            edits
                .mounts
                .iter()
                .any(|m| m.container_path.ends_with("/libcuda.so.580.159.04")
                    || m.container_path.contains("/libcuda.so.")),
            "{name}: no libcuda mount"
        );
        assert!(edits
            .hooks
            .iter()
            .all(|h| h.path == "/usr/local/bin/mig-cdi-hook" && !h.env.is_empty()));
        // The device-only spec is the same spec without them.
        let plain = machine.gen_ok(&["generate", "--no-driver-files", hook[0], hook[1]]);
        let mut without: serde_json::Value = serde_json::from_str(&out).unwrap();
        let edits = without["containerEdits"].as_object_mut().unwrap();
        edits.remove("mounts");
        edits.remove("hooks");
        assert_eq!(
            without,
            serde_json::from_str::<serde_json::Value>(&plain).unwrap(),
            "{name}"
        );
        assert_golden(&format!("{name}/driver-files.json"), out.as_bytes());
    }
}

#[test]
fn a_missing_or_mismatched_library_is_named_and_nothing_is_written() {
    let machine = FakeMachine::new("h200");
    let libs = machine.root.join("usr/lib/x86_64-linux-gnu");
    let out_file = machine.root.join("spec.json");
    std::fs::rename(
        libs.join("libnvidia-ml.so.580.159.04"),
        libs.join("libnvidia-ml.so.570.86.10"),
    )
    .unwrap();
    let out = machine.gen(&["generate", "--output", out_file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("libnvidia-ml.so.570.86.10 is version 570.86.10 but the loaded kernel module is 580.159.04"),
        "{err}"
    );
    std::fs::remove_file(libs.join("libnvidia-ml.so.570.86.10")).unwrap();
    let out = machine.gen(&["generate", "--output", out_file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("libnvidia-ml.so.580.159.04 (the running driver's) is not installed"),
        "{err}"
    );
    std::fs::create_dir_all(machine.root.join("etc")).unwrap();
    std::fs::write(machine.root.join("etc/ld.so.cache"), b"garbled").unwrap();
    let out = machine.gen(&["generate", "--output", out_file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ld.so.cache: not a loader cache"), "{err}");
    assert!(!out_file.exists());
    // --no-driver-files still works on such a host.
    machine.gen_ok(&["generate", "--no-driver-files"]);
}
