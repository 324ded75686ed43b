//! mig-cdi-runtime under real engines: runc and crun driven directly with a
//! shim's command line, podman `--runtime`, docker (Debian's docker.io,
//! started here) and containerd 1.6 (`ctr`), each on runc and on crun. The
//! container gets exactly its device's nodes, opening them gives ENXIO
//! (allowed by the device rules the runtime itself applied, no driver
//! here), and another instance's capability node is absent; two devices,
//! an unknown name, or config/monitor without CAP_SYS_ADMIN are refused
//! with our message and config.json untouched; no request leaves
//! config.json byte for byte as it was.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use mig_cdi_testkit::e2e as support;
use mig_cdi_testkit::hook::*;
use mig_cdi_testkit::paths;

const RUNTIMES: [Runtime; 2] = [Runtime::Runc, Runtime::Crun];

/// `mig-cdi-runtime` installed in a folder of its own.
struct Wrapper {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Wrapper {
    fn new(machine: &Machine, runtime: Runtime) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mig-cdi-runtime-")
            .tempdir()
            .unwrap();
        let path = install_runtime(dir.path(), runtime, machine);
        Self { _dir: dir, path }
    }
}

/// Refused before anything ran: our one line, no container output.
fn assert_refused_by_us(ran: &Ran, needle: &str) {
    assert!(!ran.ok, "must be refused:\n{}", ran.stdout);
    assert!(!ran.stdout.contains("PROBE-DONE"), "{}", ran.stdout);
    assert!(
        ran.stderr.contains("mig-cdi-runtime: ") && ran.stderr.contains(needle),
        "expected our message with {needle:?}, got:\n{}",
        ran.stderr
    );
}

/// The wrapper called as a shim calls runc: global options, then `run`.
fn direct(wrapper: &Wrapper, bundle: &Bundle, bytes: &[u8], log: &Path) -> Ran {
    std::fs::write(bundle.path.join("config.json"), bytes).unwrap();
    let state = bundle.dir().join("state");
    let global: [&std::ffi::OsStr; 6] = [
        "--root".as_ref(),
        state.as_os_str(),
        "--log".as_ref(),
        log.as_os_str(),
        "--log-format".as_ref(),
        "json".as_ref(),
    ];
    run_through(&wrapper.path, &global, &bundle.path)
}

fn probe_bundle(request: &[&str]) -> Bundle {
    let mut b = Bundle::new(Path::new(support::ROOTFS), PROBE);
    for env in request {
        b.env(env);
    }
    // No device rules of the user's: the runtime must get them from us.
    b.config["linux"]["resources"]["devices"] = serde_json::json!([]);
    b
}

#[test]
fn runc_and_crun_get_the_device_from_the_bundle() {
    let machine = Machine::new();
    for runtime in RUNTIMES {
        let wrapper = Wrapper::new(&machine, runtime);
        let b = probe_bundle(&["NVIDIA_VISIBLE_DEVICES=0:0"]);
        let bytes = serde_json::to_vec_pretty(&b.config).unwrap();
        let ran = direct(&wrapper, &b, &bytes, &b.dir().join("log.json"));
        ran.assert_ok();
        assert_exactly(&ran.stdout, &nodes_0_0());
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(b.path.join("config.json")).unwrap()).unwrap();
        let devices = config["linux"]["devices"].as_array().unwrap();
        assert!(
            devices
                .iter()
                .any(|d| d["path"] == "/dev/nvidia-caps/nvidia-cap12"),
            "{runtime:?}: {devices:?}"
        );
        // The lease moves to the container's process at createRuntime and
        // ends at poststop, through our own hooks: absolute path, explicit
        // env, the wrapper's state dir.
        for (stage, arg) in [("createRuntime", "verify"), ("poststop", "poststop")] {
            let hooks = config["hooks"][stage].as_array().unwrap();
            assert_eq!(hooks.len(), 1, "{runtime:?} {stage}: {hooks:?}");
            let hook = &hooks[0];
            assert!(Path::new(hook["path"].as_str().unwrap()).is_absolute());
            assert_eq!(hook["args"][1], arg);
            assert_eq!(hook["args"][3], machine.state.display().to_string());
            assert!(!hook["env"].as_array().unwrap().is_empty());
        }
        // runc and crun ran poststop: no lease is left.
        let leases: serde_json::Value =
            serde_json::from_slice(&std::fs::read(machine.state.join("leases.json")).unwrap())
                .unwrap();
        assert_eq!(leases["leases"], serde_json::json!([]), "{runtime:?}");
    }
}

#[test]
fn refusals_reach_stderr_and_the_runtime_log_and_leave_config_untouched() {
    let machine = Machine::new();
    let wrapper = Wrapper::new(&machine, Runtime::Runc);
    for (request, needle) in [
        (
            vec!["NVIDIA_VISIBLE_DEVICES=0:0,0:1"],
            "asks for 2 MIG devices: 0:0, 0:1",
        ),
        (
            vec!["NVIDIA_VISIBLE_DEVICES=7:7"],
            "no CDI device nvidia.com/gpu=7:7",
        ),
        (
            vec![
                "NVIDIA_VISIBLE_DEVICES=0:0",
                "NVIDIA_MIG_MONITOR_DEVICES=all",
            ],
            "needs CAP_SYS_ADMIN",
        ),
    ] {
        let b = probe_bundle(&request);
        let bytes = serde_json::to_vec_pretty(&b.config).unwrap();
        let log = b.dir().join("log.json");
        let ran = direct(&wrapper, &b, &bytes, &log);
        assert_refused_by_us(&ran, needle);
        assert_eq!(std::fs::read(b.path.join("config.json")).unwrap(), bytes);
        let line = std::fs::read_to_string(&log).unwrap();
        let entry: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(entry["level"], "error");
        assert!(entry["msg"].as_str().unwrap().contains(needle), "{line}");
    }
}

#[test]
fn no_request_passes_through_byte_for_byte() {
    let machine = Machine::new();
    for runtime in RUNTIMES {
        let wrapper = Wrapper::new(&machine, runtime);
        let b = probe_bundle(&[]);
        let text = serde_json::to_string(&b.config).unwrap();
        // Odd spacing a re-serialisation would change.
        let bytes = format!("{}  \n", text.replacen('{', "{ ", 1)).into_bytes();
        let ran = direct(&wrapper, &b, &bytes, &b.dir().join("log.json"));
        ran.assert_ok();
        assert_no_nvidia_nodes(&ran.stdout);
        assert_eq!(std::fs::read(b.path.join("config.json")).unwrap(), bytes);
    }
}

#[test]
fn hostile_bundles_are_refused_or_handled_inside_the_bundle() {
    let machine = Machine::new();
    let wrapper = Wrapper::new(&machine, Runtime::Runc);
    // config.json a symlink to a file outside the bundle: read, and
    // replaced in the bundle; the file it pointed at is unchanged.
    let b = probe_bundle(&["NVIDIA_VISIBLE_DEVICES=0:0"]);
    let outside = b.dir().join("outside.json");
    let bytes = serde_json::to_vec_pretty(&b.config).unwrap();
    std::fs::write(&outside, &bytes).unwrap();
    std::fs::remove_file(b.path.join("config.json")).ok();
    std::os::unix::fs::symlink(&outside, b.path.join("config.json")).unwrap();
    let r = run_through(&wrapper.path, &[], &b.path);
    r.assert_ok();
    assert_exactly(&r.stdout, &nodes_0_0());
    assert_eq!(std::fs::read(&outside).unwrap(), bytes);
    assert!(!b.path.join("config.json").is_symlink());
    // A FIFO or a huge config is refused without hanging.
    for kind in ["fifo", "huge"] {
        let b = probe_bundle(&["NVIDIA_VISIBLE_DEVICES=0:0"]);
        let config = b.path.join("config.json");
        std::fs::remove_file(&config).ok();
        let needle = if kind == "fifo" {
            assert!(Command::new("mkfifo")
                .arg(&config)
                .status()
                .unwrap()
                .success());
            "a FIFO, not a regular file"
        } else {
            let file = std::fs::File::create(&config).unwrap();
            file.set_len(65 << 20).unwrap();
            "more than"
        };
        let out = Command::new("timeout")
            .arg("60")
            .arg(&wrapper.path)
            .args(["create", "--bundle"])
            .arg(&b.path)
            .arg(container_id("rt"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_refused_by_us(&Ran::of(out), needle);
    }
    // Malformed and naming no request: passed to runc, which says why.
    let b = probe_bundle(&[]);
    let out = {
        std::fs::write(b.path.join("config.json"), b"{ not json").unwrap();
        Command::new("timeout")
            .arg("60")
            .arg(&wrapper.path)
            .args(["create", "--bundle"])
            .arg(&b.path)
            .arg(container_id("rt"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let r = Ran::of(out);
    assert!(
        !r.ok && !r.stderr.contains("mig-cdi-runtime"),
        "{}",
        r.stderr
    );
}

#[test]
fn podman_through_the_wrapper() {
    let machine = Machine::new();
    for runtime in RUNTIMES {
        let wrapper = Wrapper::new(&machine, runtime);
        let podman = |args: &[&str]| {
            Ran::of(
                Command::new("timeout")
                    .arg("180")
                    .arg("podman")
                    .arg("--runtime")
                    .arg(&wrapper.path)
                    .args(["run", "--rm", "--network", "none"])
                    .args(args)
                    .args([support::IMAGE, "sh", "-c", PROBE])
                    .stdin(Stdio::null())
                    .output()
                    .unwrap(),
            )
        };
        let r = podman(&["-e", &format!("NVIDIA_VISIBLE_DEVICES={UUID_0_1}")]);
        r.assert_ok();
        assert_exactly(&r.stdout, &nodes_0_1());
        let r = podman(&["-e", "NVIDIA_VISIBLE_DEVICES=0:0,0:1"]);
        assert!(
            !r.ok && r.stderr.contains("asks for 2 MIG devices"),
            "{}",
            r.stderr
        );
        let r = podman(&[]);
        r.assert_ok();
        assert_no_nvidia_nodes(&r.stdout);
    }
}

/// A daemon started for one test, stopped (with its children) at the end.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// Wait until `probe` succeeds, at most 30 s.
fn wait_for(what: &str, probe: impl Fn() -> bool) {
    for _ in 0..300 {
        if probe() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{what} did not come up in 30 s");
}

/// containerd on its own socket, root and state under `dir`.
fn containerd(dir: &Path) -> (Daemon, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let socket = dir.join("containerd.sock");
    let config = dir.join("containerd.toml");
    std::fs::write(
        &config,
        format!(
            "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n[grpc]\n  address = \
             \"{1}\"\n",
            dir.display(),
            socket.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
    let child = Command::new("containerd")
        .arg("--config")
        .arg(&config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let daemon = Daemon(child);
    wait_for("containerd", || {
        Command::new("ctr")
            .arg("-a")
            .arg(&socket)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    (daemon, socket)
}

#[test]
fn containerd_ctr_through_the_wrapper() {
    let machine = Machine::new();
    let dir = tempfile::Builder::new()
        .prefix("mig-cdi-ctr-")
        .tempdir()
        .unwrap();
    let (_containerd, socket) = containerd(dir.path());
    for runtime in RUNTIMES {
        let wrapper = Wrapper::new(&machine, runtime);
        let ctr = |env: &[&str]| {
            let mut cmd = Command::new("timeout");
            cmd.arg("120")
                .arg("ctr")
                .arg("-a")
                .arg(&socket)
                .args(["run", "--rm", "--runc-binary"])
                .arg(&wrapper.path)
                .args(["--env", "PATH=/bin"]);
            for e in env {
                cmd.args(["--env", e]);
            }
            cmd.arg("--rootfs")
                .arg(support::ROOTFS)
                .arg(container_id("ctr"))
                .args(["/bin/sh", "-c", PROBE]);
            Ran::of(cmd.stdin(Stdio::null()).output().unwrap())
        };
        assert_engine(
            &format!("ctr on {runtime:?}"),
            ctr,
            "NVIDIA_VISIBLE_DEVICES=0:1",
            &nodes_0_1(),
            "NVIDIA_VISIBLE_DEVICES=7:7",
            "no CDI device nvidia.com/gpu=7:7",
        );
    }
    // The example containerd config names the binary the docs install.
    let example =
        std::fs::read_to_string(paths::repo_root().join("examples/runtime/containerd-config.toml"))
            .unwrap();
    assert!(
        example.contains("BinaryName = \"/usr/local/bin/mig-cdi-runtime\"")
            && example.contains("runtimes.mig-cdi]"),
        "{example}"
    );
    let class =
        std::fs::read_to_string(paths::repo_root().join("examples/runtime/runtimeclass.yaml"))
            .unwrap();
    assert!(class.contains("kind: RuntimeClass") && class.contains("handler: mig-cdi"));
}

#[test]
fn docker_through_the_wrapper() {
    let machine = Machine::new();
    let dir = tempfile::Builder::new()
        .prefix("mig-cdi-docker-")
        .tempdir()
        .unwrap();
    let d = dir.path();
    let (_containerd, ctr_socket) = containerd(&d.join("ctd"));
    let wrappers: Vec<(Runtime, Wrapper)> = RUNTIMES
        .iter()
        .map(|r| (*r, Wrapper::new(&machine, *r)))
        .collect();
    // The example daemon.json, pointed at the wrappers.
    let example: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(paths::repo_root().join("examples/runtime/daemon.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        example["runtimes"]["mig-cdi"]["path"],
        "/usr/local/bin/mig-cdi-runtime"
    );
    let mut daemon = example.clone();
    for (runtime, wrapper) in &wrappers {
        daemon["runtimes"][format!("mig-cdi-{}", runtime.name())] =
            serde_json::json!({"path": wrapper.path});
    }
    std::fs::write(d.join("daemon.json"), daemon.to_string()).unwrap();
    let socket = d.join("docker.sock");
    let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
    let _dockerd = Daemon(
        Command::new("dockerd")
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .args(["--iptables=false", "--bridge=none"])
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .arg("--containerd")
            .arg(&ctr_socket)
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let docker = |args: &[&str]| -> Output {
        Command::new("timeout")
            .arg("120")
            .arg("/usr/bin/docker")
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    wait_for("dockerd", || docker(&["version"]).status.success());
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(support::ROOTFS)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let import = Command::new("/usr/bin/docker")
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args(["import", "-", "mig-cdi-busybox:test"])
        .stdin(tar.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(tar.wait().unwrap().success(), "tar of the rootfs");
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    for (runtime, _) in &wrappers {
        let name = format!("--runtime=mig-cdi-{}", runtime.name());
        let run = |env: &[&str]| {
            let mut args = vec!["run", "--rm", "--network", "none", name.as_str()];
            for e in env {
                args.extend(["-e", e]);
            }
            args.extend(["mig-cdi-busybox:test", "sh", "-c", PROBE]);
            Ran::of(docker(&args))
        };
        assert_engine(
            &format!("docker on {runtime:?}"),
            run,
            "NVIDIA_VISIBLE_DEVICES=0:1",
            &nodes_0_1(),
            "NVIDIA_VISIBLE_DEVICES=0:0,0:1",
            "asks for 2 MIG devices: 0:0, 0:1",
        );
    }
}
