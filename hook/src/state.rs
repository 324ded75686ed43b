//! The OCI state the runtime writes on the hook's stdin.
//!
//! runc sends `{"ociVersion","id","status":"creating","pid","bundle",
//! "annotations"}`, crun adds `"root"` and says `"status":"created"`, podman
//! passes crun's or runc's. We read only what we use — the pid, the bundle
//! and our one annotation — so a field a runtime adds, a status we do not
//! know, or a megabyte of other annotations never makes the hook fail or
//! grow.

use std::path::PathBuf;

use serde::Deserialize;

use crate::input::{position, InputError};

/// What the hook needs from the state.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct State {
    /// The container's init process, waiting for the hooks (prestart,
    /// createRuntime). Absent or 0 at other stages.
    #[serde(default)]
    pub pid: Option<i64>,
    /// Absolute path of the bundle (config.json lives there).
    pub bundle: PathBuf,
    /// The container's id, which its leases are recorded under.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    /// The value of the `mig-cdi/devices` annotation, the only one kept.
    #[serde(
        default,
        rename = "annotations",
        deserialize_with = "crate::config::annotation"
    )]
    pub annotation: Option<String>,
}

impl State {
    /// Decode the state from stdin's bytes (not UTF-8 inside a string is
    /// U+FFFD, as in the runtime that wrote it).
    pub fn parse(bytes: &[u8]) -> Result<Self, InputError> {
        let text = String::from_utf8_lossy(bytes);
        let state: State =
            serde_json::from_str(&text).map_err(|err| InputError::State { at: position(&err) })?;
        if !state.bundle.is_absolute() {
            return Err(InputError::RelativeBundle(state.bundle));
        }
        Ok(state)
    }

    /// The container's init pid; only prestart and createRuntime hooks get
    /// one that still has the container's mount namespace before
    /// pivot_root.
    pub fn pid(&self) -> Result<i32, InputError> {
        match self.pid {
            Some(pid) if pid > 1 && pid <= i64::from(i32::MAX) => Ok(pid as i32),
            other => Err(InputError::NoPid {
                pid: other,
                status: self.status.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_state() {
        let s = State::parse(
            br#"{"ociVersion":"1.0.2-dev","id":"t1","status":"creating","pid":15265,"bundle":"/tmp/exp/b"}"#,
        )
        .unwrap();
        assert_eq!(s.pid().unwrap(), 15265);
        assert_eq!(s.bundle, PathBuf::from("/tmp/exp/b"));
    }

    #[test]
    fn crun_state_with_root_and_unknown_status() {
        let s = State::parse(
            br#"{"ociVersion":"1.0","id":"t2","pid":16172,"root":"/var/lib/r","bundle":"/b","status":"something-new","x":{"y":[1]}}"#,
        )
        .unwrap();
        assert_eq!(s.pid().unwrap(), 16172);
    }

    #[test]
    fn podman_annotations_are_kept() {
        let s = State::parse(
            br#"{"ociVersion":"1.0.0","id":"c","status":"created","pid":7,"bundle":"/b","annotations":{"mig-cdi/devices":"0:1"}}"#,
        )
        .unwrap();
        assert_eq!(s.annotation.as_deref(), Some("0:1"));
    }

    #[test]
    fn huge_foreign_annotations_are_skipped() {
        let big = "x".repeat(1_300_000);
        let json = format!(r#"{{"pid":7,"bundle":"/b","annotations":{{"io.big":"{big}"}}}}"#);
        let s = State::parse(json.as_bytes()).unwrap();
        assert_eq!(s.annotation, None);
    }

    #[test]
    fn poststop_state_has_no_pid() {
        let s = State::parse(br#"{"id":"c","status":"stopped","bundle":"/b"}"#).unwrap();
        let err = s.pid().unwrap_err().to_string();
        assert!(err.contains("prestart or createRuntime"), "{err}");
        let s = State::parse(br#"{"pid":0,"bundle":"/b"}"#).unwrap();
        assert!(s.pid().is_err());
    }

    #[test]
    fn garbage_and_relative_bundle_are_refused() {
        assert!(State::parse(b"not json").is_err());
        assert!(State::parse(br#"{"pid":3,"bundle":"rel"}"#).is_err());
        assert!(State::parse(br#"{"pid":3}"#).is_err());
    }
}
