//! The spec for what discovery found, as the bytes that will be written,
//! checked before anyone sees them: shared by `generate` (which writes
//! them) and `docker-args` (which turns one device of the spec into
//! flags), so the two cannot disagree.
//!
//! The spec is serialised once, in the output format, and the official
//! schema and the CDI rules are run on exactly those bytes, read back as a
//! runtime would read them: what is checked is what is written, YAML
//! included.

use anyhow::{bail, Result};
use mig_cdi_core::cdi::{self, format, Format, RenderOptions, SchemaValidator, Spec};

use crate::discover::Discovery;

/// A spec and its bytes, which passed the schema and the rules.
#[derive(Debug)]
pub struct CheckedSpec {
    pub spec: Spec,
    pub format: Format,
    pub bytes: Vec<u8>,
}

/// Render the spec for what discovery found, serialise it in `format` and
/// check those bytes.
pub fn render_checked(
    found: &Discovery,
    render: &RenderOptions,
    format: Format,
    schema: &SchemaValidator,
) -> Result<CheckedSpec> {
    if found.inventory.devices.is_empty() {
        bail!(
            "no device to describe: {} GPU(s) found, every one in MIG mode with no MIG device; \
             create MIG devices (nvidia-smi mig -cgi <profiles> -C) or disable MIG mode, then run \
             again (an existing spec file is left as it is)",
            found.snapshot.gpus.len()
        );
    }
    let spec = cdi::render(&found.inventory, render);
    let bytes = format::to_bytes(&spec, format)?;
    let checked = cdi::check_document(&bytes, format, schema);
    if !checked.is_valid() {
        let list: Vec<String> = checked.problems.iter().map(|p| format!("  {p}")).collect();
        bail!(
            "internal error: the generated spec breaks the CDI rules, nothing was written \
             (please report this with `mig-cdi-gen list --json`):\n{}",
            list.join("\n")
        );
    }
    Ok(CheckedSpec {
        spec,
        format,
        bytes,
    })
}
