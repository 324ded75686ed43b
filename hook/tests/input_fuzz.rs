//! A bounded fuzz of the hook's input stage: random bytes, and valid
//! documents with random bytes flipped, cut or spliced in, fed to the OCI
//! state decoder, the config view (and the request read from it) and the
//! spec view, JSON and YAML. None may panic, and every error message must
//! stay one printable line that quotes no file bytes it did not expect.
//!
//! It runs in CI for a bounded number of cases (`MIG_CDI_FUZZ_CASES`,
//! default 20000 per target, a few seconds); `MIG_CDI_FUZZ_SEED` replays a
//! failure.

use std::path::Path;

use mig_cdi_core::cdi::view;
use mig_cdi_core::cdi::Format;
use mig_cdi_hook::config::Config;
use mig_cdi_hook::request;
use mig_cdi_hook::state::State;
use mig_cdi_testkit::rng::Rng;

const STATE: &str = r#"{"ociVersion":"1.0.2","id":"c","status":"creating","pid":4242,
  "bundle":"/run/b","annotations":{"mig-cdi/devices":"0:1","x":"y"}}"#;
const CONFIG: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
  "process":{"env":["PATH=/bin","NVIDIA_VISIBLE_DEVICES=0:1,MIG-abc","NVIDIA_MIG_CONFIG_DEVICES=all"],
  "capabilities":{"bounding":["CAP_SYS_ADMIN","cap_chown"]}},
  "linux":{"resources":{"devices":[{"allow":false,"access":"rwm"},
  {"allow":true,"type":"c","major":241,"minor":-1,"access":"rw"}]},
  "uidMappings":[{"containerID":0,"hostID":1000,"size":1}],"namespaces":[{"type":"mount"}]},
  "annotations":{"mig-cdi/devices":"nvidia.com/gpu=0:1"}}"#;
const SPEC: &str = r#"{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[
  {"name":"0:1","containerEdits":{"deviceNodes":[{"path":"/dev/nvidia0","type":"c","major":195,
  "minor":0,"permissions":"rw"},{"path":"/dev/nvidia-caps/nvidia-cap12","hostPath":"/dev/x",
  "major":241,"minor":12,"permissions":"r"}]}}],
  "containerEdits":{"deviceNodes":[{"path":"/dev/nvidiactl","major":195,"minor":255}]}}"#;
const SPEC_YAML: &str = "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: \"0:1\"\n  \
  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n      major: 195\n      minor: 0\n\
  containerEdits:\n  deviceNodes:\n  - {path: /dev/nvidiactl, major: 195, minor: 255}\n";

fn cases() -> u64 {
    std::env::var("MIG_CDI_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn seed() -> u64 {
    std::env::var("MIG_CDI_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed)
}

/// Tokens that steer a JSON or YAML decoder into its corners.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"null",
    b"-1",
    b"1e999",
    b"\\u0000",
    b"\\ud800",
    b"\xff",
    b"\xc3",
    b"\n",
    b"- ",
    b"&a ",
    b"*a",
    b"!!binary ",
    b"'",
    b"\"mig-cdi/devices\":",
    b"NVIDIA_VISIBLE_DEVICES=",
    b"18446744073709551616",
];

/// `seed` with a few random edits, or random bytes.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    if rng.below(10) == 0 {
        let len = rng.below(256) as usize;
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut bytes = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(bytes.len() as u64 + 1) as usize;
        match rng.below(4) {
            0 if at < bytes.len() => bytes[at] = rng.next() as u8,
            1 => bytes.truncate(at),
            2 => {
                let token = rng.pick(TOKENS);
                bytes.splice(at..at, token.iter().copied());
            }
            _ => {
                let end = (at + rng.below(16) as usize).min(bytes.len());
                bytes.drain(at..end);
            }
        }
    }
    bytes
}

fn one_line(text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control()),
        "control character in message: {text:?}"
    );
}

#[test]
fn the_input_stage_never_panics() {
    let mut rng = Rng::from_seed(seed());
    let path = Path::new("/run/b/config.json");
    for _ in 0..cases() {
        match State::parse(&mutate(&mut rng, STATE.as_bytes())) {
            Ok(state) => {
                let _ = state.pid();
            }
            Err(err) => one_line(&err.to_string()),
        }
        match Config::parse(&mutate(&mut rng, CONFIG.as_bytes()), path) {
            Ok(config) => {
                let _ = config.device_rules();
                let _ = config.root_owner();
                let _ = config.root_path(Path::new("/run/b"));
                let _ = config.bounding("CAP_SYS_ADMIN");
                let _ = config.user_namespace();
                if let Err(err) = request::from_config(&config, Some("0:1")) {
                    one_line(&err.to_string());
                }
            }
            Err(err) => one_line(&err.to_string()),
        }
        let all = |_: &str, _: &str| true;
        for (seed, format) in [(SPEC, Format::Json), (SPEC_YAML, Format::Yaml)] {
            match view::parse(&mutate(&mut rng, seed.as_bytes()), format, path, &all) {
                Ok(devices) => {
                    for node in devices.iter().flat_map(|d| &d.nodes) {
                        std::hint::black_box(node.host_path());
                    }
                }
                Err(err) => one_line(&err.to_string()),
            }
        }
    }
}
