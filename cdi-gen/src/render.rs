//! The spec for what discovery found, checked before anyone sees it:
//! shared by `generate` (which writes it) and `docker-args` (which turns
//! one device of it into flags), so the two cannot disagree.

use anyhow::{bail, Context, Result};
use mig_cdi_core::cdi::{self, RenderOptions, SchemaValidator, Spec};

use crate::discover::Discovery;

/// Render the spec for what discovery found and check it; the bytes come
/// only from a spec that passed.
pub fn render_checked(
    found: &Discovery,
    render: &RenderOptions,
    schema: &SchemaValidator,
) -> Result<Spec> {
    if found.inventory.devices.is_empty() {
        bail!(
            "no device to describe: {} GPU(s) found, every one in MIG mode with no MIG device; \
             create MIG devices (nvidia-smi mig -cgi <profiles> -C) or disable MIG mode, then run \
             again (an existing spec file is left as it is)",
            found.snapshot.gpus.len()
        );
    }
    let spec = cdi::render(&found.inventory, render);
    let value = serde_json::to_value(&spec).context("cannot serialise the spec")?;
    let checked = cdi::check_value(&value, schema);
    if !checked.is_valid() {
        let list: Vec<String> = checked.problems.iter().map(|p| format!("  {p}")).collect();
        bail!(
            "internal error: the generated spec breaks the CDI rules, nothing was written \
             (please report this with `mig-cdi-gen list --json`):\n{}",
            list.join("\n")
        );
    }
    Ok(spec)
}
