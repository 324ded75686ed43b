//! The OCI state the runtime writes on the hook's stdin.
//!
//! runc sends `{"ociVersion","id","status":"creating","pid","bundle",
//! "annotations"}`, crun adds `"root"` and says `"status":"created"`, podman
//! passes crun's or runc's. We read only what we use — the pid, the bundle
//! and the annotations — so a field a runtime adds, or a status we do not
//! know, never makes the hook fail.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::HookError;

/// What the hook needs from the state.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct State {
    /// The container's init process, waiting for the hooks (prestart,
    /// createRuntime). Absent or 0 at other stages.
    #[serde(default)]
    pub pid: Option<i64>,
    /// Absolute path of the bundle (config.json lives there).
    pub bundle: PathBuf,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl State {
    /// Decode the state from stdin's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, HookError> {
        let state: State =
            serde_json::from_slice(bytes).map_err(|source| HookError::State { source })?;
        if !state.bundle.is_absolute() {
            return Err(HookError::BadState(format!(
                "the bundle {:?} is not an absolute path",
                state.bundle
            )));
        }
        Ok(state)
    }

    /// The container's init pid; only prestart and createRuntime hooks get
    /// one that still has the container's mount namespace before
    /// pivot_root.
    pub fn pid(&self) -> Result<i32, HookError> {
        match self.pid {
            Some(pid) if pid > 1 && pid <= i64::from(i32::MAX) => Ok(pid as i32),
            other => Err(HookError::BadState(format!(
                "the state has no usable container pid ({}, status {}); install mig-cdi-hook \
                 as a prestart or createRuntime hook",
                other.map_or_else(|| "none".to_string(), |p| p.to_string()),
                self.status.as_deref().unwrap_or("unknown")
            ))),
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
        assert_eq!(s.annotations["mig-cdi/devices"], "0:1");
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
