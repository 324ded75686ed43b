//! Rendering hand-built inventories into CDI specs: names, nodes, the
//! declared version, and validity under the schema and the rules.

use mig_cdi_core::cdi::{
    self, format, render, CdiVersion, Format, NameStrategy, RenderOptions, SchemaValidator, Spec,
};
use mig_cdi_testkit::inventory::*;

fn names(spec: &Spec) -> Vec<&str> {
    spec.devices.iter().map(|d| d.name.as_str()).collect()
}

fn assert_valid(spec: &Spec) {
    let schema = SchemaValidator::new().unwrap();
    let value = serde_json::to_value(spec).unwrap();
    let checked = cdi::check_value(&value, &schema);
    assert!(checked.problems.is_empty(), "{:#?}", checked.problems);
    assert_eq!(checked.spec.as_ref(), Some(spec));
}

#[test]
fn default_names_are_index_then_uuid_per_device() {
    let spec = render(&two_gpus(), &RenderOptions::default());
    assert_eq!(
        names(&spec),
        [
            "0:0",
            "MIG-aaaaaaaa-0000-0000-0000-000000000001",
            "0:1",
            "MIG-aaaaaaaa-0000-0000-0000-000000000002",
            "1",
            "GPU-bbbbbbbb-0000-0000-0000-000000000000",
        ]
    );
    assert_eq!(spec.kind, "nvidia.com/gpu");
    // Index names start with a digit: 0.5.0, and nothing newer.
    assert_eq!(spec.cdi_version, "0.5.0");
    assert!(!names(&spec).contains(&"all"));
    assert_valid(&spec);
}

#[test]
fn every_strategy_and_canonical_order_whatever_the_flags_say() {
    let options = RenderOptions {
        strategies: vec![
            NameStrategy::TypeIndex,
            NameStrategy::Uuid,
            NameStrategy::Index,
            NameStrategy::TypeIndex,
        ],
        ..RenderOptions::default()
    };
    let spec = render(&two_gpus(), &options);
    assert_eq!(
        &names(&spec)[..3],
        ["0:0", "MIG-aaaaaaaa-0000-0000-0000-000000000001", "mig0:0"]
    );
    assert_eq!(names(&spec)[8], "gpu1");
    assert_eq!(spec.devices.len(), 9);
    assert_valid(&spec);
}

#[test]
fn names_that_start_with_a_letter_need_only_0_3_0() {
    for strategy in [NameStrategy::Uuid, NameStrategy::TypeIndex] {
        let options = RenderOptions {
            strategies: vec![strategy],
            ..RenderOptions::default()
        };
        let spec = render(&two_gpus(), &options);
        assert_eq!(spec.cdi_version, "0.3.0", "{strategy:?}");
        assert_valid(&spec);
    }
}

#[test]
fn mig_device_nodes_permissions_and_modes() {
    let spec = render(&two_gpus(), &RenderOptions::default());
    let json = serde_json::to_value(&spec.devices[0]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "name": "0:0",
            "containerEdits": {"env": ["MIG_CDI_PROFILE=1g.18gb"], "deviceNodes": [
                {"path": "/dev/nvidia1", "type": "c", "major": 195, "minor": 1,
                 "fileMode": 0o666, "permissions": "rw"},
                {"path": "/dev/nvidia-caps/nvidia-cap147", "type": "c", "major": 241,
                 "minor": 147, "fileMode": 0o444, "permissions": "r"},
                {"path": "/dev/nvidia-caps/nvidia-cap148", "type": "c", "major": 241,
                 "minor": 148, "fileMode": 0o444, "permissions": "r"},
            ]}
        })
    );
    // Control nodes once, at spec level, sorted by path; minor 0 written.
    let control = serde_json::to_value(&spec.container_edits).unwrap();
    assert_eq!(
        control,
        serde_json::json!({"deviceNodes": [
            {"path": "/dev/nvidia-uvm", "type": "c", "major": 238, "minor": 0,
             "fileMode": 0o666, "permissions": "rw"},
            {"path": "/dev/nvidia-uvm-tools", "type": "c", "major": 238, "minor": 1,
             "fileMode": 0o666, "permissions": "rw"},
            {"path": "/dev/nvidiactl", "type": "c", "major": 195, "minor": 255,
             "fileMode": 0o666, "permissions": "rw"},
        ]})
    );
    for device in &spec.devices {
        for node in &device.container_edits.device_nodes {
            assert!(!node.permissions.as_deref().unwrap().contains('m'));
            assert_eq!(node.host_path, None);
        }
    }
}

#[test]
fn each_mig_device_names_its_profile_and_a_whole_gpu_gets_no_env() {
    use mig_cdi_core::cdi::render::PROFILE_ENV;
    use mig_cdi_core::nodes::DeviceKind;
    let mut inventory = two_gpus();
    if let DeviceKind::Mig { profile, .. } = &mut inventory.devices[1].kind {
        *profile = "2c.3g.40gb".into();
    }
    for strategies in [NameStrategy::DEFAULT.to_vec(), vec![NameStrategy::Uuid]] {
        let spec = render(
            &inventory,
            &RenderOptions {
                strategies,
                ..RenderOptions::default()
            },
        );
        let env = |name: &str| {
            let device = spec.devices.iter().find(|d| d.name == name).unwrap();
            device.container_edits.env.clone()
        };
        assert_eq!(PROFILE_ENV, "MIG_CDI_PROFILE");
        assert_eq!(
            env("MIG-aaaaaaaa-0000-0000-0000-000000000001"),
            ["MIG_CDI_PROFILE=1g.18gb"]
        );
        assert_eq!(
            env("MIG-aaaaaaaa-0000-0000-0000-000000000002"),
            ["MIG_CDI_PROFILE=2c.3g.40gb"]
        );
        assert!(env("GPU-bbbbbbbb-0000-0000-0000-000000000000").is_empty());
        // Nothing spec-wide, and no hooks unless asked for.
        assert!(spec.container_edits.env.is_empty());
        assert!(spec
            .devices
            .iter()
            .all(|d| d.container_edits.hooks.is_empty()));
        assert_valid(&spec);
    }
    // Env in device edits is a 0.3.0 feature: uuid names alone stay 0.3.0.
    let uuid_only = RenderOptions {
        strategies: vec![NameStrategy::Uuid],
        ..RenderOptions::default()
    };
    assert_eq!(render(&inventory, &uuid_only).cdi_version, "0.3.0");
}

#[test]
fn a_verify_hook_gives_each_mig_device_its_verify_and_release_hooks() {
    use mig_cdi_core::cdi::render::{VerifyHook, HOOK_ENV};
    for (state_dir, extra) in [
        (None, vec![]),
        (Some("/run/mig-cdi"), vec!["--state-dir", "/run/mig-cdi"]),
    ] {
        let options = RenderOptions {
            verify_hook: Some(VerifyHook {
                path: "/opt/x/mig-cdi-hook".into(),
                state_dir: state_dir.map(String::from),
                extra: Vec::new(),
            }),
            ..RenderOptions::default()
        };
        let spec = render(&two_gpus(), &options);
        for device in &spec.devices {
            let hooks = &device.container_edits.hooks;
            if device.name == "1" || device.name.starts_with("GPU-") {
                assert!(hooks.is_empty(), "{}: {hooks:?}", device.name);
                continue;
            }
            let stages: Vec<(&str, &str)> = hooks
                .iter()
                .map(|h| (h.hook_name.as_str(), h.args[1].as_str()))
                .collect();
            assert_eq!(
                stages,
                [("createRuntime", "verify"), ("poststop", "poststop")],
                "{}",
                device.name
            );
            for hook in hooks {
                assert_eq!(hook.path, "/opt/x/mig-cdi-hook");
                assert_eq!(hook.args[0], "mig-cdi-hook");
                assert_eq!(hook.args[2..], extra[..]);
                assert_eq!(hook.env, [HOOK_ENV]);
                assert_eq!(hook.timeout, None);
            }
        }
        // In the devices' edits only; the version is the names' own.
        assert!(spec.container_edits.hooks.is_empty());
        assert_eq!(spec.cdi_version, "0.5.0");
        assert_valid(&spec);
    }
}

#[test]
fn a_gpu_in_mig_mode_with_no_mig_devices_gets_nothing() {
    let mut inventory = two_gpus();
    inventory.devices.retain(|d| !d.is_mig());
    let spec = render(&inventory, &RenderOptions::default());
    assert_eq!(
        names(&spec),
        ["1", "GPU-bbbbbbbb-0000-0000-0000-000000000000"]
    );
}

#[test]
fn dev_root_adds_host_paths_and_needs_0_5_0() {
    let options = RenderOptions {
        strategies: vec![NameStrategy::Uuid],
        dev_root: Some("/run/nvidia/driver/".into()),
        ..RenderOptions::default()
    };
    let spec = render(&two_gpus(), &options);
    assert_eq!(spec.cdi_version, "0.5.0");
    let node = &spec.devices[0].container_edits.device_nodes[1];
    assert_eq!(node.path, "/dev/nvidia-caps/nvidia-cap147");
    assert_eq!(
        node.host_path.as_deref(),
        Some("/run/nvidia/driver/dev/nvidia-caps/nvidia-cap147")
    );
    assert_eq!(
        spec.container_edits.device_nodes[2].host_path.as_deref(),
        Some("/run/nvidia/driver/dev/nvidiactl")
    );
    assert_valid(&spec);

    let root = RenderOptions {
        dev_root: Some("/".into()),
        strategies: vec![NameStrategy::Uuid],
        ..RenderOptions::default()
    };
    let spec = render(&two_gpus(), &root);
    assert_eq!(spec.cdi_version, "0.3.0");
}

#[test]
fn a_class_with_a_dot_needs_0_6_0() {
    let options = RenderOptions {
        class: "mig.gpu".into(),
        strategies: vec![NameStrategy::Uuid],
        ..RenderOptions::default()
    };
    let spec = render(&two_gpus(), &options);
    assert_eq!(spec.cdi_version, CdiVersion::V0_6_0.as_str());
    assert_valid(&spec);
}

#[test]
fn enumeration_order_does_not_change_the_bytes() {
    let reference = format::to_bytes(
        &render(&two_gpus(), &RenderOptions::default()),
        Format::Json,
    )
    .unwrap();
    let mut shuffled = two_gpus();
    shuffled.devices.reverse();
    shuffled.control_nodes.reverse();
    for device in &mut shuffled.devices {
        device.nodes.reverse();
    }
    let bytes =
        format::to_bytes(&render(&shuffled, &RenderOptions::default()), Format::Json).unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        String::from_utf8(reference).unwrap()
    );
}

#[test]
fn json_ends_with_a_newline_and_reads_back() {
    let spec = render(&two_gpus(), &RenderOptions::default());
    let bytes = format::to_bytes(&spec, Format::Json).unwrap();
    assert!(bytes.ends_with(b"}\n"));
    let schema = SchemaValidator::new().unwrap();
    let checked = cdi::check_document(&bytes, Format::Json, &schema);
    assert!(checked.is_valid(), "{:#?}", checked.problems);
    assert_eq!(checked.spec, Some(spec));
}

#[test]
fn yaml_keeps_index_names_as_strings() {
    let mut inventory = two_gpus();
    // "1:1" would be a base-60 integer to a YAML 1.1 reader if unquoted.
    inventory.devices.push(mig(
        1,
        0,
        1,
        3,
        0,
        "MIG-cccccccc-0000-0000-0000-000000000000",
    ));
    inventory.devices.retain(|d| d.is_mig());
    let spec = render(&inventory, &RenderOptions::default());
    let bytes = format::to_bytes(&spec, Format::Yaml).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains("name: \"1:1\""), "{text}");
    let value = format::parse_value(&bytes, Format::Yaml).unwrap();
    assert_eq!(value["devices"][0]["name"], "0:0");
    assert_eq!(value["devices"][4]["name"], "1:1");
    let schema = SchemaValidator::new().unwrap();
    let checked = cdi::check_document(&bytes, Format::Yaml, &schema);
    assert!(checked.is_valid(), "{:#?}", checked.problems);
    assert_eq!(checked.spec, Some(spec));
}

#[test]
fn an_empty_inventory_gives_a_spec_the_rules_refuse() {
    let mut inventory = two_gpus();
    inventory.devices.clear();
    let spec = render(&inventory, &RenderOptions::default());
    let problems = cdi::rules::check_spec(&spec);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].message.contains("at least one device"));
}

#[test]
fn driver_files_become_read_only_mounts_and_hooks_with_their_own_env() {
    use mig_cdi_core::cdi::render::{DriverEdits, HOOK_ENV};
    use mig_cdi_core::driver_files::{DriverFile, DriverFiles, Kind};
    let v = "580.159.04";
    let file = |path: &str, kind: Kind| DriverFile {
        path: path.into(),
        host_path: path.into(),
        kind,
    };
    let files = DriverFiles {
        version: v.into(),
        files: vec![
            file("/usr/bin/nvidia-smi", Kind::Utility),
            file(
                &format!("/usr/lib64/libcuda.so.{v}"),
                Kind::Library {
                    soname: Some("libcuda.so.1".into()),
                },
            ),
        ],
    };
    let options = RenderOptions {
        driver: Some(DriverEdits {
            files,
            driver_root: Some("/run/nvidia/driver".into()),
            hook_path: "/usr/local/bin/mig-cdi-hook".into(),
        }),
        ..RenderOptions::default()
    };
    let spec = render(&mig_cdi_testkit::inventory::two_gpus(), &options);
    let edits = &spec.container_edits;
    assert_eq!(edits.mounts.len(), 2);
    assert_eq!(
        edits.mounts[1].host_path,
        format!("/run/nvidia/driver/usr/lib64/libcuda.so.{v}")
    );
    assert_eq!(
        edits.mounts[1].container_path,
        format!("/usr/lib64/libcuda.so.{v}")
    );
    assert_eq!(edits.mounts[1].options, ["ro", "nosuid", "nodev", "bind"]);
    assert_eq!(edits.hooks.len(), 2);
    for hook in &edits.hooks {
        assert_eq!(hook.hook_name, "createContainer");
        assert_eq!(hook.path, "/usr/local/bin/mig-cdi-hook");
        assert_eq!(hook.env, [HOOK_ENV]);
    }
    assert_eq!(
        edits.hooks[0].args,
        [
            "mig-cdi-hook",
            "create-symlinks",
            "--link",
            "/usr/lib64/libcuda.so=libcuda.so.1",
            "--link",
            &format!("/usr/lib64/libcuda.so.1=libcuda.so.{v}"),
        ]
    );
    assert_eq!(
        edits.hooks[1].args,
        [
            "mig-cdi-hook",
            "update-ldcache",
            "--entry",
            "libcuda.so.1=/usr/lib64/libcuda.so.1"
        ]
    );
    // Still the lowest version that fits: mounts without a type and hooks
    // are 0.3.0 features.
    assert_eq!(spec.cdi_version, "0.5.0");
    let bytes = serde_json::to_vec(&spec).unwrap();
    let schema = mig_cdi_core::cdi::SchemaValidator::new().unwrap();
    let checked =
        mig_cdi_core::cdi::check_document(&bytes, mig_cdi_core::cdi::Format::Json, &schema);
    assert!(checked.is_valid(), "{:?}", checked.problems);
}
