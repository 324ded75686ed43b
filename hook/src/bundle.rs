//! `add-to-bundle`: put this hook into a bundle's `config.json`, for
//! engines that have no hook configuration of their own (docker without
//! CDI). A wrapper runtime (`examples/hooks/docker/mig-cdi-runc`) calls it
//! just before handing `create` to runc.
//!
//! Only a config that requests a device is changed (the request is parsed
//! exactly as the hook will parse it, so a malformed one fails `create`
//! here, early); the entry is appended to `hooks.createRuntime` with an
//! explicit `env`, unless this hook is there already; every other field is
//! kept, and the file is replaced atomically with its mode.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{json, Value};

use crate::cli::Settings;
use crate::error::HookError;
use crate::host::Host;
use crate::input;
use crate::log::Log;
use crate::request;

/// The PATH every hook entry we write carries (the container's is never
/// inherited).
const HOOK_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Returns whether the config was changed.
pub fn add_to_bundle(
    host: &dyn Host,
    bundle: &Path,
    settings: &Settings,
    exe: &Path,
    log: &mut Log,
) -> Result<bool, HookError> {
    let path = bundle.join("config.json");
    let io = |op: &'static str| {
        let path = path.clone();
        move |source| HookError::Io { op, path, source }
    };
    let (bytes, config) = input::bundle_config(host, bundle)?;
    let Some(request) = request::from_config(&config, None).map_err(input::InputError::from)?
    else {
        log.line(format_args!(
            "{}: no request, left as it is",
            path.display()
        ));
        return Ok(false);
    };
    let mut value: Value =
        serde_json::from_slice(&bytes).map_err(|err| input::InputError::Config {
            path: path.clone(),
            at: input::position(&err),
        })?;
    if !insert_hook(&mut value, exe, &settings.hook_args()) {
        log.line(format_args!("{}: hook already present", path.display()));
        return Ok(false);
    }
    let text = serde_json::to_vec_pretty(&value).expect("a JSON value serializes");
    let mode = fs::metadata(&path)
        .map_err(io("stat"))?
        .permissions()
        .mode();
    let tmp = bundle.join(".config.json.mig-cdi-hook");
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(&text)?;
        f.set_permissions(fs::Permissions::from_mode(mode & 0o7777))?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    };
    if let Err(source) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(HookError::Io {
            op: "rewrite",
            path,
            source,
        });
    }
    log.line(format_args!(
        "{}: added the hook for {}",
        path.display(),
        request.source
    ));
    Ok(true)
}

/// Append our createRuntime entry; false if one with our path is there.
fn insert_hook(config: &mut Value, exe: &Path, args: &[String]) -> bool {
    let exe = exe.display().to_string();
    if !config["hooks"].is_object() {
        config["hooks"] = json!({});
    }
    let stage = &mut config["hooks"]["createRuntime"];
    if !stage.is_array() {
        *stage = json!([]);
    }
    let entries = stage.as_array_mut().expect("made an array above");
    if entries.iter().any(|e| e["path"] == exe.as_str()) {
        return false;
    }
    let mut hook_args = vec!["mig-cdi-hook".to_string(), "createRuntime".to_string()];
    hook_args.extend(args.iter().cloned());
    entries.push(json!({"path": exe, "args": hook_args, "env": [HOOK_ENV]}));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Settings;
    use crate::host::RealHost;

    fn add_to_bundle(
        bundle: &Path,
        settings: &Settings,
        exe: &Path,
        log: &mut Log,
    ) -> Result<bool, HookError> {
        super::add_to_bundle(&RealHost::new(Path::new("/")), bundle, settings, exe, log)
    }

    fn settings() -> Settings {
        Settings::from_args(vec!["--root".into(), "/fake".into()]).unwrap()
    }

    fn bundle(config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("config.json"), config).unwrap();
        fs::set_permissions(
            dir.path().join("config.json"),
            fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        dir
    }

    #[test]
    fn adds_the_hook_once_when_a_device_is_requested() {
        let dir = bundle(
            r#"{"process":{"env":["NVIDIA_VISIBLE_DEVICES=0:1"]},"hooks":{"prestart":[{"path":"/x"}]},"other":{"kept":true}}"#,
        );
        let exe = Path::new("/usr/local/bin/mig-cdi-hook");
        assert!(add_to_bundle(dir.path(), &settings(), exe, &mut Log::none()).unwrap());
        assert!(!add_to_bundle(dir.path(), &settings(), exe, &mut Log::none()).unwrap());
        let path = dir.path().join("config.json");
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["other"]["kept"], true);
        assert_eq!(v["hooks"]["prestart"][0]["path"], "/x");
        let entries = v["hooks"]["createRuntime"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries[0]["args"],
            json!(["mig-cdi-hook", "createRuntime", "--root", "/fake"])
        );
        assert_eq!(entries[0]["env"], json!([HOOK_ENV]));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    #[test]
    fn no_request_leaves_the_file_byte_for_byte() {
        let text = r#"{"process":{"env":["A=1"]},  "odd"  : [1]}"#;
        let dir = bundle(text);
        assert!(
            !add_to_bundle(dir.path(), &settings(), Path::new("/h"), &mut Log::none()).unwrap()
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("config.json")).unwrap(),
            text
        );
    }

    #[test]
    fn a_bad_request_fails_early() {
        let dir = bundle(r#"{"process":{"env":["NVIDIA_VISIBLE_DEVICES=../x"]}}"#);
        assert!(add_to_bundle(dir.path(), &settings(), Path::new("/h"), &mut Log::none()).is_err());
    }
}
