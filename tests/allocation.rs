//! Allocation and leases end to end: `NVIDIA_VISIBLE_DEVICES=any` through
//! the hook under crun and through mig-cdi-runtime over runc, on simulated
//! machines whose specs `mig-cdi-gen generate` wrote. Containers are
//! started at once and each holds its device (it waits on a barrier
//! folder bind-mounted from the host) until the test lets them all go, so
//! "different devices" is what the containers themselves see in
//! `/dev/nvidia-caps`. After they exit, poststop has released every lease.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mig_cdi_testkit::e2e::{self as support, FakeMachine};
use mig_cdi_testkit::hook::{container_id, leases_json, start_time, Bundle, Machine, Runtime};
use mig_cdi_testkit::paths::repo_root;
use mig_cdi_testkit::rng::Rng;
use serde_json::{json, Value};

/// Lists the capability nodes it got, says READY, and holds them until
/// the barrier opens.
const HOLD: &str = r#"echo "CAPS $(ls /dev/nvidia-caps 2>/dev/null | sort | tr '\n' ' ')"
echo READY
while [ ! -e /barrier/go ]; do sleep 0.05; done"#;

/// A simulated node: fake driver root, the generated spec, lease state.
struct Node {
    machine: FakeMachine,
    cdi: tempfile::TempDir,
    state: tempfile::TempDir,
    /// mig-cdi-runtime installed for runc, pointed at this node.
    wrapper: PathBuf,
    _wrapper_dir: tempfile::TempDir,
}

impl Node {
    fn new(machine: &Path) -> Self {
        let machine = FakeMachine::from_file(machine);
        let cdi = tempfile::tempdir().unwrap();
        machine.gen_ok(&[
            "generate",
            "--no-driver-files",
            "--output",
            cdi.path().join("nvidia.com-gpu.json").to_str().unwrap(),
        ]);
        let state = tempfile::tempdir().unwrap();
        let wrapper_dir = tempfile::tempdir().unwrap();
        let wrapper = wrapper_dir.path().join("mig-cdi-runtime");
        std::os::unix::fs::symlink(support::bin("mig-cdi-hook"), &wrapper).unwrap();
        std::fs::write(
            wrapper_dir.path().join("mig-cdi-runtime.conf"),
            format!(
                "runtime = {}\nroot = {}\nspec-dir = {}\nstate-dir = {}\n",
                Runtime::Runc.path(),
                machine.root.display(),
                cdi.path().display(),
                state.path().display()
            ),
        )
        .unwrap();
        Self {
            machine,
            cdi,
            state,
            wrapper,
            _wrapper_dir: wrapper_dir,
        }
    }

    fn hook_args(&self) -> Vec<String> {
        [
            "--root",
            self.machine.root.to_str().unwrap(),
            "--spec-dir",
            self.cdi.path().to_str().unwrap(),
            "--state-dir",
            self.state.path().to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    }

    /// The spec's MIG devices: distinct capability node sets.
    fn mig_devices(&self) -> usize {
        let spec: Value = serde_json::from_slice(
            &std::fs::read(self.cdi.path().join("nvidia.com-gpu.json")).unwrap(),
        )
        .unwrap();
        let sets: BTreeSet<Vec<String>> = spec["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                d["containerEdits"]["deviceNodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|n| n["path"].as_str())
                    .filter(|p| p.starts_with("/dev/nvidia-caps/"))
                    .map(String::from)
                    .collect()
            })
            .filter(|s: &Vec<String>| !s.is_empty())
            .collect();
        sets.len()
    }

    /// `mig-cdi-hook leases --json`.
    fn leases(&self) -> Value {
        leases_json(self.state.path())
    }
}

/// How a container is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// crun with mig-cdi-hook as createRuntime and poststop hook.
    CrunHook,
    /// runc through mig-cdi-runtime.
    RuncWrapper,
}

/// One container started in the background.
struct Started {
    id: String,
    how: Via,
    child: Child,
    bundle: Bundle,
}

impl Started {
    fn hook_stderr(&self) -> String {
        std::fs::read_to_string(self.bundle.path.join("hook-stderr")).unwrap_or_default()
    }
}

/// A bundle that asks for `request` and runs [`HOLD`] with `barrier`
/// mounted at `/barrier`.
fn hold_bundle(request: &str, barrier: &Path) -> Bundle {
    let mut b = Bundle::new(Path::new(support::ROOTFS), HOLD);
    b.env(&format!("NVIDIA_VISIBLE_DEVICES={request}"));
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/barrier", "type": "bind", "source": barrier,
        "options": ["rbind", "ro"],
    }));
    b
}

/// Start a container asking for `request` through `how`, with the
/// poststop release hook.
fn start(node: &Node, how: Via, request: &str, barrier: &Path) -> Started {
    let mut b = hold_bundle(request, barrier);
    let id = container_id("alloc");
    let mut cmd = Command::new("timeout");
    cmd.arg("120");
    match how {
        Via::CrunHook => {
            b.hooks_with_release(&node.hook_args());
            b.config["annotations"]["run.oci.hooks.stderr"] = json!(b.path.join("hook-stderr"));
            cmd.arg("crun");
        }
        Via::RuncWrapper => {
            // The runtime gets the device rules from the wrapper.
            b.config["linux"]["resources"]["devices"] = json!([]);
            cmd.arg(&node.wrapper);
        }
    }
    std::fs::write(
        b.path.join("config.json"),
        serde_json::to_vec_pretty(&b.config).unwrap(),
    )
    .unwrap();
    cmd.args(["run", "--bundle"])
        .arg(&b.path)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a test can kill the runtime and its
        // hooks together.
        .process_group(0);
    let child = cmd.spawn().unwrap();
    Started {
        id,
        how,
        child,
        bundle: b,
    }
}

/// `count` containers asking `request`, started at once, alternating the
/// two paths (`first` first).
fn fleet(node: &Node, count: usize, request: &str, barrier: &Path, first: Via) -> Vec<Started> {
    let other = match first {
        Via::CrunHook => Via::RuncWrapper,
        Via::RuncWrapper => Via::CrunHook,
    };
    (0..count)
        .map(|i| {
            let how = if i % 2 == 0 { first } else { other };
            start(node, how, request, barrier)
        })
        .collect()
}

/// What a container did before the barrier.
#[derive(Debug, Clone)]
enum Fate {
    /// Running, holding these capability nodes.
    Holds(String),
    /// Never ran: its runtime's and hooks' stderr.
    Refused(String),
}

/// Wait until every container is READY or gone; the stdout readers keep
/// draining in the background.
fn fates(started: &mut [Started]) -> Vec<Fate> {
    let (tx, rx) = mpsc::channel();
    for (i, s) in started.iter_mut().enumerate() {
        let stdout = s.child.stdout.take().unwrap();
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut caps = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(list) = line.strip_prefix("CAPS ") {
                    caps = Some(list.trim().to_string());
                }
                if line == "READY" {
                    let _ = tx.send((i, caps.clone()));
                }
            }
            let _ = tx.send((i, None));
        });
    }
    drop(tx);
    let mut out: Vec<Option<Fate>> = vec![None; started.len()];
    let deadline = Instant::now() + Duration::from_secs(120);
    while out.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((i, caps)) = rx.recv_timeout(left) else {
            panic!("containers did not start or stop in 120 s: {out:?}");
        };
        if out[i].is_some() {
            continue;
        }
        out[i] = Some(match caps {
            Some(caps) => Fate::Holds(caps),
            None => {
                let s = &mut started[i];
                let _ = s.child.wait();
                let mut err = String::new();
                if let Some(mut e) = s.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                Fate::Refused(err + &s.hook_stderr())
            }
        });
    }
    out.into_iter().map(Option::unwrap).collect()
}

/// Open the barrier, wait for every container, delete what is left.
fn finish(started: &mut [Started], barrier: &Path) {
    std::fs::write(barrier.join("go"), b"").unwrap();
    for s in started.iter_mut() {
        let _ = s.child.wait();
        let runtime = match s.how {
            Via::CrunHook => "crun",
            Via::RuncWrapper => "runc",
        };
        let _ = Command::new(runtime)
            .args(["delete", "--force", &s.id])
            .stderr(Stdio::null())
            .status();
    }
}

fn holders(fates: &[Fate]) -> Vec<&str> {
    fates
        .iter()
        .filter_map(|f| match f {
            Fate::Holds(caps) => Some(caps.as_str()),
            Fate::Refused(_) => None,
        })
        .collect()
}

fn bench_8x7() -> PathBuf {
    repo_root().join("bench/machines/bench-8x7.json")
}

fn machine(name: &str) -> PathBuf {
    repo_root().join(format!("examples/machines/{name}.json"))
}

/// 32 at once on the 8 x 7 machine, half through the hook under crun,
/// half through mig-cdi-runtime over runc, one lease file: 32 different
/// devices, each seen inside its container; `leases` lists them live;
/// after they exit no lease is left.
#[test]
fn thirty_two_containers_at_once_get_thirty_two_devices() {
    let node = Node::new(&bench_8x7());
    assert_eq!(node.mig_devices(), 56);
    let barrier = tempfile::tempdir().unwrap();
    let mut started = fleet(&node, 32, "any", barrier.path(), Via::CrunHook);
    let fates = fates(&mut started);
    let held = holders(&fates);
    let listing = node.leases();
    finish(&mut started, barrier.path());

    assert_eq!(held.len(), 32, "{fates:?}");
    for caps in &held {
        assert_eq!(caps.split(' ').count(), 2, "one GI and one CI node: {caps}");
    }
    let distinct: BTreeSet<&&str> = held.iter().collect();
    assert_eq!(distinct.len(), 32, "a device was given twice: {held:?}");
    let leases = listing["leases"].as_array().unwrap();
    assert_eq!(leases.len(), 32, "{listing}");
    assert!(leases.iter().all(|l| l["state"] == "live"), "{listing}");
    let by: BTreeSet<&str> = leases.iter().filter_map(|l| l["by"].as_str()).collect();
    assert_eq!(by, BTreeSet::from(["hook", "runtime"]), "{listing}");
    // Deterministic: the 32 lowest devices (GPU minors 0..4, all 7 each,
    // then 4 of GPU 4).
    let gpus: BTreeMap<u64, usize> = leases.iter().fold(BTreeMap::new(), |mut m, l| {
        *m.entry(l["nodes"]["gpu"].as_u64().unwrap()).or_default() += 1;
        m
    });
    assert_eq!(
        gpus,
        BTreeMap::from([(0, 7), (1, 7), (2, 7), (3, 7), (4, 4)]),
        "{listing}"
    );

    assert_eq!(node.leases()["leases"], json!([]), "poststop released all");
}

/// More requests than devices: exactly the surplus is refused, each with
/// the clear message, through both paths.
#[test]
fn the_surplus_is_refused_with_the_count_and_the_holders() {
    let node = Node::new(&machine("a100x8"));
    let total = node.mig_devices();
    assert!(total < 32, "a100x8 has {total} MIG devices");
    let barrier = tempfile::tempdir().unwrap();
    let mut started = fleet(&node, 32, "any", barrier.path(), Via::RuncWrapper);
    let fates = fates(&mut started);
    finish(&mut started, barrier.path());
    let held = holders(&fates);
    assert_eq!(held.len(), total, "{fates:?}");
    assert_eq!(held.iter().collect::<BTreeSet<_>>().len(), total);
    let needle = format!("no free MIG device: {total} exist and live containers hold ");
    for (fate, s) in fates.iter().zip(&started) {
        if let Fate::Refused(err) = fate {
            assert!(err.contains(&needle), "{:?}: {err}", s.how);
            assert!(err.contains("(container mig-hook-alloc-"), "{err}");
        }
    }
    assert_eq!(node.leases()["leases"], json!([]));
}

/// Processes killed at random points, 100 rounds: the lease file always
/// parses, no two live holders share a device, and no running container
/// sees a device another one sees.
#[test]
fn random_kills_never_corrupt_leases_or_give_a_device_twice() {
    let node = Node::new(&machine("h200-mig"));
    let total = node.mig_devices();
    let mut rng = Rng::from_seed(0x5eed_1ea5);
    let file = node.state.path().join("leases.json");
    let mut killed = 0;
    let mut orphans = 0;
    for round in 0..100 {
        let barrier = tempfile::tempdir().unwrap();
        let count = 3 + rng.below(6) as usize;
        let first = if round % 2 == 0 {
            Via::CrunHook
        } else {
            Via::RuncWrapper
        };
        let mut started = fleet(&node, count, "any", barrier.path(), first);
        for s in &started {
            if rng.below(3) == 0 {
                std::thread::sleep(Duration::from_micros(rng.below(30_000)));
                // The runtime and its hooks, wherever they are.
                kill(&format!("-{}", s.child.id()));
                killed += 1;
            }
        }
        let fates = fates(&mut started);
        let held = holders(&fates);
        let distinct: BTreeSet<&&str> = held.iter().collect();
        assert_eq!(distinct.len(), held.len(), "round {round}: {held:?}");
        assert!(held.len() <= total);
        if file.exists() {
            let leases: Value = serde_json::from_slice(&std::fs::read(&file).unwrap())
                .unwrap_or_else(|e| panic!("round {round}: leases.json: {e}"));
            let live: Vec<&Value> = leases["leases"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| alive(l["pid"].as_i64().unwrap(), l["start"].as_u64().unwrap()))
                .collect();
            let keys: BTreeSet<String> = live.iter().map(|l| l["device"].to_string()).collect();
            assert_eq!(keys.len(), live.len(), "round {round}: {leases}");
        }
        finish(&mut started, barrier.path());
        orphans += reap_orphans(&node);
    }
    eprintln!("{killed} kills, {orphans} orphaned container processes reaped");
    assert!(killed > 50, "only {killed} kills");
    // Every lease left belongs to a process that is gone.
    let listing = node.leases();
    for lease in listing["leases"].as_array().unwrap() {
        assert_ne!(lease["state"], "live", "{listing}");
    }
}

/// Run a runtime command that leaves a container behind: its stdio must
/// not be a pipe the container keeps open.
fn detached(cmd: &mut Command) {
    let err = tempfile::NamedTempFile::new().unwrap();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err.reopen().unwrap())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{cmd:?}: {}",
        std::fs::read_to_string(err.path()).unwrap_or_default()
    );
}

/// Kill what a runtime killed mid-create leaves behind: a container
/// process whose container the runtime no longer knows (its init never
/// started the program). Such a process still holds the device nodes, so
/// its lease is rightly live until it is gone. Returns how many.
fn reap_orphans(node: &Node) -> usize {
    let known: BTreeSet<String> = ["runc", "crun"]
        .iter()
        .flat_map(|rt| {
            let out = Command::new(rt).args(["list", "-q"]).output().unwrap();
            support::text(&out.stdout)
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    let text = std::fs::read_to_string(node.state.path().join("leases.json")).unwrap_or_default();
    let leases: Value = serde_json::from_str(&text).unwrap_or(json!({"leases": []}));
    let mut reaped = 0;
    for lease in leases["leases"].as_array().unwrap() {
        let (pid, start) = (
            lease["pid"].as_i64().unwrap(),
            lease["start"].as_u64().unwrap(),
        );
        if alive(pid, start) && !known.contains(lease["container"].as_str().unwrap()) {
            kill(&pid.to_string());
            while alive(pid, start) {
                std::thread::sleep(Duration::from_millis(5));
            }
            reaped += 1;
        }
    }
    reaped
}

/// SIGKILL a pid, or a process group (`-PGID`).
fn kill(target: &str) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", target])
        .stderr(Stdio::null())
        .status();
}

/// Is `pid` alive with this start time (`/proc/<pid>/stat` field 22)?
fn alive(pid: i64, start: u64) -> bool {
    start_time(pid) == Some(start)
}

/// A container killed without poststop or delete does not keep its device:
/// its pid is gone, or the pid now belongs to a process started later.
#[test]
fn a_killed_holder_or_a_reused_pid_frees_the_device() {
    let m = Machine::new();
    let barrier = tempfile::tempdir().unwrap();
    let args = m.hook_args();
    let node_like = |request: &str, release: bool| {
        let mut b = hold_bundle(request, barrier.path());
        if release {
            b.hooks_with_release(&args);
        } else {
            b.hook("createRuntime", &args);
        }
        b
    };
    let leases = || -> Value {
        let text = std::fs::read_to_string(m.state.join("leases.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    };

    // A holds 0:0, without a poststop hook; its process is then killed.
    let a = node_like("0:0", false);
    let id_a = container_id("killed");
    std::fs::write(a.path.join("config.json"), a.config.to_string()).unwrap();
    detached(
        Command::new("crun")
            .args(["run", "--detach", "--bundle"])
            .arg(&a.path)
            .arg(&id_a),
    );
    let pid = leases()["leases"][0]["pid"].as_i64().unwrap();
    // B asks for the same device while A lives: refused, naming A.
    let b = node_like("0:0", true);
    b.run(Runtime::Crun)
        .assert_refused(&format!("is held by container {id_a} (pid {pid}"));
    kill(&pid.to_string());
    while alive(pid, leases()["leases"][0]["start"].as_u64().unwrap()) {
        std::thread::sleep(Duration::from_millis(10));
    }
    // No poststop ran (A is not even deleted): B gets the device now.
    let mut c = node_like("0:0", true);
    c.config["process"]["args"] = json!(["sh", "-c", "ls /dev/nvidia-caps"]);
    let ran = c.run(Runtime::Crun);
    ran.assert_ok();
    assert!(ran.stdout.contains("nvidia-cap12"), "{}", ran.stdout);
    let _ = Command::new("crun")
        .args(["delete", "--force", &id_a])
        .output();

    // A lease whose pid now belongs to a process that started at another
    // time (a `sleep` stands in for the reused pid) holds nothing; with the
    // right start time it holds.
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let spid = sleeper.id() as i64;
    let start = start_time(spid).unwrap();
    for (their_start, given) in [(start + 1, true), (start, false)] {
        let forged = json!({"version": 1, "leases": [{
            "device": {"gpu": 0, "caps": [21, 22]}, "name": "nvidia.com/gpu=0:1",
            "container": "ghost", "pid": spid, "start": their_start, "since": 0, "by": "hook",
        }]});
        std::fs::write(m.state.join("leases.json"), forged.to_string()).unwrap();
        let mut d = node_like("0:1", true);
        d.config["process"]["args"] = json!(["sh", "-c", "ls /dev/nvidia-caps"]);
        let ran = d.run(Runtime::Crun);
        if given {
            ran.assert_ok();
            assert!(ran.stdout.contains("nvidia-cap21"), "{}", ran.stdout);
        } else {
            ran.assert_refused("nvidia.com/gpu=0:1 is held by container ghost");
        }
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

/// A named device held by a running container is refused through the
/// runtime wrapper too, naming the holder; `delete` releases it.
#[test]
fn the_wrapper_refuses_a_held_device_and_delete_releases_it() {
    let m = Machine::new();
    let dir = tempfile::tempdir().unwrap();
    let wrapper = mig_cdi_testkit::hook::install_runtime(dir.path(), Runtime::Runc, &m);
    let barrier = tempfile::tempdir().unwrap();
    let bundle = |request: &str| {
        let mut b = hold_bundle(request, barrier.path());
        b.config["linux"]["resources"]["devices"] = json!([]);
        std::fs::write(b.path.join("config.json"), b.config.to_string()).unwrap();
        b
    };
    let a = bundle("0:1");
    let id = container_id("held");
    detached(
        Command::new(&wrapper)
            .args(["create", "--bundle"])
            .arg(&a.path)
            .arg(&id),
    );
    // Created, not started: the lease is the container's process's now.
    let text = std::fs::read_to_string(m.state.join("leases.json")).unwrap();
    let leases: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(leases["leases"][0]["container"], id.as_str());
    let state = Command::new("runc").args(["state", &id]).output().unwrap();
    let state: Value = serde_json::from_slice(&state.stdout).unwrap();
    assert_eq!(leases["leases"][0]["pid"], state["pid"], "{leases}");

    let b = bundle("nvidia.com/gpu=0:1");
    let out = Command::new(&wrapper)
        .args(["run", "--bundle"])
        .arg(&b.path)
        .arg(container_id("second"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = support::text(&out.stderr);
    assert!(
        err.contains(&format!(
            "mig-cdi-runtime: nvidia.com/gpu=0:1 is held by container {id}"
        )),
        "{err}"
    );

    let out = Command::new(&wrapper)
        .args(["delete", "--force", &id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    let text = std::fs::read_to_string(m.state.join("leases.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["leases"],
        json!([])
    );
}

/// `any:<profile>` takes only devices of that profile (the spec's
/// `MIG_CDI_PROFILE`), CI profiles included; the surplus is refused naming
/// the profile; an unknown profile is refused listing those there are.
#[test]
fn any_profile_takes_only_that_profile() {
    let node = Node::new(&machine("a100x8"));
    let barrier = tempfile::tempdir().unwrap();
    let mut started = fleet(&node, 6, "any:2g.20gb", barrier.path(), Via::CrunHook);
    started.push(start(
        &node,
        Via::RuncWrapper,
        "any:2c.3g.40gb",
        barrier.path(),
    ));
    started.push(start(&node, Via::CrunHook, "any:7g.141gb", barrier.path()));
    let fates = fates(&mut started);
    let listing = node.leases();
    finish(&mut started, barrier.path());
    let held = holders(&fates[..6]);
    assert_eq!(held.len(), 4, "{fates:?}");
    assert_eq!(held.iter().collect::<BTreeSet<_>>().len(), 4);
    for fate in &fates[..6] {
        if let Fate::Refused(err) = fate {
            assert!(
                err.contains("no free MIG device of profile 2g.20gb: 4 exist"),
                "{err}"
            );
        }
    }
    assert!(matches!(fates[6], Fate::Holds(_)), "{:?}", fates[6]);
    let Fate::Refused(err) = &fates[7] else {
        panic!("7g.141gb is no profile of an A100: {:?}", fates[7]);
    };
    assert!(err.contains("no MIG device of profile 7g.141gb"), "{err}");
    assert!(
        err.contains("2g.20gb"),
        "names the profiles there are: {err}"
    );
    let mut profiles: Vec<&str> = listing["leases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["profile"].as_str())
        .collect();
    profiles.sort_unstable();
    assert_eq!(
        profiles,
        ["2c.3g.40gb", "2g.20gb", "2g.20gb", "2g.20gb", "2g.20gb"],
        "{listing}"
    );
}
