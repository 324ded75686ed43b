//! What the container asks for, read from its configuration as data.
//!
//! The request comes from the image and the user, so it is untrusted text:
//! it is parsed here, bounded in size, and never used as a path or passed
//! to anything but the resolver. Sources:
//! - `NVIDIA_VISIBLE_DEVICES` in `process.env` (the toolkit's variable):
//!   unset, empty, `void` or `none` means no request; `all` means every
//!   device of the kind; `any` / `any:<profile>` means one free MIG device
//!   (of that profile), picked by [`crate::alloc`]; otherwise a comma list of device names as the
//!   generator writes them (`0:1`, `MIG-<uuid>`) or qualified
//!   (`nvidia.com/gpu=0:1`);
//! - the annotation [`ANNOTATION`] (same syntax), for engines whose hook
//!   configuration can match on annotations (podman hooks.d);
//! - `NVIDIA_MIG_CONFIG_DEVICES=all` / `NVIDIA_MIG_MONITOR_DEVICES=all`:
//!   also give the MIG `config` / `monitor` capability (privileged only).

use std::fmt;

use mig_cdi_core::cdi::rules;

use crate::config::Config;

pub const VISIBLE_DEVICES: &str = "NVIDIA_VISIBLE_DEVICES";
pub const MIG_CONFIG_DEVICES: &str = "NVIDIA_MIG_CONFIG_DEVICES";
pub const MIG_MONITOR_DEVICES: &str = "NVIDIA_MIG_MONITOR_DEVICES";
/// Annotation key carrying the same list as `NVIDIA_VISIBLE_DEVICES`.
pub const ANNOTATION: &str = "mig-cdi/devices";

/// Longest request value we parse; real ones are a few dozen bytes.
const MAX_VALUE_LEN: usize = 4096;
/// Most names one request may list.
const MAX_NAMES: usize = 64;

/// What is wrong with the container's request (its own text, shown
/// printable and bounded: it is the container's, not a secret of the host).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error(
        "{name} is set {count} times with different values in the container's environment; \
         set it once"
    )]
    ConflictingEnv { name: &'static str, count: usize },
    #[error(
        "{name}={} is not supported: use {name}=all (the MIG capability covers every GPU) \
         or leave it unset",
        printable(value)
    )]
    BadAllFlag { name: &'static str, value: String },
    #[error(
        "{what}: {:?} is not a MIG profile (expected e.g. any:1g.18gb or any:2c.3g.40gb, as \
         `mig-cdi-gen list` shows them)",
        printable(profile)
    )]
    BadProfile { what: &'static str, profile: String },
    #[error(
        "{sources}: \"any\" picks one free device and cannot be combined with other names \
         or another profile; ask for one or the other"
    )]
    AnyWithOthers { sources: String },
    #[error("{what} is {len} bytes long; a request names one device")]
    TooLong { what: &'static str, len: usize },
    #[error("{what} lists more than {MAX_NAMES} devices; a container gets one MIG device")]
    TooMany { what: &'static str },
    #[error(
        "{what}: {:?} is not a device name (expected e.g. 0:1, MIG-<uuid> or \
         nvidia.com/gpu=0:1)",
        printable(item)
    )]
    BadName { what: &'static str, item: String },
}

/// One requested device name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRef {
    /// `vendor/class` when qualified.
    pub kind: Option<String>,
    pub name: String,
}

impl fmt::Display for DeviceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Some(kind) => write!(f, "{kind}={}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Which devices were asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// `all`: every device of the default kind.
    All,
    /// `any` / `any:<profile>`: one MIG device no live container holds.
    Any {
        profile: Option<String>,
    },
    Names(Vec<DeviceRef>),
}

/// The whole request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub wanted: Wanted,
    /// Where the request came from, for messages (`NVIDIA_VISIBLE_DEVICES=0:1`).
    pub source: String,
    pub mig_config: bool,
    pub mig_monitor: bool,
}

/// Read the request; `None` when the container asks for nothing.
/// `state_annotation` is the annotation as the OCI state carries it (the
/// same map as the config's, where the runtime passes one).
pub fn from_config(
    config: &Config,
    state_annotation: Option<&str>,
) -> Result<Option<Request>, RequestError> {
    let mut sources: Vec<(String, Wanted)> = Vec::new();
    if let Some(value) = single_env(config, VISIBLE_DEVICES)? {
        if let Some(wanted) = parse_list(value, VISIBLE_DEVICES)? {
            sources.push((format!("{VISIBLE_DEVICES}={value}"), wanted));
        }
    }
    let mut annotations: Vec<&str> = [state_annotation, config.annotation()]
        .into_iter()
        .flatten()
        .collect();
    annotations.sort_unstable();
    annotations.dedup();
    for value in annotations {
        if let Some(wanted) = parse_list(value, ANNOTATION)? {
            sources.push((format!("annotation {ANNOTATION}={value}"), wanted));
        }
    }
    for (key, value) in &config.requests.cdi {
        if let Some(wanted) = parse_cdi_annotation(value)? {
            sources.push((format!("annotation {key}={value}"), wanted));
        }
    }
    if sources.is_empty() {
        return Ok(None);
    }
    let source = sources
        .iter()
        .map(|(s, _)| s.as_str())
        .collect::<Vec<_>>()
        .join(" and ");
    let any: Vec<&Wanted> = sources
        .iter()
        .map(|(_, w)| w)
        .filter(|w| matches!(w, Wanted::Any { .. }))
        .collect();
    if let Some(first) = any.first() {
        if any.len() != sources.len() || any.iter().any(|w| w != first) {
            return Err(RequestError::AnyWithOthers { sources: source });
        }
        return Ok(Some(Request {
            wanted: (*first).clone(),
            source,
            mig_config: all_flag(config, MIG_CONFIG_DEVICES)?,
            mig_monitor: all_flag(config, MIG_MONITOR_DEVICES)?,
        }));
    }
    let wanted = if sources.iter().any(|(_, w)| *w == Wanted::All) {
        Wanted::All
    } else {
        let mut names = Vec::new();
        for (_, wanted) in sources {
            if let Wanted::Names(list) = wanted {
                for name in list {
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
        }
        Wanted::Names(names)
    };
    Ok(Some(Request {
        wanted,
        source,
        mig_config: all_flag(config, MIG_CONFIG_DEVICES)?,
        mig_monitor: all_flag(config, MIG_MONITOR_DEVICES)?,
    }))
}

/// The variable's value; set twice with different values is refused (the
/// runtime and the program inside could each pick another one).
fn single_env<'a>(config: &'a Config, name: &'static str) -> Result<Option<&'a str>, RequestError> {
    let values = config.env(name);
    match values.as_slice() {
        [] => Ok(None),
        [first, rest @ ..] if rest.iter().all(|v| v == first) => Ok(Some(first)),
        _ => Err(RequestError::ConflictingEnv {
            name,
            count: values.len(),
        }),
    }
}

fn all_flag(config: &Config, name: &'static str) -> Result<bool, RequestError> {
    match single_env(config, name)?.map(str::trim) {
        None | Some("" | "void" | "none") => Ok(false),
        Some("all") => Ok(true),
        Some(other) => Err(RequestError::BadAllFlag {
            name,
            value: other.to_string(),
        }),
    }
}

/// A `cdi.k8s.io/*` annotation: qualified names, comma separated; only
/// the `nvidia.com` ones are ours (another vendor's device is for another
/// tool), `None` when none is.
fn parse_cdi_annotation(value: &str) -> Result<Option<Wanted>, RequestError> {
    const WHAT: &str = "a cdi.k8s.io annotation";
    let Some(Wanted::Names(names)) = parse_list(value, WHAT)? else {
        return Ok(None);
    };
    let ours: Vec<DeviceRef> = names
        .into_iter()
        .filter(|name| {
            name.kind
                .as_deref()
                .is_some_and(|kind| kind.starts_with("nvidia.com/"))
        })
        .collect();
    Ok((!ours.is_empty()).then_some(Wanted::Names(ours)))
}

/// Parse one list; `None` for "nothing requested".
pub fn parse_list(value: &str, what: &'static str) -> Result<Option<Wanted>, RequestError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(RequestError::TooLong {
            what,
            len: value.len(),
        });
    }
    let value = value.trim();
    match value {
        "" | "void" | "none" => return Ok(None),
        "all" => return Ok(Some(Wanted::All)),
        "any" => return Ok(Some(Wanted::Any { profile: None })),
        _ => {}
    }
    if let Some(profile) = value.strip_prefix("any:") {
        let profile = profile.trim();
        if !is_profile(profile) {
            return Err(RequestError::BadProfile {
                what,
                profile: profile.to_string(),
            });
        }
        return Ok(Some(Wanted::Any {
            profile: Some(profile.to_string()),
        }));
    }
    let mut names = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if names.len() == MAX_NAMES {
            return Err(RequestError::TooMany { what });
        }
        let device = parse_name(item).ok_or_else(|| RequestError::BadName {
            what,
            item: item.to_string(),
        })?;
        if !names.contains(&device) {
            names.push(device);
        }
    }
    if names.is_empty() {
        return Ok(None);
    }
    Ok(Some(Wanted::Names(names)))
}

/// A profile name as NVML writes them: `1g.18gb`, `2c.3g.40gb`,
/// `1g.18gb+me`, `1g.10gb+gfx`.
fn is_profile(text: &str) -> bool {
    (1..=48).contains(&text.len())
        && text.starts_with(|c: char| c.is_ascii_digit())
        && text.contains('g')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_'))
}

/// `name` or `vendor/class=name`, with CDI's rules (core's, the same the
/// generator writes by).
fn parse_name(item: &str) -> Option<DeviceRef> {
    let (kind, name) = match item.split_once('=') {
        Some((kind, name)) => (Some(kind), name),
        None => (None, item),
    };
    if let Some(kind) = kind {
        rules::parse_kind(kind).ok()?;
    }
    rules::check_device_name(name).ok()?;
    Some(DeviceRef {
        kind: kind.map(str::to_string),
        name: name.to_string(),
    })
}

/// Text from the container, safe to print on one line.
pub fn printable(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > 80 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(env: &[&str], annotations: &str) -> Config {
        let env = serde_json::to_string(env).unwrap();
        let json = format!(r#"{{"process":{{"env":{env}}},"annotations":{annotations}}}"#);
        Config::parse(json.as_bytes(), Path::new("c.json")).unwrap()
    }

    /// The state of a runtime that passes no annotations.
    fn state() -> Option<&'static str> {
        None
    }

    fn names(list: &[&str]) -> Wanted {
        Wanted::Names(
            list.iter()
                .map(|s| parse_name(s).expect("valid name"))
                .collect(),
        )
    }

    #[test]
    fn nothing_requested() {
        for env in [
            &[][..],
            &["NVIDIA_VISIBLE_DEVICES="],
            &["NVIDIA_VISIBLE_DEVICES=void"],
            &["NVIDIA_VISIBLE_DEVICES=none"],
            &["NVIDIA_VISIBLE_DEVICES= , "],
        ] {
            assert_eq!(
                from_config(&config(env, "{}"), state()).unwrap(),
                None,
                "{env:?}"
            );
        }
    }

    #[test]
    fn names_index_uuid_qualified() {
        let r = from_config(
            &config(
                &["NVIDIA_VISIBLE_DEVICES=0:1, MIG-8c0f5e2a-1b2c-4d5e-9f00-112233445566,nvidia.com/gpu=0:2"],
                "{}",
            ),
            state(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            r.wanted,
            names(&[
                "0:1",
                "MIG-8c0f5e2a-1b2c-4d5e-9f00-112233445566",
                "nvidia.com/gpu=0:2"
            ])
        );
        assert!(!r.mig_config && !r.mig_monitor);
    }

    #[test]
    fn duplicates_collapse() {
        let r = from_config(&config(&["NVIDIA_VISIBLE_DEVICES=0:1,0:1"], "{}"), state())
            .unwrap()
            .unwrap();
        assert_eq!(r.wanted, names(&["0:1"]));
    }

    #[test]
    fn annotation_alone_and_with_env() {
        let r = from_config(&config(&[], r#"{"mig-cdi/devices":"mig0:1"}"#), state())
            .unwrap()
            .unwrap();
        assert_eq!(r.wanted, names(&["mig0:1"]));
        assert!(r.source.contains("annotation mig-cdi/devices"));
        let r = from_config(
            &config(
                &["NVIDIA_VISIBLE_DEVICES=0:1"],
                r#"{"mig-cdi/devices":"0:2"}"#,
            ),
            state(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.wanted, names(&["0:1", "0:2"]));
    }

    #[test]
    fn kubernetes_cdi_annotations_name_our_devices() {
        let r = from_config(
            &config(
                &[],
                r#"{"cdi.k8s.io/nvidia-device-plugin_abc":"nvidia.com/gpu=MIG-1,vendor.com/nic=eth0"}"#,
            ),
            state(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.wanted, names(&["nvidia.com/gpu=MIG-1"]));
        assert!(r.source.contains("cdi.k8s.io/nvidia-device-plugin_abc"));
        let r = from_config(
            &config(&[], r#"{"cdi.k8s.io/x":"vendor.com/nic=eth0"}"#),
            state(),
        );
        assert_eq!(r.unwrap(), None);
    }

    #[test]
    fn all_keyword() {
        let r = from_config(&config(&["NVIDIA_VISIBLE_DEVICES=all"], "{}"), state())
            .unwrap()
            .unwrap();
        assert_eq!(r.wanted, Wanted::All);
    }

    #[test]
    fn any_and_any_profile() {
        let r = from_config(&config(&["NVIDIA_VISIBLE_DEVICES=any"], "{}"), state())
            .unwrap()
            .unwrap();
        assert_eq!(r.wanted, Wanted::Any { profile: None });
        for (value, profile) in [
            ("any:1g.18gb", "1g.18gb"),
            (" any:2c.3g.40gb ", "2c.3g.40gb"),
        ] {
            let env = format!("NVIDIA_VISIBLE_DEVICES={value}");
            let r = from_config(&config(&[&env], "{}"), state())
                .unwrap()
                .unwrap();
            assert_eq!(
                r.wanted,
                Wanted::Any {
                    profile: Some(profile.into())
                }
            );
        }
        for bad in ["any:", "any:../x", "any:1g 18gb", "any:gpu"] {
            let env = format!("NVIDIA_VISIBLE_DEVICES={bad}");
            let err = from_config(&config(&[&env], "{}"), state())
                .unwrap_err()
                .to_string();
            assert!(err.contains("is not a MIG profile"), "{bad}: {err}");
        }
        let err = from_config(
            &config(
                &["NVIDIA_VISIBLE_DEVICES=any"],
                r#"{"mig-cdi/devices":"0:1"}"#,
            ),
            state(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cannot be combined"), "{err}");
        // The same request in two places is one request.
        let r = from_config(
            &config(
                &["NVIDIA_VISIBLE_DEVICES=any:1g.18gb"],
                r#"{"mig-cdi/devices":"any:1g.18gb"}"#,
            ),
            state(),
        )
        .unwrap()
        .unwrap();
        assert!(matches!(r.wanted, Wanted::Any { .. }));
    }

    #[test]
    fn hostile_names_are_refused_as_data() {
        for bad in [
            "../../etc",
            "/dev/sda",
            "0:1;rm",
            "nvidia.com=0",
            "=0:1",
            "a/b/c=0",
            "0:1\n",
        ] {
            let value = format!("NVIDIA_VISIBLE_DEVICES={bad},0:1");
            let err = from_config(&config(&[&value], "{}"), state());
            if bad == "0:1\n" {
                // Trimmed: a trailing newline is whitespace.
                assert!(err.is_ok());
                continue;
            }
            let err = err.unwrap_err().to_string();
            assert!(err.contains("is not a device name"), "{bad}: {err}");
        }
        let long = format!("NVIDIA_VISIBLE_DEVICES={}", "0:1,".repeat(2000));
        assert!(from_config(&config(&[&long], "{}"), state()).is_err());
    }

    #[test]
    fn conflicting_duplicate_variable_is_refused() {
        let err = from_config(
            &config(
                &["NVIDIA_VISIBLE_DEVICES=0:1", "NVIDIA_VISIBLE_DEVICES=0:2"],
                "{}",
            ),
            state(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("set 2 times"), "{err}");
        assert!(from_config(
            &config(
                &["NVIDIA_VISIBLE_DEVICES=0:1", "NVIDIA_VISIBLE_DEVICES=0:1"],
                "{}"
            ),
            state()
        )
        .is_ok());
    }

    #[test]
    fn mig_config_and_monitor_flags() {
        let r = from_config(
            &config(
                &[
                    "NVIDIA_VISIBLE_DEVICES=0:1",
                    "NVIDIA_MIG_CONFIG_DEVICES=all",
                    "NVIDIA_MIG_MONITOR_DEVICES=all",
                ],
                "{}",
            ),
            state(),
        )
        .unwrap()
        .unwrap();
        assert!(r.mig_config && r.mig_monitor);
        let err = from_config(
            &config(
                &["NVIDIA_VISIBLE_DEVICES=0:1", "NVIDIA_MIG_CONFIG_DEVICES=0"],
                "{}",
            ),
            state(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("use NVIDIA_MIG_CONFIG_DEVICES=all"), "{err}");
    }
}
