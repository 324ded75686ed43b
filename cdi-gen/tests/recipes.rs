//! The boot and reconfiguration recipes of `examples/refresh/` are what
//! their tools accept: the systemd units pass `systemd-analyze verify`,
//! the containerd snippet parses in the installed containerd, the
//! DaemonSet passes `kubernetes-validate --strict` (all three installed by
//! `tests/setup-runtimes.sh`), and every file parses as its format with the
//! keys its runtime reads.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use mig_cdi_testkit::doctor::{problems, run_doctor, write_current_spec, write_file};
use mig_cdi_testkit::e2e::FakeMachine;
use serde::Deserialize;

fn recipe(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/refresh")
        .join(name)
}

fn read(name: &str) -> String {
    fs::read_to_string(recipe(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `key=value` lines of one `[section]` of a unit file.
fn unit_values(text: &str, section: &str, key: &str) -> Vec<String> {
    let mut current = "";
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            current = line;
            continue;
        }
        if current == format!("[{section}]") {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == key {
                    out.push(v.trim().to_string());
                }
            }
        }
    }
    out
}

/// `systemd-analyze verify` on a copy of the unit whose ExecStart names the
/// built `mig-cdi-gen` (verify requires the program to exist).
fn verify_unit(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let bin = mig_cdi_testkit::e2e::bin("mig-cdi-gen");
    let text = read(name).replace("/usr/local/bin/mig-cdi-gen", bin.to_str().unwrap());
    let unit = dir.path().join(name);
    fs::write(&unit, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze (Debian's systemd; tests/setup-runtimes.sh installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name}: systemd-analyze verify: {stderr}"
    );
    // Warnings about this unit (unknown keys, bad values) exit 0 too.
    assert!(
        !stderr.contains(name),
        "{name}: systemd-analyze verify: {stderr}"
    );
}

fn check_ordering(text: &str, name: &str) {
    let after = unit_values(text, "Unit", "After").join(" ");
    for want in ["nvidia-persistenced.service", "nvidia-mig-manager.service"] {
        assert!(
            after.split_whitespace().any(|u| u == want),
            "{name}: After= lacks {want}"
        );
    }
    let before = unit_values(text, "Unit", "Before").join(" ");
    for want in [
        "containerd.service",
        "crio.service",
        "docker.service",
        "kubelet.service",
    ] {
        assert!(
            before.split_whitespace().any(|u| u == want),
            "{name}: Before= lacks {want}"
        );
    }
    assert_eq!(
        unit_values(text, "Install", "WantedBy"),
        ["multi-user.target"],
        "{name}"
    );
}

#[test]
fn watch_unit() {
    let name = "mig-cdi-watch.service";
    let text = read(name);
    check_ordering(&text, name);
    assert_eq!(unit_values(&text, "Service", "Type"), ["simple"]);
    assert_eq!(unit_values(&text, "Service", "Restart"), ["on-failure"]);
    assert_eq!(
        unit_values(&text, "Service", "ExecStart"),
        ["/usr/local/bin/mig-cdi-gen watch --output /var/run/cdi/nvidia.com-gpu.json"]
    );
    verify_unit(name);
}

#[test]
fn oneshot_unit() {
    let name = "mig-cdi-generate.service";
    let text = read(name);
    check_ordering(&text, name);
    assert_eq!(unit_values(&text, "Service", "Type"), ["oneshot"]);
    assert_eq!(unit_values(&text, "Service", "RemainAfterExit"), ["yes"]);
    let exec = unit_values(&text, "Service", "ExecStart");
    assert_eq!(
        exec,
        ["/usr/local/bin/mig-cdi-gen generate --output /var/run/cdi/nvidia.com-gpu.json"]
    );
    // The command line is one the generator accepts.
    let bin = mig_cdi_testkit::e2e::bin("mig-cdi-gen");
    let args: Vec<&str> = exec[0].split_whitespace().skip(1).collect();
    let out = Command::new(&bin)
        .args(&args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    verify_unit(name);
}

/// mig-parted's hooks file (`version: v1`), read as mig-parted's Go types
/// define it: every field known.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HooksFile {
    version: String,
    hooks: std::collections::BTreeMap<String, Vec<Hook>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Hook {
    workdir: String,
    command: String,
    args: Vec<String>,
    envs: Vec<String>,
}

#[test]
fn mig_parted_hooks() {
    let hooks: HooksFile = serde_saphyr::from_str(&read("mig-parted-hooks.yaml")).unwrap();
    assert_eq!(hooks.version, "v1");
    let names: Vec<&String> = hooks.hooks.keys().collect();
    assert_eq!(names, ["apply-exit"]);
    let exit = &hooks.hooks["apply-exit"];
    assert_eq!(exit.len(), 1);
    let hook = &exit[0];
    assert_eq!(hook.workdir, "/");
    assert_eq!(hook.command, "/bin/sh");
    assert_eq!(
        hook.args,
        [
            "-c",
            "exec /usr/local/bin/mig-cdi-gen generate --output /var/run/cdi/nvidia.com-gpu.json"
        ]
    );
    // The command sh runs is one the generator accepts.
    let line = hook.args[1]
        .strip_prefix("exec /usr/local/bin/mig-cdi-gen ")
        .unwrap();
    let args: Vec<&str> = line.split_whitespace().collect();
    let out = Command::new(mig_cdi_testkit::e2e::bin("mig-cdi-gen"))
        .args(&args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(hook.envs.is_empty());
}

const SPEC_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];

fn toml_file(name: &str) -> toml::Table {
    read(name).parse().unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn spec_dirs(value: &toml::Value) -> Vec<&str> {
    value
        .as_array()
        .expect("cdi_spec_dirs is a list")
        .iter()
        .map(|v| v.as_str().expect("a folder"))
        .collect()
}

#[test]
fn containerd_snippet() {
    let name = "containerd-cdi.toml";
    let conf = toml_file(name);
    assert_eq!(conf["version"].as_integer(), Some(2));
    let cri = &conf["plugins"]["io.containerd.grpc.v1.cri"];
    assert_eq!(cri["enable_cdi"].as_bool(), Some(true));
    assert_eq!(spec_dirs(&cri["cdi_spec_dirs"]), SPEC_DIRS);
    // containerd itself reads it (1.6 parses and ignores the CDI keys:
    // CDI is 1.7's).
    let out = Command::new("containerd")
        .arg("--config")
        .arg(recipe(name))
        .args(["config", "dump"])
        .output()
        .expect("containerd (tests/setup-runtimes.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn crio_snippet() {
    let conf = toml_file("crio-cdi.conf");
    assert_eq!(
        spec_dirs(&conf["crio"]["runtime"]["cdi_spec_dirs"]),
        SPEC_DIRS
    );
}

#[test]
fn podman_snippet() {
    let conf = toml_file("containers.conf");
    assert_eq!(spec_dirs(&conf["engine"]["cdi_spec_dirs"]), SPEC_DIRS);
}

#[test]
fn docker_snippet() {
    let conf: serde_json::Value = serde_json::from_str(&read("docker-daemon.json")).unwrap();
    assert_eq!(conf, serde_json::json!({"features": {"cdi": true}}));
}

/// Where setup-runtimes.sh installs kubernetes-validate (a venv of its
/// own), or the one on PATH.
fn kubernetes_validate() -> PathBuf {
    let venv = Path::new("/var/lib/mig-cdi-tests/venv/bin/kubernetes-validate");
    if venv.exists() {
        venv.to_path_buf()
    } else {
        PathBuf::from("kubernetes-validate")
    }
}

#[test]
fn daemonset() {
    let name = "daemonset.yaml";
    let ds: serde_json::Value = serde_saphyr::from_str(&read(name)).unwrap();
    assert_eq!(ds["kind"], "DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true);
    assert!(pod["nodeSelector"].is_object());
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["privileged"], true);
    let cmd: Vec<&str> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let watch = cmd.iter().position(|a| *a == "watch").expect("runs watch");
    assert_eq!(
        &cmd[watch..],
        ["watch", "--output", "/var/run/cdi/nvidia.com-gpu.json"]
    );
    let root = cmd.iter().position(|a| *a == "--root").unwrap();
    assert_eq!(cmd[root + 1], "/host");
    // Each mount names a volume of the host's path.
    let volumes = pod["volumes"].as_array().unwrap();
    let host_path = |volume: &str| {
        volumes
            .iter()
            .find(|v| v["name"] == volume)
            .map(|v| v["hostPath"]["path"].as_str().unwrap().to_string())
    };
    let mut mounts = Vec::new();
    for m in c["volumeMounts"].as_array().unwrap() {
        let source = host_path(m["name"].as_str().unwrap()).expect("mount of a volume");
        mounts.push((
            source,
            m["mountPath"].as_str().unwrap().to_string(),
            m["readOnly"] == true,
        ));
    }
    assert_eq!(
        mounts,
        [
            ("/".to_string(), "/host".to_string(), true),
            (
                "/var/run/cdi".to_string(),
                "/var/run/cdi".to_string(),
                false
            ),
        ]
    );

    let out = Command::new(kubernetes_validate())
        .arg("--strict")
        .arg(recipe(name))
        .output()
        .expect("kubernetes-validate (tests/setup-runtimes.sh installs it from PyPI)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `file` of examples/refresh/ installed as `rel` under the machine's root.
fn install(machine: &FakeMachine, file: &str, rel: &str) {
    write_file(&machine.root.join(rel), read(file).as_bytes(), 0o644);
}

/// Enable the unit at `/rel` (a link from multi-user.target.wants).
fn enable(machine: &FakeMachine, rel: &str) {
    let wants = machine
        .root
        .join("etc/systemd/system/multi-user.target.wants");
    fs::create_dir_all(&wants).unwrap();
    let name = Path::new(rel).file_name().unwrap();
    std::os::unix::fs::symlink(Path::new("/").join(rel), wants.join(name)).unwrap();
}

/// doctor sees each way of keeping the spec current as one: a machine
/// with MIG on, a current spec and the recipe installed has no problem.
#[test]
fn doctor_accepts_each_recipe() {
    const SPEC: &str = "var/run/cdi/nvidia.com-gpu.json";
    let setups: [(&str, &[(&str, &str)]); 3] = [
        (
            "watch unit",
            &[(
                "mig-cdi-watch.service",
                "etc/systemd/system/mig-cdi-watch.service",
            )],
        ),
        (
            "oneshot unit",
            &[(
                "mig-cdi-generate.service",
                "etc/systemd/system/mig-cdi-generate.service",
            )],
        ),
        (
            "mig-parted hook",
            &[("mig-parted-hooks.yaml", "etc/nvidia-mig-manager/hooks.yaml")],
        ),
    ];
    for (what, files) in setups {
        let machine = FakeMachine::new("h200-mig");
        write_current_spec(&machine, SPEC);
        for (file, rel) in files {
            install(&machine, file, rel);
            if rel.ends_with(".service") {
                enable(&machine, rel);
            }
        }
        if what == "mig-parted hook" {
            let unit = "lib/systemd/system/nvidia-mig-manager.service";
            write_file(
                &machine.root.join(unit),
                b"[Service]\nType=oneshot\nExecStart=/usr/bin/nvidia-mig-manager.sh\n[Install]\nWantedBy=multi-user.target\n",
                0o644,
            );
            enable(&machine, unit);
        }
        let (text, json, code) = run_doctor(&machine, &[]);
        assert_eq!(problems(&json), [], "{what}:\n{text}");
        assert_eq!(code, 0, "{what}:\n{text}");
    }
}

/// The DaemonSet's `--root /host` way: everything read under the root,
/// and the spec names host paths, not the container's `/host/...`. Run as
/// `generate` (what `watch` writes on each change) on a simulated root.
#[test]
fn daemonset_root_gives_host_paths() {
    let ds: serde_json::Value = serde_saphyr::from_str(&read("daemonset.yaml")).unwrap();
    let cmd: Vec<String> = ds["spec"]["template"]["spec"]["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let watch = cmd.iter().position(|a| a == "watch").unwrap();
    // Global flags other than --root and --nvml-lib (the machine's own).
    let globals: Vec<&str> = cmd[1..watch]
        .chunks(2)
        .filter(|f| f[0] != "--root" && f[0] != "--nvml-lib")
        .flatten()
        .map(String::as_str)
        .collect();
    let machine = FakeMachine::new("h200-mig");
    let out = machine.gen(&[&globals[..], &["generate"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spec = String::from_utf8(out.stdout).unwrap();
    let root = machine.root.display().to_string();
    assert!(!spec.contains(&root), "the spec names the root:\n{spec}");
    assert!(spec.contains("\"hostPath\": \"/usr/lib/x86_64-linux-gnu/libcuda.so."));
    assert!(spec.contains("\"path\": \"/dev/nvidia0\""));
}
