//! Flags more than one command takes: where the driver lives (every
//! command that reads the hardware) and the CDI kind (`generate`,
//! `docker-args`). Raw flags only, checked by the methods here before any
//! I/O; each command's own flags live in its module.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use mig_cdi_core::cdi::rules;

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
