//! Flags more than one command takes: where the driver lives (every
//! command that reads the hardware) and the CDI kind (`generate`,
//! `docker-args`). Raw flags only, checked by the methods here before any
//! I/O; each command's own flags live in its module.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use mig_cdi_core::cdi::render::{DriverEdits, VerifyHook};
use mig_cdi_core::cdi::rules;
use mig_cdi_core::driver_files;

use crate::discover::DiscoverOptions;
use crate::nvml::Reads;

/// Where the driver lives.
#[derive(Debug, Clone, Args)]
pub struct HostArgs {
    /// Host root under which /proc and /dev are read (for tests and chroots).
    #[arg(long, global = true, default_value = "/", value_name = "DIR")]
    pub root: PathBuf,
    /// NVML library to load.
    #[arg(long, global = true, default_value = crate::nvml::DEFAULT_LIB, value_name = "PATH")]
    pub nvml_lib: OsString,
    /// Root the driver's /dev lives under on the host, when not / (e.g.
    /// /run/nvidia/driver); specs then name it in hostPath.
    #[arg(long, global = true, default_value = "/", value_name = "DIR")]
    pub dev_root: PathBuf,
}

impl HostArgs {
    /// Where discovery looks, and what the command needs it to read.
    pub fn discover_options(&self, reads: Reads) -> DiscoverOptions {
        DiscoverOptions {
            root: self.root.clone(),
            dev_root: self.dev_root.clone(),
            nvml_lib: self.nvml_lib.clone(),
            reads,
        }
    }

    /// `--dev-root` as it goes into `hostPath`: `None` for `/`.
    pub fn host_path_root(&self) -> Result<Option<String>> {
        host_path_root(&self.dev_root)
    }
}

fn host_path_root(dev_root: &Path) -> Result<Option<String>> {
    let Some(text) = dev_root.to_str() else {
        bail!("--dev-root {}: not valid UTF-8", dev_root.display());
    };
    if !text.starts_with('/') {
        bail!("--dev-root {text}: must be an absolute path (it goes into the spec's hostPath)");
    }
    let trimmed = text.trim_end_matches('/');
    Ok((!trimmed.is_empty()).then(|| trimmed.to_string()))
}

/// `--create-device-nodes` given to a command other than `generate`: only
/// `generate` changes the host, and only after every check has passed.
pub fn refuse_create_device_nodes(command: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "--create-device-nodes is an option of generate alone: {command} never changes the \
         host; run `mig-cdi-gen generate --create-device-nodes --output FILE` to create the \
         missing MIG capability nodes while writing the spec"
    )
}

/// The CDI kind (`vendor/class`), shared by `generate` and `docker-args`.
#[derive(Debug, Clone, Args)]
pub struct NamingArgs {
    /// Vendor part of the CDI kind `vendor/class`.
    #[arg(long, default_value = "nvidia.com", value_name = "VENDOR")]
    pub vendor: String,
    /// Class part of the CDI kind `vendor/class`. A dot in it needs
    /// cdiVersion 0.6.0, which Podman 4.3 cannot read.
    #[arg(long, default_value = "gpu", value_name = "CLASS")]
    pub class: String,
}

impl NamingArgs {
    /// Check vendor and class before any work is done.
    pub fn check(&self) -> Result<()> {
        rules::check_vendor(&self.vendor).map_err(|e| anyhow::anyhow!("--vendor: {e}"))?;
        rules::check_class(&self.class).map_err(|e| anyhow::anyhow!("--class: {e}"))?;
        Ok(())
    }

    pub fn kind(&self) -> String {
        format!("{}/{}", self.vendor, self.class)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_root_becomes_a_host_path_prefix() {
        assert_eq!(host_path_root(Path::new("/")).unwrap(), None);
        assert_eq!(
            host_path_root(Path::new("/run/nvidia/driver/")).unwrap(),
            Some("/run/nvidia/driver".into())
        );
        assert!(host_path_root(Path::new("relative")).is_err());
    }
}

/// The driver's user-space files in the spec, shared by `generate` and
/// `docker-args`.
#[derive(Debug, Clone, Args)]
pub struct DriverArgs {
    /// Leave the driver's user-space files out: a spec of device nodes
    /// only (CUDA then needs the libraries from elsewhere).
    #[arg(long)]
    pub no_driver_files: bool,
    /// Where the driver's user-space files are, as this program sees them
    /// and as the runtime will mount them from (hostPath), e.g.
    /// /run/nvidia/driver for the GPU operator's layout. Default: under
    /// --root, mounted from the same paths.
    #[arg(long, value_name = "DIR")]
    pub driver_root: Option<PathBuf>,
    /// Also the graphics libraries (EGL, GLX, GLES, Vulkan, OptiX, NvFBC).
    #[arg(long)]
    pub graphics: bool,
    /// Also the video libraries (NVDEC, NVENC, optical flow, VDPAU).
    #[arg(long)]
    pub video: bool,
    /// Absolute path of mig-cdi-hook, for the spec's createContainer hooks
    /// (soname links, loader cache). Default: beside mig-cdi-gen, else
    /// /usr/local/bin/mig-cdi-hook. Given to generate or watch, it also
    /// adds two hooks to each MIG device, with --no-driver-files too: a
    /// createRuntime `mig-cdi-hook verify` (the container got one MIG device
    /// and nothing it may not have; records a lease) and a poststop
    /// `mig-cdi-hook poststop` (releases the lease).
    #[arg(long, value_name = "PATH")]
    pub hook_path: Option<PathBuf>,
}

/// `--hook-path` as the spec names it: absolute (runtimes run hooks
/// without a PATH) and UTF-8.
fn hook_path_text(path: &Path) -> Result<String> {
    if !path.is_absolute() {
        bail!(
            "--hook-path {} must be an absolute path: runtimes run hooks without a PATH",
            path.display()
        );
    }
    match path.to_str() {
        Some(text) => Ok(text.to_string()),
        None => bail!("--hook-path {}: not valid UTF-8", path.display()),
    }
}

impl DriverArgs {
    /// The driver's files for the module `version` (`None` with
    /// `--no-driver-files`); `root` is `--root`.
    pub fn edits(&self, root: &Path, version: &str) -> Result<Option<DriverEdits>> {
        if self.no_driver_files {
            return Ok(None);
        }
        if let Some(dir) = &self.driver_root {
            if !dir.is_absolute() {
                bail!("--driver-root {} must be an absolute path", dir.display());
            }
        }
        let hook_path = match &self.hook_path {
            Some(path) => hook_path_text(path)?,
            None => std::env::current_exe()
                .ok()
                .and_then(|exe| Some(exe.parent()?.join("mig-cdi-hook")))
                .filter(|p| p.is_file())
                .unwrap_or_else(|| PathBuf::from("/usr/local/bin/mig-cdi-hook"))
                .display()
                .to_string(),
        };
        let options = driver_files::Options {
            driver_root: self
                .driver_root
                .clone()
                .unwrap_or_else(|| root.to_path_buf()),
            graphics: self.graphics,
            video: self.video,
        };
        let files =
            driver_files::discover(version, &options).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Some(DriverEdits {
            files,
            driver_root: self
                .driver_root
                .as_ref()
                .map(|d| d.display().to_string())
                .filter(|d| !d.trim_end_matches('/').is_empty()),
            hook_path,
        }))
    }

    /// The verify and release hooks for each MIG device: only when
    /// `--hook-path` is given (the default path may name no hook at all,
    /// and a hook that is not there fails every container), with
    /// `--hook-state-dir` (`state_dir`) passed on. Flags only, no I/O.
    pub fn verify_hook(&self, state_dir: Option<&Path>) -> Result<Option<VerifyHook>> {
        let Some(path) = &self.hook_path else {
            if let Some(dir) = state_dir {
                bail!(
                    "--hook-state-dir {} is for the verify and release hooks, which only \
                     --hook-path adds: give --hook-path PATH too (or drop --hook-state-dir)",
                    dir.display()
                );
            }
            return Ok(None);
        };
        let state_dir = match state_dir {
            None => None,
            Some(dir) if !dir.is_absolute() => bail!(
                "--hook-state-dir {} must be an absolute path: the hooks run wherever the \
                 runtime starts them (runc: in the bundle), not here",
                dir.display()
            ),
            Some(dir) => match dir.to_str() {
                Some(text) => Some(text.to_string()),
                None => bail!("--hook-state-dir {}: not valid UTF-8", dir.display()),
            },
        };
        Ok(Some(VerifyHook {
            path: hook_path_text(path)?,
            state_dir,
            extra: Vec::new(),
        }))
    }
}
