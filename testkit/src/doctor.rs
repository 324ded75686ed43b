//! `mig-cdi-gen doctor` scenarios: a fake root tended like a real node
//! (the current spec, a boot unit), doctor run in both formats with the
//! fake root's path and process ids made stable, and golden files.

use std::path::Path;

use serde_json::Value;

use crate::e2e::FakeMachine;
use crate::paths::repo_root;

/// Write `bytes` to `path` with `mode`, making its folders.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().expect("a file has a folder")).unwrap();
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// What `generate` writes for `machine` (for a description with planted
/// host faults, `generate` on the same description without them: the
/// spec does not depend on the host's nodes), placed at `rel` under the
/// fake root, mode 0644.
pub fn write_current_spec(machine: &FakeMachine, rel: &str) {
    let text = std::fs::read_to_string(&machine.machine).unwrap();
    let mut description: Value = serde_json::from_str(&text).unwrap();
    let spec = if description.get("fakeRoot").is_some() {
        description.as_object_mut().unwrap().remove("fakeRoot");
        let dir = tempfile::tempdir().unwrap();
        let clean = dir.path().join("clean.json");
        std::fs::write(&clean, description.to_string()).unwrap();
        FakeMachine::from_file(&clean).gen_ok(&["generate"])
    } else {
        machine.gen_ok(&["generate"])
    };
    write_file(&machine.root.join(rel), spec.as_bytes(), 0o644);
}

/// `examples/systemd/mig-cdi.service` in `/etc/systemd/system`, enabled
/// (linked from `multi-user.target.wants`).
pub fn install_boot_unit(root: &Path) {
    let unit = std::fs::read(repo_root().join("examples/systemd/mig-cdi.service")).unwrap();
    write_file(
        &root.join("etc/systemd/system/mig-cdi.service"),
        &unit,
        0o644,
    );
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink(
        "/etc/systemd/system/mig-cdi.service",
        wants.join("mig-cdi.service"),
    )
    .unwrap();
}

/// The report with the fake root's path as `$ROOT` and the number after
/// every `pid ` and `kill ` as `$PID`.
pub fn stable(text: &str, root: &Path) -> String {
    let mut text = text.replace(&root.display().to_string(), "$ROOT");
    for word in ["pid ", "kill "] {
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find(word) {
            out.push_str(&rest[..at + word.len()]);
            rest = &rest[at + word.len()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 {
                out.push_str("$PID");
            }
            rest = &rest[digits..];
        }
        out.push_str(rest);
        text = out;
    }
    text
}

/// `doctor ARGS` and `doctor --json ARGS`: (text, JSON, exit status), both
/// made [`stable`]. The two runs must agree on the exit status.
pub fn run_doctor(machine: &FakeMachine, args: &[&str]) -> (String, String, i32) {
    let run = |json: bool| {
        let mut all = vec!["doctor"];
        if json {
            all.push("--json");
        }
        all.extend_from_slice(args);
        let out = machine.gen(&all);
        assert!(
            out.stderr.is_empty(),
            "doctor wrote to stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let code = out.status.code().expect("doctor exited");
        (
            stable(&String::from_utf8(out.stdout).unwrap(), &machine.root),
            code,
        )
    };
    let (text, code) = run(false);
    let (json, json_code) = run(true);
    assert_eq!(code, json_code, "text and JSON runs disagree:\n{text}");
    (text, json, code)
}

/// `(id, severity)` of every warning and error of a JSON report.
pub fn problems(json: &str) -> Vec<(String, String)> {
    let report: Value = serde_json::from_str(json).expect("doctor --json prints JSON");
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| matches!(f["severity"].as_str(), Some("warning" | "error")))
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Compare with `tests/golden/<rel>`, or pin it when
/// `MIG_CDI_UPDATE_GOLDEN` is set.
pub fn assert_golden(rel: &str, actual: &str) {
    let path = repo_root().join("tests/golden").join(rel);
    if std::env::var_os("MIG_CDI_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; pin it with MIG_CDI_UPDATE_GOLDEN=1 and review it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs; if the change is intended, rerun with MIG_CDI_UPDATE_GOLDEN=1 and review \
         `git diff tests/golden`\n--- now:\n{actual}",
        path.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_pids_become_placeholders() {
        assert_eq!(
            stable(
                "sleep (pid 4242) holds /tmp/x/root/dev/nvidia0; pid x",
                Path::new("/tmp/x/root")
            ),
            "sleep (pid $PID) holds $ROOT/dev/nvidia0; pid x"
        );
    }
}
