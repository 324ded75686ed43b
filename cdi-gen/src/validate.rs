//! `mig-cdi-gen validate`: check any CDI spec file, ours or another
//! vendor's, against the official schema and the CDI name, version and
//! edit rules, and explain every failure; optionally resolve device names
//! the way a runtime would, to explain "unresolvable CDI devices".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use mig_cdi_core::cdi::folders::{self, Definition, Pick};
use mig_cdi_core::cdi::{self, rules, Format, Problem, SchemaValidator};
use mig_cdi_core::fsread;
use serde::Serialize;

use crate::exit::EXIT_ERROR;

#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Without FILE, checks every *.json and *.yaml spec directly in the folders runtimes read \
(/etc/cdi, then /var/run/cdi, which wins when both define a device), like a runtime would.\n\n\
Examples:\n  \
mig-cdi-gen validate /etc/cdi/nvidia.com-gpu.json\n  \
mig-cdi-gen validate --device nvidia.com/gpu=0:1\n\n\
Exit status: 0 every file is valid (and every --device resolves), 2 otherwise.")]
pub struct ValidateArgs {
    /// Spec files to check (JSON, or YAML when named *.yaml / *.yml).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Folder to read specs from when no FILE is given, lowest priority
    /// first; repeat for several (default: /etc/cdi /var/run/cdi).
    #[arg(long = "spec-dir", value_name = "DIR")]
    pub spec_dirs: Vec<PathBuf>,
    /// Also check that this device (vendor/class=name) resolves to exactly
    /// one device of a valid spec among those checked; repeatable.
    #[arg(long = "device", value_name = "QUALIFIED_NAME")]
    pub devices: Vec<String>,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The outcome for one file.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FileResult {
    path: PathBuf,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cdi_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    devices: Option<usize>,
    problems: Vec<Problem>,
    notes: Vec<String>,
    /// Priority of the folder the file is in (higher wins).
    #[serde(skip)]
    priority: usize,
    #[serde(skip)]
    names: Vec<String>,
}

/// The outcome for one `--device`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DeviceResult {
    device: String,
    resolved: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<PathBuf>,
    message: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    valid: bool,
    files: Vec<FileResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    devices: Vec<DeviceResult>,
}

fn check_file(path: &Path, priority: usize, schema: &SchemaValidator) -> FileResult {
    // Regular files only, at most MAX_SPEC_BYTES: a FIFO, a device or a
    // link to /dev/zero among the files is one problem, not a hang.
    let checked = match fsread::read(path, fsread::MAX_SPEC_BYTES) {
        Ok(bytes) => cdi::check_document(&bytes, Format::from_path(path), schema),
        Err(e) => cdi::Checked {
            spec: None,
            problems: vec![Problem::new(
                rules::RuleKind::Syntax,
                "",
                format!("cannot read the file: {}", e.reason()),
            )],
            notes: Vec::new(),
        },
    };
    let spec = checked.spec.as_ref();
    FileResult {
        path: path.to_path_buf(),
        valid: checked.is_valid(),
        cdi_version: spec.map(|s| s.cdi_version.clone()),
        kind: spec.map(|s| s.kind.clone()),
        devices: spec.map(|s| s.devices.len()),
        names: spec
            .map(|s| {
                s.devices
                    .iter()
                    .map(|d| format!("{}={}", s.kind, d.name))
                    .collect()
            })
            .unwrap_or_default(),
        problems: checked.problems,
        notes: checked.notes,
        priority,
    }
}

/// Resolve `device` among the files, as a runtime would: the valid files
/// of the highest-priority folder that define it must be exactly one.
fn resolve(device: &str, files: &[FileResult]) -> DeviceResult {
    let result = |resolved, file: Option<&Path>, message: String| DeviceResult {
        device: device.to_string(),
        resolved,
        file: file.map(Path::to_path_buf),
        message,
    };
    let qualified = match rules::parse_qualified_name(device) {
        Ok(q) => q,
        Err(e) => return result(false, None, e),
    };
    let kind = format!("{}/{}", qualified.vendor, qualified.class);
    let defining: Vec<&FileResult> = files
        .iter()
        .filter(|f| f.names.iter().any(|n| n == device))
        .collect();
    // The valid definitions, by the priority and conflict rules runtimes
    // apply.
    let definitions = defining
        .iter()
        .filter(|f| f.valid)
        .map(|f| Definition {
            file: f.path.clone(),
            priority: f.priority,
            item: (),
        })
        .collect();
    match folders::pick(definitions) {
        Pick::None => {
            if let Some(invalid) = defining.first() {
                return result(
                    false,
                    Some(&invalid.path),
                    format!(
                        "defined only in {}, which is invalid (see above): runtimes refuse the whole \
                         file",
                        invalid.path.display()
                    ),
                );
            }
            let same_kind: Vec<&FileResult> = files
                .iter()
                .filter(|f| f.kind.as_deref() == Some(kind.as_str()))
                .collect();
            if same_kind.is_empty() {
                let kinds: BTreeMap<&str, ()> = files
                    .iter()
                    .filter_map(|f| f.kind.as_deref())
                    .map(|k| (k, ()))
                    .collect();
                return result(
                    false,
                    None,
                    format!(
                        "no spec checked has kind {kind} (kinds found: {}); generate one with \
                         `mig-cdi-gen generate --output /etc/cdi/{}-{}.json`",
                        if kinds.is_empty() {
                            "none".to_string()
                        } else {
                            kinds.keys().copied().collect::<Vec<_>>().join(", ")
                        },
                        qualified.vendor,
                        qualified.class
                    ),
                );
            }
            let mut known: Vec<&str> = Vec::new();
            for name in same_kind
                .iter()
                .flat_map(|f| f.names.iter())
                .filter_map(|n| n.split_once('=').map(|(_, name)| name))
            {
                if !known.contains(&name) {
                    known.push(name);
                }
            }
            result(
                false,
                None,
                format!(
                    "no device \"{}\" in {}; it has: {} (MIG index names shift when MIG is \
                     reconfigured: regenerate the spec, or use UUID names)",
                    qualified.name,
                    kind,
                    known.join(", ")
                ),
            )
        }
        Pick::Conflict { files } => {
            let paths: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            result(
                false,
                None,
                format!(
                    "defined by {} files of equal priority ({}): runtimes refuse an ambiguous \
                     device; remove all but one",
                    files.len(),
                    paths.join(", ")
                ),
            )
        }
        Pick::One { chosen, hidden } => {
            let message = if hidden > 0 {
                format!(
                    "resolves to {} ({} lower-priority definition(s) ignored)",
                    chosen.file.display(),
                    hidden
                )
            } else {
                format!("resolves to {}", chosen.file.display())
            };
            result(true, Some(&chosen.file), message)
        }
    }
}

pub fn run(args: &ValidateArgs) -> Result<ExitCode> {
    let schema = SchemaValidator::new()?;
    let mut inputs: Vec<(PathBuf, usize)> = Vec::new();
    if args.files.is_empty() {
        let dirs: Vec<PathBuf> = if args.spec_dirs.is_empty() {
            folders::default_spec_dirs()
        } else {
            args.spec_dirs.clone()
        };
        for (priority, dir) in dirs.iter().enumerate() {
            let files = folders::spec_files(dir)
                .with_context(|| format!("cannot list {}", dir.display()))?;
            inputs.extend(files.into_iter().map(|f| (f, priority)));
        }
        if inputs.is_empty() {
            let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            bail!(
                "no *.json or *.yaml spec file in {}: nothing to validate (generate one with \
                 `mig-cdi-gen generate --output /etc/cdi/nvidia.com-gpu.json`)",
                names.join(", ")
            );
        }
    } else {
        if !args.spec_dirs.is_empty() {
            bail!("give FILEs or --spec-dir, not both");
        }
        inputs = args.files.iter().map(|f| (f.clone(), 0)).collect();
    }
    let files: Vec<FileResult> = inputs
        .iter()
        .map(|(path, priority)| check_file(path, *priority, &schema))
        .collect();
    let devices: Vec<DeviceResult> = args.devices.iter().map(|d| resolve(d, &files)).collect();
    let report = Report {
        valid: files.iter().all(|f| f.valid) && devices.iter().all(|d| d.resolved),
        files,
        devices,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report));
    }
    Ok(if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_ERROR)
    })
}

fn text(report: &Report) -> String {
    let mut out = String::new();
    for file in &report.files {
        let path = file.path.display();
        if file.valid {
            let n = file.devices.unwrap_or(0);
            out.push_str(&format!(
                "{path}: ok (cdiVersion {}, kind {}, {n} device{})\n",
                file.cdi_version.as_deref().unwrap_or("?"),
                file.kind.as_deref().unwrap_or("?"),
                if n == 1 { "" } else { "s" }
            ));
        } else {
            let n = file.problems.len();
            out.push_str(&format!(
                "{path}: INVALID, {n} problem{}\n",
                if n == 1 { "" } else { "s" }
            ));
            for problem in &file.problems {
                out.push_str(&format!("  {problem}\n"));
            }
        }
        for note in &file.notes {
            out.push_str(&format!("  note: {note}\n"));
        }
    }
    for device in &report.devices {
        let verdict = if device.resolved {
            "ok"
        } else {
            "UNRESOLVABLE"
        };
        out.push_str(&format!(
            "{}: {verdict}: {}\n",
            device.device, device.message
        ));
    }
    out
}
