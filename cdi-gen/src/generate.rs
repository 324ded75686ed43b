//! `mig-cdi-gen generate`: the node's CDI spec, checked before it is
//! written, written atomically, or compared with the file on disk
//! (`--check`) for node images and boot units.
//!
//! Order of work: check the flags (no I/O), discover (NVML + /proc + /dev,
//! every node examined, nothing changed), render (pure) and serialise
//! once, check exactly those bytes against the schema and the CDI rules,
//! create the output's temporary file, and only then change the host —
//! the missing capability nodes `--create-device-nodes` asked for — and
//! write or compare the bytes. A failure at any step leaves the output
//! file as it was, and the host too unless it comes after the nodes.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use mig_cdi_core::cdi::folders::{Catalog, Pick};
use mig_cdi_core::cdi::{
    self, diff, CdiVersion, Format, NameStrategy, RenderOptions, SchemaValidator, Spec,
};
use mig_cdi_core::fsread;

use crate::args::{DriverArgs, HostArgs, NamingArgs};
use crate::atomic_write::AtomicFile;
use crate::discover::{self, Discovery};
use crate::exit::EXIT_DRIFT;
use crate::mknod;
use crate::nvml::Reads;
use crate::render::{render_checked, CheckedSpec};

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

#[derive(Debug, Clone, clap::Args)]
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
    #[command(flatten)]
    pub driver: DriverArgs,
    /// Where the verify and release hooks keep their leases: both get
    /// `--state-dir DIR` (an absolute path). Only with --hook-path, which
    /// adds those hooks. Default: the hook's own.
    #[arg(long, value_name = "DIR")]
    pub hook_state_dir: Option<PathBuf>,
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
    /// Create missing GPU-instance and compute-instance capability nodes
    /// under /dev/nvidia-caps (mknod, with the driver's mode), once every
    /// node, the spec and its check have passed. Nothing else is ever
    /// created. Also accepted before the command.
    #[arg(long)]
    pub create_device_nodes: bool,
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
    create_device_nodes: bool,
}

fn settings(host: &HostArgs, args: &GenerateArgs) -> Result<Settings> {
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
    if args.check && args.create_device_nodes {
        bail!(
            "--check writes nothing, so it does not create device nodes either: drop \
             --create-device-nodes (or --check)"
        );
    }
    Ok(Settings {
        render: RenderOptions {
            vendor: args.naming.vendor.clone(),
            class: args.naming.class.clone(),
            strategies: args.strategies.iter().map(|&s| s.into()).collect(),
            dev_root: host.host_path_root()?,
            driver: None,
            verify_hook: args.driver.verify_hook(args.hook_state_dir.as_deref())?,
        },
        format,
        target,
        check: args.check,
        create_device_nodes: args.create_device_nodes,
    })
}

/// What one run of `generate` makes, before anything is written: the
/// checked spec and its bytes, and what discovery found. `generate` makes
/// it once; `watch` again at every change.
#[derive(Debug)]
pub struct Generation {
    pub spec: Spec,
    pub bytes: Vec<u8>,
    pub found: Discovery,
}

/// `generate`'s work up to the bytes, for one set of flags: the flags are
/// checked once ([`Generator::new`]), the schema compiled at the first
/// [`Generator::once`] and kept.
pub struct Generator {
    host: HostArgs,
    args: GenerateArgs,
    settings: Settings,
    schema: Option<SchemaValidator>,
}

impl Generator {
    /// Check the flags (no I/O).
    pub fn new(host: &HostArgs, args: &GenerateArgs) -> Result<Self> {
        Ok(Self {
            settings: settings(host, args)?,
            host: host.clone(),
            args: args.clone(),
            schema: None,
        })
    }

    /// The output file, `None` for standard output.
    pub fn output(&self) -> Option<&Path> {
        match &self.settings.target {
            Target::File(path) => Some(path),
            Target::Stdout => None,
        }
    }

    pub fn format(&self) -> Format {
        self.settings.format
    }

    /// Discover, render, serialise and check: the bytes `generate` would
    /// write now, each warning given to `warn` as it is found. Nothing is
    /// changed on the host or on disk.
    pub fn once(&mut self, warn: &mut dyn FnMut(String)) -> Result<Generation> {
        let settings = &self.settings;
        let found = discover::discover(&self.host.discover_options(Reads::default()))?;
        // Compiled after discovery, into the memory discovery has just freed.
        if self.schema.is_none() {
            self.schema = Some(SchemaValidator::new()?);
        }
        let schema = self.schema.as_ref().expect("compiled above");
        for warning in found.warnings() {
            warn(warning);
        }
        found.require_host_nodes(settings.create_device_nodes)?;
        // The driver's files, at the loaded module's version.
        let mut render = settings.render.clone();
        render.driver = self
            .args
            .driver
            .edits(&self.host.root, &found.driver_version)?;
        match &render.driver {
            Some(driver) => {
                crate::info!(
                    "driver files of {}: {} (--no-driver-files leaves them out)",
                    driver.files.version,
                    driver.files.files.len()
                );
                for file in &driver.files.files {
                    crate::debug!("driver file {} ({:?})", file.path, file.kind);
                }
            }
            None => crate::info!("driver files left out (--no-driver-files)"),
        }
        // The bytes written (or compared) are the very bytes checked.
        let CheckedSpec { spec, bytes, .. } =
            render_checked(&found, &render, settings.format, schema)?;
        crate::info!(
            "spec {}: cdiVersion {}, {} device name(s), {} bytes, schema and rules checked",
            spec.kind,
            spec.cdi_version,
            spec.devices.len(),
            bytes.len()
        );
        if CdiVersion::parse(&spec.cdi_version).is_some_and(|v| v > CdiVersion::PODMAN_4_3_MAX) {
            warn(format!(
                "this spec needs cdiVersion {} (class \"{}\"), which runtimes built with CDI \
                 0.5 (Podman 4.3 in Debian 12) cannot read",
                spec.cdi_version, settings.render.class
            ));
        }
        if let Target::File(path) = &settings.target {
            for warning in same_folder_conflicts(path, &spec, schema) {
                warn(warning);
            }
        }
        Ok(Generation { spec, bytes, found })
    }

    fn schema(&self) -> &SchemaValidator {
        self.schema.as_ref().expect("once() compiles the schema")
    }
}

pub fn run(host: &HostArgs, args: &GenerateArgs) -> Result<ExitCode> {
    let mut generator = Generator::new(host, args)?;
    let Generation { spec, bytes, found } =
        generator.once(&mut |warning| eprintln!("mig-cdi-gen: warning: {warning}"))?;
    let settings = &generator.settings;
    let schema = generator.schema();
    let to_create = found.require_host_nodes(settings.create_device_nodes)?;
    // Every check has passed: only now is the host changed, and only by
    // creating the missing capability nodes that were asked for (none
    // with --check).
    let create_nodes = || -> Result<()> {
        for path in mknod::create_missing(&to_create)? {
            eprintln!("mig-cdi-gen: created {}", path.display());
        }
        Ok(())
    };
    match (&settings.target, settings.check) {
        (Target::File(path), true) => check(path, &spec, &bytes, settings.format, schema),
        (Target::File(path), false) => {
            // The temporary file first: an output that cannot be written
            // fails before any node is created.
            let file = AtomicFile::create(path)?;
            create_nodes()?;
            commit(file, &bytes)?;
            eprintln!("mig-cdi-gen: {}", wrote(path, &spec, &found));
            Ok(ExitCode::SUCCESS)
        }
        (Target::Stdout, _) => {
            create_nodes()?;
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .and_then(|()| out.flush())
                .context("cannot write to standard output")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Write `bytes` into `file` and put it in place, saying which temporary
/// files of interrupted writes it removed: what `generate` and `watch` do
/// with every spec they write.
pub(crate) fn commit(mut file: AtomicFile, bytes: &[u8]) -> Result<()> {
    file.write_all(bytes)?;
    let written = file.commit()?;
    for leftover in &written.leftovers_removed {
        eprintln!(
            "mig-cdi-gen: removed {}, left by an interrupted write",
            leftover.display()
        );
    }
    Ok(())
}

/// `wrote FILE (kind, cdiVersion, N device names for M devices)`.
pub(crate) fn wrote(path: &Path, spec: &Spec, found: &Discovery) -> String {
    format!(
        "wrote {} ({}, cdiVersion {}, {} device names for {} devices)",
        path.display(),
        spec.kind,
        spec.cdi_version,
        spec.devices.len(),
        found.inventory.devices.len()
    )
}

/// Other spec files in the output's folder that define some of the same
/// devices (NVIDIA's own generator writes `nvidia.com/gpu` too): runtimes
/// refuse a device defined twice in one folder. The file being replaced
/// does not count; files that are not specs are left out.
fn same_folder_conflicts(path: &Path, spec: &Spec, schema: &SchemaValidator) -> Vec<String> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Vec::new();
    };
    let catalog = Catalog::load(&[dir.to_path_buf()], |file| {
        if file.file_name() == path.file_name() {
            return Ok(Vec::new());
        }
        let bytes = fsread::read(file, fsread::MAX_SPEC_BYTES).map_err(|e| e.reason())?;
        let other = cdi::check_document(&bytes, Format::from_path(file), schema)
            .spec
            .ok_or_else(|| "not a CDI spec".to_string())?;
        let kind = other.kind;
        Ok(other
            .devices
            .into_iter()
            .map(|d| (kind.clone(), d.name, ()))
            .collect())
    });
    // Every other definition in the folder, by file, in our device order.
    let mut shared: BTreeMap<PathBuf, Vec<&str>> = BTreeMap::new();
    for device in &spec.devices {
        let files = match catalog.get(&spec.kind, &device.name) {
            Pick::None => continue,
            Pick::One { chosen, .. } => vec![chosen.file],
            Pick::Conflict { files } => files,
        };
        for file in files {
            shared.entry(file).or_default().push(&device.name);
        }
    }
    shared
        .into_iter()
        .map(|(file, names)| {
            format!(
                "{} also defines {}={}{}: runtimes refuse a device defined twice in one \
                 folder; remove one of the files or choose another --vendor/--class",
                file.display(),
                spec.kind,
                names[0],
                match names.len() {
                    1 => String::new(),
                    n => format!(" and {} more", n - 1),
                }
            )
        })
        .collect()
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
    // Regular files only, never more than a spec can be: a FIFO or
    // /dev/zero at the path is an error, not a hang or an endless read.
    let old = match fsread::read_if_exists(path, fsread::MAX_SPEC_BYTES) {
        Ok(Some(old)) => old,
        Ok(None) => {
            println!(
                "{}: missing; generate would write {} device names",
                path.display(),
                spec.devices.len()
            );
            return Ok(ExitCode::from(EXIT_DRIFT));
        }
        // The message names the path and the reason; no cause to chain.
        Err(e) => bail!("{e}"),
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
