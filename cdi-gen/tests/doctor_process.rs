//! doctor and a process holding `/dev/nvidia0` open while a MIG mode
//! change waits for a reset: the one scenario with a live process, in a
//! test binary of its own.
//!
//! How doctor maps a holder: a fake root has no processes of its own, so
//! doctor reads the system's `/proc` and counts an fd whose link points at
//! `<root>/dev/nvidia*`. The holder here is a `sleep` that inherits an
//! `O_PATH` descriptor of the fake root's real char node 195:0: opening
//! the node for reading would fail with ENXIO (no driver is loaded here),
//! but an `O_PATH` descriptor names the node without opening the device,
//! and `/proc/<pid>/fd/N` shows its path all the same. Being alone in this
//! binary, no other test's child inherits the descriptor meanwhile.

use std::process::{Command, Stdio};

use mig_cdi_testkit::doctor::{
    assert_golden, install_boot_unit, problems, run_doctor, write_current_spec,
};
use mig_cdi_testkit::e2e::FakeMachine;
use mig_cdi_testkit::paths::repo_root;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

#[test]
fn a_process_holding_the_gpu_blocks_the_pending_mig_change() {
    let machine =
        FakeMachine::from_file(&repo_root().join("examples/machines/doctor/pending-mode.json"));
    write_current_spec(&machine, "etc/cdi/nvidia.com-gpu.json");
    install_boot_unit(&machine.root);
    // Not close-on-exec: the child below inherits it.
    let fd = open(
        &machine.root.join("dev/nvidia0"),
        OFlag::O_PATH,
        Mode::empty(),
    )
    .expect("O_PATH descriptor of the fake /dev/nvidia0");
    let mut holder = Command::new("sleep")
        .arg("600")
        .stdin(Stdio::null())
        .spawn()
        .expect("start sleep");
    drop(fd);
    // Wait until the child has exec'd (its comm is `sleep`).
    let comm = format!("/proc/{}/comm", holder.id());
    for _ in 0..200 {
        if std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let (text, json, code) = run_doctor(&machine, &[]);
    holder.kill().ok();
    holder.wait().ok();
    assert_golden("doctor/process-holds-gpu.txt", &text);
    assert_golden("doctor/process-holds-gpu.json", &json);
    assert_eq!(
        problems(&json),
        [
            ("mig.pending".to_string(), "error".to_string()),
            (
                "process.blocks-mig-change".to_string(),
                "warning".to_string()
            ),
        ],
        "{text}"
    );
    assert_eq!(code, 1);
    assert!(
        text.contains("sleep (pid $PID) holds /dev/nvidia0: the MIG mode change pending on GPU 0"),
        "{text}"
    );
    // Once it is gone, the GPU is free again.
    let (text, _, _) = run_doctor(&machine, &[]);
    assert!(text.contains("process.none"), "{text}");
}
