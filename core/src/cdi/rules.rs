//! The CDI rules the JSON schema does not express: names, versions and
//! edits, as the CDI reference library and the runtimes built on it apply
//! them.
//!
//! Each check returns every [`Problem`] it finds, each saying where it is
//! and what to do, instead of stopping at the first: `validate` shows a
//! user the whole list at once.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::spec::{known_fields, ContainerEdits, Spec};
use super::version::{self, CdiVersion};

/// Which kind of rule a problem breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleKind {
    /// The file is not JSON/YAML or not shaped like a CDI spec.
    Syntax,
    /// The official JSON schema.
    Schema,
    /// A field no CDI version defines.
    UnknownField,
    /// `cdiVersion` unknown, or too low (or too high) for a feature used.
    Version,
    /// Kind, vendor, class or device name rules.
    Name,
    /// Spec structure: devices present, unique, with edits.
    Structure,
    /// Container edits: env, device nodes, hooks, mounts.
    Edit,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub rule: RuleKind,
    /// Where in the document (`devices[2].name`); empty for the whole file.
    pub at: String,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
}

impl Problem {
    pub fn new(rule: RuleKind, at: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            rule,
            at: at.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = match self.rule {
            RuleKind::Syntax => "syntax",
            RuleKind::Schema => "schema",
            RuleKind::UnknownField => "unknown field",
            RuleKind::Version => "version",
            RuleKind::Name => "name",
            RuleKind::Structure => "structure",
            RuleKind::Edit => "edit",
        };
        if self.at.is_empty() {
            write!(f, "[{rule}] {}", self.message)
        } else {
            write!(f, "[{rule}] {}: {}", self.at, self.message)
        }
    }
}

fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// Vendor and class: a letter first, a letter or digit last, letters,
/// digits, `_`, `-` and `.` between.
fn check_vendor_or_class(what: &str, name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err(format!("empty {what}"));
    };
    if !first.is_ascii_alphabetic() {
        return Err(format!("{what} \"{name}\" must start with a letter"));
    }
    if let Some(bad) = name
        .chars()
        .find(|&c| !(is_alnum(c) || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "{what} \"{name}\" contains '{bad}': only letters, digits, '_', '-' and '.' are allowed"
        ));
    }
    if !name.ends_with(is_alnum) {
        return Err(format!("{what} \"{name}\" must end with a letter or digit"));
    }
    Ok(())
}

/// Check a vendor name (`nvidia.com`).
pub fn check_vendor(vendor: &str) -> Result<(), String> {
    check_vendor_or_class("vendor", vendor)
}

/// Check a class name (`gpu`). A dot is allowed but needs cdiVersion 0.6.0.
pub fn check_class(class: &str) -> Result<(), String> {
    check_vendor_or_class("class", class)
}

/// Check a kind (`vendor/class`) and split it.
pub fn parse_kind(kind: &str) -> Result<(&str, &str), String> {
    let Some((vendor, class)) = kind.split_once('/') else {
        return Err(format!(
            "kind \"{kind}\" must be vendor/class, e.g. nvidia.com/gpu"
        ));
    };
    if class.contains('/') {
        return Err(format!(
            "kind \"{kind}\" has more than one '/': it must be vendor/class"
        ));
    }
    check_vendor(vendor)?;
    check_class(class)?;
    Ok((vendor, class))
}

/// Check a device name: a letter or digit first and last; letters, digits,
/// `_`, `-`, `.` and `:` between.
pub fn check_device_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty device name".into());
    }
    if !name.starts_with(is_alnum) {
        return Err(format!(
            "device name \"{name}\" must start with a letter or digit"
        ));
    }
    if !name.ends_with(is_alnum) {
        return Err(format!(
            "device name \"{name}\" must end with a letter or digit"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|&c| !(is_alnum(c) || matches!(c, '_' | '-' | '.' | ':')))
    {
        return Err(format!(
            "device name \"{name}\" contains '{bad}': only letters, digits, '_', '-', '.' and ':' \
             are allowed"
        ));
    }
    Ok(())
}

/// A fully qualified device name, `vendor/class=name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualifiedName<'a> {
    pub vendor: &'a str,
    pub class: &'a str,
    pub name: &'a str,
}

/// Parse and check `vendor/class=name`.
pub fn parse_qualified_name(text: &str) -> Result<QualifiedName<'_>, String> {
    let Some((kind, name)) = text.split_once('=') else {
        return Err(format!(
            "\"{text}\" is not a qualified device name (vendor/class=name, e.g. nvidia.com/gpu=0:1)"
        ));
    };
    let (vendor, class) = parse_kind(kind)?;
    check_device_name(name)?;
    Ok(QualifiedName {
        vendor,
        class,
        name,
    })
}

const HOOK_NAMES: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

fn check_env(env: &[String], at: &str, problems: &mut Vec<Problem>) {
    for (i, entry) in env.iter().enumerate() {
        if entry.find('=').is_none_or(|i| i == 0) {
            problems.push(Problem::new(
                RuleKind::Edit,
                format!("{at}[{i}]"),
                format!("environment entry \"{entry}\" must be NAME=value"),
            ));
        }
    }
}

/// Check one set of container edits (the reference library's
/// `ContainerEdits.Validate`).
pub fn check_edits(edits: &ContainerEdits, at: &str, problems: &mut Vec<Problem>) {
    check_env(&edits.env, &format!("{at}.env"), problems);
    for (i, node) in edits.device_nodes.iter().enumerate() {
        let at = format!("{at}.deviceNodes[{i}]");
        if node.path.is_empty() {
            problems.push(Problem::new(RuleKind::Edit, &at, "empty device path"));
        }
        if let Some(t) = &node.node_type {
            if !matches!(t.as_str(), "" | "b" | "c" | "u" | "p") {
                problems.push(Problem::new(
                    RuleKind::Edit,
                    format!("{at}.type"),
                    format!("device type \"{t}\" is not one of b, c, u, p"),
                ));
            }
        }
        if let Some(p) = &node.permissions {
            if let Some(bad) = p.chars().find(|c| !matches!(c, 'r' | 'w' | 'm')) {
                problems.push(Problem::new(
                    RuleKind::Edit,
                    format!("{at}.permissions"),
                    format!("permissions \"{p}\" contain '{bad}': only r, w and m are allowed"),
                ));
            }
        }
    }
    for (i, hook) in edits.hooks.iter().enumerate() {
        let at = format!("{at}.hooks[{i}]");
        if !HOOK_NAMES.contains(&hook.hook_name.as_str()) {
            problems.push(Problem::new(
                RuleKind::Edit,
                format!("{at}.hookName"),
                format!(
                    "hook name \"{}\" is not one of {}",
                    hook.hook_name,
                    HOOK_NAMES.join(", ")
                ),
            ));
        }
        if hook.path.is_empty() {
            problems.push(Problem::new(
                RuleKind::Edit,
                format!("{at}.path"),
                "empty hook path",
            ));
        }
        check_env(&hook.env, &format!("{at}.env"), problems);
    }
    for (i, mount) in edits.mounts.iter().enumerate() {
        let at = format!("{at}.mounts[{i}]");
        if mount.host_path.is_empty() {
            problems.push(Problem::new(RuleKind::Edit, &at, "empty mount hostPath"));
        }
        if mount.container_path.is_empty() {
            problems.push(Problem::new(
                RuleKind::Edit,
                &at,
                "empty mount containerPath",
            ));
        }
    }
    if let Some(clos) = edits.intel_rdt.as_ref().and_then(|r| r.clos_id.as_ref()) {
        if clos == "." || clos == ".." || clos.contains('/') {
            problems.push(Problem::new(
                RuleKind::Edit,
                format!("{at}.intelRdt.closID"),
                format!("closID \"{clos}\" must be a plain file name"),
            ));
        }
    }
    for (i, net) in edits.net_devices.iter().flatten().enumerate() {
        let at = format!("{at}.netDevices[{i}]");
        for (field, value) in [
            ("hostInterfaceName", &net.host_interface_name),
            ("name", &net.name),
        ] {
            if value.is_empty()
                || value.len() > 15
                || value == "."
                || value == ".."
                || value.contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
            {
                problems.push(Problem::new(
                    RuleKind::Edit,
                    format!("{at}.{field}"),
                    format!("\"{value}\" is not a valid network interface name"),
                ));
            }
        }
    }
}

fn check_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    at: &str,
    problems: &mut Vec<Problem>,
) {
    for key in annotations.into_iter().flat_map(BTreeMap::keys) {
        let name = key.rsplit_once('/').map_or(key.as_str(), |(_, n)| n);
        let ok = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(is_alnum)
            && name.ends_with(is_alnum)
            && name
                .chars()
                .all(|c| is_alnum(c) || matches!(c, '-' | '_' | '.'));
        if !ok {
            problems.push(Problem::new(
                RuleKind::Name,
                format!("{at}.{key}"),
                format!(
                    "annotation key \"{key}\" is not a qualified name ([prefix/]name, name of at \
                     most 63 letters, digits, '-', '_', '.')"
                ),
            ));
        }
    }
}

/// Every rule a parsed spec breaks: version, names, structure and edits.
pub fn check_spec(spec: &Spec) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_version(spec, &mut problems);
    if let Err(message) = parse_kind(&spec.kind) {
        problems.push(Problem::new(RuleKind::Name, "kind", message));
    }
    check_annotations(spec.annotations.as_ref(), "annotations", &mut problems);
    if spec.devices.is_empty() {
        problems.push(Problem::new(
            RuleKind::Structure,
            "devices",
            "a spec must define at least one device",
        ));
    }
    let mut first_index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, device) in spec.devices.iter().enumerate() {
        let at = format!("devices[{i}]");
        if let Err(message) = check_device_name(&device.name) {
            problems.push(Problem::new(RuleKind::Name, format!("{at}.name"), message));
        }
        if let Some(first) = first_index.insert(&device.name, i) {
            first_index.insert(&device.name, first);
            problems.push(Problem::new(
                RuleKind::Structure,
                format!("{at}.name"),
                format!(
                    "device name \"{}\" is already used by devices[{first}]: names must be unique \
                     (runtimes refuse the whole spec)",
                    device.name
                ),
            ));
        }
        check_annotations(
            device.annotations.as_ref(),
            &format!("{at}.annotations"),
            &mut problems,
        );
        if device.container_edits.is_empty() {
            problems.push(Problem::new(
                RuleKind::Structure,
                format!("{at}.containerEdits"),
                format!("device \"{}\" has no container edits", device.name),
            ));
        }
        check_edits(
            &device.container_edits,
            &format!("{at}.containerEdits"),
            &mut problems,
        );
    }
    check_edits(&spec.container_edits, "containerEdits", &mut problems);
    problems
}

fn check_version(spec: &Spec, problems: &mut Vec<Problem>) {
    let Some(declared) = CdiVersion::parse(&spec.cdi_version) else {
        let known: Vec<&str> = CdiVersion::ALL.iter().map(|v| v.as_str()).collect();
        problems.push(Problem::new(
            RuleKind::Version,
            "cdiVersion",
            format!(
                "unknown cdiVersion \"{}\"; known versions: {} (declare the lowest one the spec \
                 needs: {})",
                spec.cdi_version,
                known.join(", "),
                version::min_version(spec)
            ),
        ));
        return;
    };
    for feature in version::features(spec) {
        if feature.allowed_in(declared) {
            continue;
        }
        let message = match feature.until {
            Some(until) if declared >= until => format!(
                "{} is not part of cdiVersion {declared} (dropped in {until}): remove it or \
                 declare an earlier version",
                feature.what
            ),
            _ => format!(
                "{}: needs cdiVersion {} or later, but the spec declares {declared} (declare \
                 {})",
                feature.what,
                feature.since,
                version::min_version(spec)
            ),
        };
        problems.push(Problem::new(RuleKind::Version, feature.at, message));
    }
}

/// Fields of the document that no CDI version defines. Runtimes parse
/// strictly and reject the whole file for one of them.
pub fn unknown_fields(document: &Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    walk_object(document, "", known_fields::SPEC, &mut problems);
    if let Some(devices) = document.get("devices").and_then(Value::as_array) {
        for (i, device) in devices.iter().enumerate() {
            let at = format!("devices[{i}]");
            walk_object(device, &at, known_fields::DEVICE, &mut problems);
            if let Some(edits) = device.get("containerEdits") {
                walk_edits(edits, &format!("{at}.containerEdits"), &mut problems);
            }
        }
    }
    if let Some(edits) = document.get("containerEdits") {
        walk_edits(edits, "containerEdits", &mut problems);
    }
    problems
}

fn walk_edits(edits: &Value, at: &str, problems: &mut Vec<Problem>) {
    walk_object(edits, at, known_fields::EDITS, problems);
    for (field, known) in [
        ("deviceNodes", known_fields::DEVICE_NODE),
        ("mounts", known_fields::MOUNT),
        ("hooks", known_fields::HOOK),
        ("netDevices", known_fields::NET_DEVICE),
    ] {
        if let Some(items) = edits.get(field).and_then(Value::as_array) {
            for (i, item) in items.iter().enumerate() {
                walk_object(item, &format!("{at}.{field}[{i}]"), known, problems);
            }
        }
    }
    if let Some(rdt) = edits.get("intelRdt") {
        walk_object(
            rdt,
            &format!("{at}.intelRdt"),
            known_fields::INTEL_RDT,
            problems,
        );
    }
}

fn walk_object(value: &Value, at: &str, known: &[&str], problems: &mut Vec<Problem>) {
    let Some(object) = value.as_object() else {
        return;
    };
    for key in object.keys() {
        if !known.contains(&key.as_str()) {
            let place = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            problems.push(Problem::new(
                RuleKind::UnknownField,
                place,
                format!(
                    "no CDI version defines \"{key}\" here (known: {}); runtimes reject the whole \
                     file",
                    known.join(", ")
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names() {
        for ok in ["0", "0:1", "gpu0", "mig0:1", "MIG-1a2b-3c", "a.b_c-d", "x"] {
            assert_eq!(check_device_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", ":0", "0:", "a/b", "a b", "-a", "a_", "é"] {
            assert!(check_device_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(parse_kind("nvidia.com/gpu"), Ok(("nvidia.com", "gpu")));
        assert_eq!(parse_kind("a/b.c"), Ok(("a", "b.c")));
        for bad in [
            "nvidia.com",
            "nvidia.com/gpu/x",
            "1vendor/gpu",
            "v/",
            "/c",
            "v/c-",
            "v:x/c",
        ] {
            assert!(parse_kind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn qualified_names() {
        let q = parse_qualified_name("nvidia.com/gpu=0:1").unwrap();
        assert_eq!((q.vendor, q.class, q.name), ("nvidia.com", "gpu", "0:1"));
        assert!(parse_qualified_name("0:1").is_err());
        assert!(parse_qualified_name("nvidia.com/gpu=").is_err());
    }
}
