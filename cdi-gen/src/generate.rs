//! `mig-cdi-gen generate`: the node's CDI spec, checked before it is
//! written, written atomically, or compared with the file on disk
//! (`--check`) for node images and boot units.
//!
//! Order of work: check the flags (no I/O), discover (NVML + /proc + /dev,
//! every node checked), render (pure), validate the result against the
//! schema and the CDI rules, and only then write or compare. A failure at
//! any step leaves the output file as it was.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use mig_cdi_core::cdi::{
    self, diff, format, rules, CdiVersion, Format, NameStrategy, RenderOptions, SchemaValidator,
    Spec,
};

use crate::atomic_write;
use crate::discover::{self, DiscoverOptions};

/// Exit status of `--check` when the file differs from what the hardware
/// gives now.
pub const EXIT_DRIFT: u8 = 1;

/// A device naming strategy, as written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    /// `0` for a GPU, `0:1` for MIG device 1 of GPU 0 (needs cdiVersion 0.5.0).
    Index,
    /// `GPU-…` / `MIG-…`: stable when other MIG devices change.
    Uuid,
    /// `gpu0`, `mig0:1`.
    TypeIndex,
}

impl From<Strategy> for NameStrategy {
    fn from(s: Strategy) -> Self {
        match s {
            Strategy::Index => NameStrategy::Index,
            Strategy::Uuid => NameStrategy::Uuid,
            Strategy::TypeIndex => NameStrategy::TypeIndex,
        }
    }
}

/// An output format, as written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    Json,
    Yaml,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Json => Format::Json,
            FormatArg::Yaml => Format::Yaml,
        }
    }
}

/// The CDI kind (`vendor/class`) and device naming, shared with
/// `docker-args`.
#[derive(Debug, Clone, clap::Args)]
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

#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Runtimes (podman, containerd, CRI-O, docker with CDI on) read specs from \
/etc/cdi and /var/run/cdi: only *.json and *.yaml directly in those folders. \
The customary name is <vendor>-<class>.json, e.g. /etc/cdi/nvidia.com-gpu.json.\n\n\
Examples:\n  \
mig-cdi-gen generate --output /etc/cdi/nvidia.com-gpu.json\n  \
mig-cdi-gen generate --device-name-strategy uuid --output /var/run/cdi/nvidia.com-gpu.yaml\n  \
mig-cdi-gen generate --check --output /etc/cdi/nvidia.com-gpu.json || \
mig-cdi-gen generate --output /etc/cdi/nvidia.com-gpu.json\n\n\
Exit status: 0 success (with --check: the file is up to date), 1 with --check only: \
the file differs from what the hardware gives now (or is missing), 2 error.")]
pub struct GenerateArgs {
    #[command(flatten)]
    pub naming: NamingArgs,
    /// How devices are named; repeat or separate with commas for several
    /// names per device. Names are written in the order index, uuid,
    /// type-index whatever the order given here.
    #[arg(
        long = "device-name-strategy",
        value_enum,
        value_delimiter = ',',
        default_values_t = [Strategy::Index, Strategy::Uuid],
        value_name = "STRATEGY"
    )]
    pub strategies: Vec<Strategy>,
    /// Write the spec to FILE (replaced atomically, mode 0644; its folder
    /// is created if missing) instead of standard output; `-` is standard
    /// output.
    #[arg(long, short = 'o', value_name = "FILE", default_value = "-")]
    pub output: PathBuf,
    /// Output format; by default YAML when FILE ends in .yaml or .yml,
    /// JSON otherwise.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<FormatArg>,
    /// Write nothing: compare FILE with what would be written and list the
    /// devices added, removed or changed. Exit 0 when equal, 1 when not.
    #[arg(long, requires = "output")]
    pub check: bool,
}

/// Where the bytes go.
#[derive(Debug)]
enum Target {
    Stdout,
    File(PathBuf),
}

/// The flags, checked and resolved: the second stage after clap.
#[derive(Debug)]
struct Settings {
    render: RenderOptions,
    format: Format,
    target: Target,
    check: bool,
}

fn settings(options: &DiscoverOptions, args: &GenerateArgs) -> Result<Settings> {
    args.naming.check()?;
    let target = if args.output.as_os_str() == "-" {
        Target::Stdout
    } else {
        Target::File(args.output.clone())
    };
    let format = match (&target, args.format) {
        (_, Some(f)) => Format::from(f),
        (Target::File(path), None) => Format::from_path(path),
        (Target::Stdout, None) => Format::Json,
    };
    if let Target::File(path) = &target {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if format == Format::Yaml && ext == "json" {
            bail!(
                "--format yaml with {}: runtimes parse *.json files as JSON; name the file \
                 *.yaml or drop --format",
                path.display()
            );
        }
        if !matches!(ext, "json" | "yaml") {
            eprintln!(
                "mig-cdi-gen: warning: runtimes read only *.json and *.yaml spec files; {} \
                 will not be read from a CDI folder",
                path.display()
            );
        }
    }
    if args.check && matches!(target, Target::Stdout) {
        bail!("--check compares with a file: give it with --output FILE");
    }
    Ok(Settings {
        render: RenderOptions {
            vendor: args.naming.vendor.clone(),
            class: args.naming.class.clone(),
            strategies: args.strategies.iter().map(|&s| s.into()).collect(),
            dev_root: dev_root(&options.dev_root)?,
            driver: None,
        },
        format,
        target,
        check: args.check,
    })
}

/// `--dev-root` as it goes into `hostPath`: `None` for `/`.
pub fn dev_root(dev_root: &Path) -> Result<Option<String>> {
    let Some(text) = dev_root.to_str() else {
        bail!("--dev-root {}: not valid UTF-8", dev_root.display());
    };
    if !text.starts_with('/') {
        bail!("--dev-root {text}: must be an absolute path (it goes into the spec's hostPath)");
    }
    let trimmed = text.trim_end_matches('/');
    Ok((!trimmed.is_empty()).then(|| trimmed.to_string()))
}

/// Render the spec for what discovery found and check it; the bytes come
/// only from a spec that passed.
pub fn render_checked(
    found: &discover::Discovery,
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

pub fn run(options: &DiscoverOptions, args: &GenerateArgs) -> Result<ExitCode> {
    let settings = settings(options, args)?;
    let schema = SchemaValidator::new()?;
    let found = discover::discover(options)?;
    let spec = render_checked(&found, &settings.render, &schema)?;
    let bytes = format::to_bytes(&spec, settings.format)?;
    if CdiVersion::parse(&spec.cdi_version).is_some_and(|v| v > CdiVersion::PODMAN_4_3_MAX) {
        eprintln!(
            "mig-cdi-gen: warning: this spec needs cdiVersion {} (class \"{}\"), which runtimes \
             built with CDI 0.5 (Podman 4.3 in Debian 12) cannot read",
            spec.cdi_version, settings.render.class
        );
    }
    for path in &found.created {
        eprintln!("mig-cdi-gen: created {}", path.display());
    }
    if let Target::File(path) = &settings.target {
        for warning in same_folder_conflicts(path, &spec, &schema) {
            eprintln!("mig-cdi-gen: warning: {warning}");
        }
    }
    match (&settings.target, settings.check) {
        (Target::File(path), true) => check(path, &spec, &bytes, settings.format, &schema),
        (Target::File(path), false) => {
            atomic_write::write(path, &bytes)?;
            eprintln!(
                "mig-cdi-gen: wrote {} ({}, cdiVersion {}, {} device names for {} devices)",
                path.display(),
                spec.kind,
                spec.cdi_version,
                spec.devices.len(),
                found.inventory.devices.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        (Target::Stdout, _) => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .and_then(|()| out.flush())
                .context("cannot write to standard output")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Other spec files in the output's folder that define some of the same
/// devices (NVIDIA's own generator writes `nvidia.com/gpu` too): runtimes
/// refuse a device defined twice in one folder.
fn same_folder_conflicts(path: &Path, spec: &Spec, schema: &SchemaValidator) -> Vec<String> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Vec::new();
    };
    let Ok(files) = crate::validate::spec_files_in(dir) else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    for file in files.iter().filter(|f| f.file_name() != path.file_name()) {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        let Some(other) = cdi::check_document(&bytes, Format::from_path(file), schema).spec else {
            continue;
        };
        if other.kind != spec.kind {
            continue;
        }
        let shared: Vec<&str> = spec
            .devices
            .iter()
            .filter(|d| other.devices.iter().any(|o| o.name == d.name))
            .map(|d| d.name.as_str())
            .collect();
        if let Some(first) = shared.first() {
            warnings.push(format!(
                "{} also defines {}={first}{}: runtimes refuse a device defined twice in one \
                 folder; remove one of the files or choose another --vendor/--class",
                file.display(),
                spec.kind,
                match shared.len() {
                    1 => String::new(),
                    n => format!(" and {} more", n - 1),
                }
            ));
        }
    }
    warnings
}

/// `--check`: 0 when the file holds exactly `bytes`, 1 with a per-device
/// account when not, an error when the file cannot be read.
fn check(
    path: &Path,
    spec: &Spec,
    bytes: &[u8],
    format: Format,
    schema: &SchemaValidator,
) -> Result<ExitCode> {
    let old = match std::fs::read(path) {
        Ok(old) => old,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!(
                "{}: missing; generate would write {} device names",
                path.display(),
                spec.devices.len()
            );
            return Ok(ExitCode::from(EXIT_DRIFT));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if old == bytes {
        println!(
            "{}: up to date ({} device names)",
            path.display(),
            spec.devices.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", drift_report(path, &old, spec, format, schema));
    Ok(ExitCode::from(EXIT_DRIFT))
}

/// What differs between the file's bytes and the spec generated now.
pub fn drift_report(
    path: &Path,
    old: &[u8],
    new: &Spec,
    format: Format,
    schema: &SchemaValidator,
) -> String {
    let mut out = format!("{}: out of date\n", path.display());
    let checked = cdi::check_document(old, format, schema);
    let Some(old_spec) = checked.spec else {
        out.push_str("  the file is not a CDI spec:\n");
        for problem in &checked.problems {
            out.push_str(&format!("    {problem}\n"));
        }
        return out + "  generate would replace it\n";
    };
    let d = diff::diff(&old_spec, new);
    if !d.added.is_empty() {
        out.push_str(&format!("  added:   {}\n", d.added.join(", ")));
    }
    if !d.removed.is_empty() {
        out.push_str(&format!("  removed: {}\n", d.removed.join(", ")));
    }
    for change in &d.changed {
        out.push_str(&format!("  changed: {}\n", change.name));
        for line in &change.removed {
            out.push_str(&format!("    - {line}\n"));
        }
        for line in &change.added {
            out.push_str(&format!("    + {line}\n"));
        }
    }
    for line in &d.spec {
        out.push_str(&format!("  spec:    {line}\n"));
    }
    if d.is_empty() {
        out.push_str("  same devices and edits; the file's layout differs (rewritten by hand?)\n");
    }
    out.push_str("  run generate without --check to rewrite it\n");
    out
}
