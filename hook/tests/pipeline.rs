//! The whole hook run, end to end in memory: the public host and kernel
//! doubles stand in for the machine, so every stage — input, resolve,
//! verify, plan, apply — is driven through `run()` without root, and each
//! stage's refusal is seen from the outside, with nothing changed.

use std::path::{Path, PathBuf};

use mig_cdi_hook::cli::Settings;
use mig_cdi_hook::error::HookError;
use mig_cdi_hook::host::fake::{FakeFile, FakeHost};
use mig_cdi_hook::kernel::recording::{Op, Recording};
use mig_cdi_hook::kernel::Entry;
use mig_cdi_hook::lease::{DeviceKey, MemoryLedger};
use mig_cdi_hook::log::Log;
use mig_cdi_hook::run::{poststop, run, Outcome};
use serde_json::{json, Value};

const BUNDLE: &str = "/run/bundle";

fn spec() -> Value {
    let node = |path: &str, major: u32, minor: u32, perms: &str| json!({"path": path, "type": "c", "major": major, "minor": minor, "permissions": perms});
    let device = |name: &str, gi: u32, ci: u32| {
        json!({"name": name, "containerEdits": {"deviceNodes": [
            node("/dev/nvidia0", 195, 0, "rw"),
            node(&format!("/dev/nvidia-caps/nvidia-cap{gi}"), 241, gi, "r"),
            node(&format!("/dev/nvidia-caps/nvidia-cap{ci}"), 241, ci, "r"),
        ]}})
    };
    json!({
        "cdiVersion": "0.5.0", "kind": "nvidia.com/gpu",
        "devices": [device("0:0", 12, 13), device("0:1", 21, 22)],
        "containerEdits": {"deviceNodes": [
            node("/dev/nvidia-uvm", 238, 0, "rw"),
            node("/dev/nvidia-uvm-tools", 238, 1, "rw"),
            node("/dev/nvidiactl", 195, 255, "rw"),
        ]}
    })
}

fn config(env: &[&str], rules: Value) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"env": env, "capabilities": {"bounding": ["CAP_CHOWN"]}},
        "linux": {"resources": {"devices": rules}},
    })
}

/// Rules that allow exactly device 0:0's nodes and the control nodes.
fn rules_for_0_0() -> Value {
    let mut rules = vec![json!({"allow": false, "access": "rwm"})];
    for (major, minor, access) in [
        (195, 0, "rw"),
        (241, 12, "r"),
        (241, 13, "r"),
        (238, 0, "rw"),
        (238, 1, "rw"),
        (195, 255, "rw"),
    ] {
        rules.push(
            json!({"allow": true, "type": "c", "major": major, "minor": minor,
            "access": access}),
        );
    }
    Value::Array(rules)
}

struct Case {
    host: FakeHost,
    kernel: Recording,
    settings: Settings,
    ledger: MemoryLedger,
    /// The container id and init pid of the next run.
    id: String,
    pid: i32,
}

impl Case {
    fn new(config: Value) -> Self {
        let mut host = FakeHost::h200();
        host.processes.insert(4242, 77);
        host.write("/etc/cdi/nvidia.com-gpu.json", spec().to_string());
        host.write(format!("{BUNDLE}/config.json"), config.to_string());
        let mut kernel = Recording::default();
        kernel.entries.insert("dev".into(), Entry::Directory);
        let settings =
            Settings::from_args(vec!["--spec-dir".into(), "/etc/cdi".into()]).expect("settings");
        Self {
            host,
            kernel,
            settings,
            ledger: MemoryLedger::default(),
            id: "c1".into(),
            pid: 4242,
        }
    }

    /// The next run is another container, with its own live process.
    fn next_container(&mut self, id: &str, pid: i32) {
        self.id = id.into();
        self.pid = pid;
        self.host.processes.insert(pid, 1000 + pid as u64);
        self.kernel.ops.clear();
        self.kernel.entries.retain(|k, _| k == "dev");
    }

    fn run(&mut self) -> Result<Outcome, HookError> {
        let state = json!({"ociVersion": "1.0.2", "id": self.id, "status": "creating",
            "pid": self.pid, "bundle": BUNDLE});
        run(
            &self.settings,
            state.to_string().as_bytes(),
            &self.host,
            &mut self.kernel,
            &mut self.ledger,
            &mut Log::none(),
        )
    }

    fn stop(&mut self, id: &str) -> usize {
        let state = json!({"ociVersion": "1.0.2", "id": id, "status": "stopped", "bundle": BUNDLE});
        poststop(
            state.to_string().as_bytes(),
            &mut self.ledger,
            &mut Log::none(),
        )
        .unwrap()
    }

    /// `(container, device caps)` of each lease.
    fn leases(&self) -> Vec<(String, Vec<u32>)> {
        self.ledger
            .leases
            .iter()
            .map(|l| (l.container.clone(), l.device.caps.clone()))
            .collect()
    }

    /// Refused by `stage`, with `needle` in the message, nothing changed.
    fn refused(&mut self, stage: &str, needle: &str) -> String {
        let err = self.run().expect_err("refused");
        let text = err.to_string();
        assert_eq!(err.stage(), stage, "{text}");
        assert!(text.contains(needle), "{text}");
        assert!(
            !self
                .kernel
                .ops
                .iter()
                .any(|op| matches!(op, Op::Mknod(..) | Op::Mkdir(..) | Op::Cgroup(..))),
            "changed something: {:?}",
            self.kernel.ops
        );
        text
    }
}

#[test]
fn a_requested_device_is_injected_with_exactly_its_nodes() {
    let mut case = Case::new(config(&["NVIDIA_VISIBLE_DEVICES=0:0"], rules_for_0_0()));
    let Outcome::Injected(report) = case.run().expect("injected") else {
        panic!("nothing injected");
    };
    assert_eq!(
        report.created,
        [
            "/dev/nvidia0",
            "/dev/nvidia-caps/nvidia-cap12",
            "/dev/nvidia-caps/nvidia-cap13",
            "/dev/nvidia-uvm",
            "/dev/nvidia-uvm-tools",
            "/dev/nvidiactl",
        ]
    );
    assert!(case.kernel.ops.contains(&Op::Mknod(
        "dev/nvidia-caps/nvidia-cap12".into(),
        0o444,
        241,
        12
    )));
    // cgroup v2 (the fake's default): the rules in config.json are the
    // whole truth, nothing is written.
    assert!(report.cgroup_lines.is_empty());
}

#[test]
fn cgroup_v1_gets_the_missing_rules() {
    let mut case = Case::new(config(
        &["NVIDIA_VISIBLE_DEVICES=0:1"],
        json!([{"allow": false, "access": "rwm"}]),
    ));
    case.host.proc_cgroup = "5:devices:/c1\n0::/c1\n".into();
    case.host.mountinfo =
        "36 31 0:31 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n".into();
    let Outcome::Injected(report) = case.run().expect("injected") else {
        panic!("nothing injected");
    };
    assert_eq!(
        report.cgroup_lines,
        [
            "c 195:0 rw",
            "c 241:21 r",
            "c 241:22 r",
            "c 238:0 rw",
            "c 238:1 rw",
            "c 195:255 rw"
        ]
    );
    assert!(case.kernel.ops.contains(&Op::Cgroup(
        "/sys/fs/cgroup/devices/c1/devices.allow".into(),
        "c 241:21 r".into()
    )));
}

#[test]
fn a_container_that_asks_for_nothing_is_left_alone() {
    for config in [
        config(&["PATH=/bin"], json!([])).to_string(),
        // Not even JSON the hook can decode, but it names no request.
        r#"{"process": {"env": "SECRET"}, "x": "#.to_string(),
    ] {
        let mut case = Case::new(json!({}));
        case.host.write(format!("{BUNDLE}/config.json"), config);
        assert!(matches!(case.run(), Ok(Outcome::Nothing(_))));
        assert!(case.kernel.ops.is_empty());
    }
    // Nothing asked, but the driver is gone and the spec folder broken:
    // still nothing to do.
    let mut case = Case::new(config(&["PATH=/bin"], json!([])));
    case.host.driver = None;
    case.host.files.insert(
        "/etc/cdi/nvidia.com-gpu.json".into(),
        FakeFile::NotRegular("a FIFO"),
    );
    assert!(matches!(case.run(), Ok(Outcome::Nothing(_))));
}

#[test]
fn input_stage_refusals() {
    let mut case = Case::new(config(&["NVIDIA_VISIBLE_DEVICES=../x"], json!([])));
    case.refused("input", "is not a device name");
    let mut case = Case::new(json!({}));
    case.host.files.insert(
        PathBuf::from(BUNDLE).join("config.json"),
        FakeFile::NotRegular("a FIFO"),
    );
    case.refused("input", "a FIFO, not a regular file");
    let mut case = Case::new(config(
        &["NVIDIA_VISIBLE_DEVICES=0:0"],
        json!([{"allow": true, "type": "p", "access": "rwm"}]),
    ));
    case.refused("input", "runc and crun refuse it");
    let mut with_userns = config(&["NVIDIA_VISIBLE_DEVICES=0:0"], rules_for_0_0());
    with_userns["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let mut case = Case::new(with_userns);
    case.refused("input", "user namespace");
}

#[test]
fn resolve_stage_refusals() {
    let mut case = Case::new(config(&["NVIDIA_VISIBLE_DEVICES=0:0,0:1"], rules_for_0_0()));
    case.refused("resolve", "asks for 2 MIG devices");
    let mut case = Case::new(config(&["NVIDIA_VISIBLE_DEVICES=7:7"], rules_for_0_0()));
    case.refused("resolve", "no CDI device nvidia.com/gpu=7:7");
    let mut case = Case::new(config(
        &["NVIDIA_VISIBLE_DEVICES=example.com/gpu=0:0"],
        rules_for_0_0(),
    ));
    case.refused("resolve", "injects nvidia.com devices only");
}

#[test]
fn verify_stage_refusals() {
    // The instance is gone.
    let mut case = Case::new(config(&["NVIDIA_VISIBLE_DEVICES=0:0"], rules_for_0_0()));
    case.host
        .caps
        .retain(|(key, _)| key.file() != "gpu0/mig/gi1/ci0/access");
    case.refused("verify", "has minor 13 now");
    // A spec that hands out more than the device's nodes.
    let mut case = Case::new(config(&["NVIDIA_VISIBLE_DEVICES=0:0"], rules_for_0_0()));
    let mut bad = spec();
    bad["devices"][0]["containerEdits"]["deviceNodes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"path": "/dev/mem", "type": "c", "major": 1, "minor": 1}));
    case.host
        .write("/etc/cdi/nvidia.com-gpu.json", bad.to_string());
    case.refused("verify", "\"/dev/mem\", which is not an NVIDIA device node");
    // A spec that also mounts files: a hook cannot, the runtime wrapper can.
    let mut case = Case::new(config(&["NVIDIA_VISIBLE_DEVICES=0:0"], rules_for_0_0()));
    let mut with_mounts = spec();
    with_mounts["containerEdits"]["mounts"] = json!([{"hostPath": "/usr/lib64/libcuda.so.1",
        "containerPath": "/usr/lib64/libcuda.so.1", "options": ["ro", "bind"]}]);
    case.host
        .write("/etc/cdi/nvidia.com-gpu.json", with_mounts.to_string());
    case.refused(
        "verify",
        "also gives 1 mounts, which a prestart or createRuntime hook cannot",
    );
    // MIG monitoring without CAP_SYS_ADMIN (lower case does not count).
    let mut monitored = config(
        &[
            "NVIDIA_VISIBLE_DEVICES=0:0",
            "NVIDIA_MIG_MONITOR_DEVICES=all",
        ],
        rules_for_0_0(),
    );
    monitored["process"]["capabilities"]["bounding"] = json!(["cap_sys_admin"]);
    let mut case = Case::new(monitored);
    case.refused("verify", "runc ignores capability names");
}

#[test]
fn plan_stage_refusals() {
    let mut case = Case::new(config(
        &["NVIDIA_VISIBLE_DEVICES=0:0"],
        json!([{"allow": true, "type": "c", "major": 241, "access": "rwm"}]),
    ));
    case.refused("plan", "voids MIG isolation");
    let mut case = Case::new(config(
        &["NVIDIA_VISIBLE_DEVICES=0:0"],
        json!([{"allow": false, "access": "rwm"}]),
    ));
    case.refused("plan", "--device-cgroup-rule='c 241:12 r'");
    let mut case = Case::new(config(&["NVIDIA_VISIBLE_DEVICES=0:0"], rules_for_0_0()));
    case.host.without(caps::Capability::CAP_MKNOD);
    case.refused("plan", "lacks CAP_MKNOD");
}

#[test]
fn apply_stage_refusal_rolls_back() {
    let mut case = Case::new(config(&["NVIDIA_VISIBLE_DEVICES=0:0"], rules_for_0_0()));
    case.kernel.fail_mknod = Some(2);
    let err = case.run().expect_err("mknod fails").to_string();
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(
        case.kernel.entries.keys().collect::<Vec<_>>(),
        [Path::new("dev").to_str().unwrap()]
    );
}

#[test]
fn an_injection_is_leased_and_poststop_ends_it() {
    let mut case = Case::new(config(&["NVIDIA_VISIBLE_DEVICES=0:0"], rules_for_0_0()));
    case.run().expect("injected");
    let lease = &case.ledger.leases[0];
    assert_eq!(
        lease.device,
        DeviceKey {
            gpu: 0,
            caps: vec![12, 13]
        }
    );
    assert_eq!(
        (lease.container.as_str(), lease.pid, lease.start),
        ("c1", 4242, 77)
    );
    assert_eq!(lease.name, "nvidia.com/gpu=0:0");
    assert_eq!(lease.by, "hook");
    // Run again for the same container (a retried hook): the same lease.
    case.run().expect("injected again");
    assert_eq!(case.ledger.leases.len(), 1);
    assert_eq!(case.stop("c1"), 1);
    assert!(case.leases().is_empty());
}

#[test]
fn a_device_another_live_container_holds_is_refused_naming_it() {
    let mut case = Case::new(config(&["NVIDIA_VISIBLE_DEVICES=0:0"], rules_for_0_0()));
    case.run().expect("injected");
    case.next_container("c2", 5000);
    let text = case.refused(
        "lease",
        "nvidia.com/gpu=0:0 is held by container c1 (pid 4242",
    );
    assert!(text.contains("NVIDIA_VISIBLE_DEVICES=any"), "{text}");
    // With sharing allowed by the operator, it is given, marked shared.
    case.settings.share = true;
    case.run().expect("shared");
    assert!(case.ledger.leases[1].shared);
    // Once c1's process is gone, c3 gets it without sharing.
    case.settings.share = false;
    case.host.processes.remove(&4242);
    case.host.processes.remove(&5000);
    case.next_container("c3", 6000);
    case.run().expect("free again");
    assert_eq!(case.leases(), [("c3".to_string(), vec![12, 13])]);
}

#[test]
fn any_picks_the_first_free_device_and_a_later_refusal_frees_it() {
    let mut case = Case::new(config(&["NVIDIA_VISIBLE_DEVICES=any"], rules_for_0_0()));
    case.run().expect("0:0 allocated");
    assert_eq!(case.leases(), [("c1".to_string(), vec![12, 13])]);
    // The next container gets 0:1, but its rules (for 0:0) open another
    // instance: refused at plan, and 0:1 is free again.
    case.next_container("c2", 5000);
    case.refused("plan", "voids MIG isolation");
    assert_eq!(case.leases(), [("c1".to_string(), vec![12, 13])]);
    // After c1 stops, `any` gives c2 the first device.
    case.stop("c1");
    case.run().expect("0:0 again");
    assert_eq!(case.leases(), [("c2".to_string(), vec![12, 13])]);
    // Nothing free: refused, naming the holder.
    case.next_container("c3", 6000);
    case.host.write(
        format!("{BUNDLE}/config.json"),
        config(&["NVIDIA_VISIBLE_DEVICES=any"], rules_for_0_0()).to_string(),
    );
    case.ledger.leases.push(mig_cdi_hook::lease::Lease {
        device: DeviceKey {
            gpu: 0,
            caps: vec![21, 22],
        },
        container: "c9".into(),
        pid: 6000,
        start: 7000,
        ..case.ledger.leases[0].clone()
    });
    let text = case.refused("lease", "no free MIG device: 2 exist");
    assert!(text.contains("0:0 (container c2, pid 5000)"), "{text}");
}

#[test]
fn poststop_of_a_container_without_leases_changes_nothing() {
    let mut case = Case::new(config(&["NVIDIA_VISIBLE_DEVICES=0:0"], rules_for_0_0()));
    case.run().expect("injected");
    let writes = case.ledger.writes;
    assert_eq!(case.stop("other"), 0);
    assert_eq!(
        case.ledger.writes, writes,
        "no write for a container without leases"
    );
    assert_eq!(case.stop("c1"), 1);
}
