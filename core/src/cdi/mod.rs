//! Container Device Interface specs: the model, the rules, and the pure
//! rendering of an [`Inventory`](crate::nodes::Inventory) into a spec.
//!
//! A spec is valid when it passes both the official JSON schema
//! ([`schema`]) and the rules the schema does not express ([`rules`]:
//! names, versions, edits, unknown fields). [`check_document`] runs both on
//! any document, ours or another vendor's; the generator runs it on its own
//! output before writing anything.

pub mod diff;
pub mod folders;
pub mod format;
pub mod render;
pub mod rules;
#[cfg(feature = "schema")]
pub mod schema;
pub mod spec;
pub mod version;
pub mod view;

#[cfg(feature = "schema")]
use serde::Deserialize;
use serde::Serialize;
#[cfg(feature = "schema")]
use serde_json::Value;

pub use format::Format;
pub use render::{render, NameStrategy, RenderOptions};
pub use rules::{Problem, RuleKind};
#[cfg(feature = "schema")]
pub use schema::SchemaValidator;
pub use spec::Spec;
pub use version::{min_version, CdiVersion};

/// Something worth saying about a valid spec that is not an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    pub message: String,
}

/// The outcome of checking one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The spec, when the document could be read as one.
    pub spec: Option<Spec>,
    /// Every broken rule, in the order: syntax, schema, unknown fields,
    /// then the spec rules.
    pub problems: Vec<Problem>,
    /// Advice for a valid spec (a newer version than needed, one that
    /// older runtimes cannot read).
    pub notes: Vec<String>,
}

impl Checked {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Check a document already read as a JSON value.
#[cfg(feature = "schema")]
pub fn check_value(document: &Value, schema: &SchemaValidator) -> Checked {
    let mut problems = schema.validate(document);
    problems.extend(rules::unknown_fields(document));
    if let Some(number) = document.get("cdiVersion").filter(|v| v.is_number()) {
        problems.push(Problem::new(
            RuleKind::Version,
            "cdiVersion",
            format!(
                "{number} is a number (unquoted in YAML?); write the version as a quoted string \
                 with three parts, e.g. \"0.5.0\""
            ),
        ));
    }
    // Rules are still worth checking when a scalar has the wrong type: read
    // a copy with numbers and booleans in the name fields turned into text.
    // Read in place (a `&Value` deserializes without a copy of the whole
    // document; the copy cost ~6 M instructions on a 32-GPU spec).
    let parsed = Spec::deserialize(document)
        .or_else(|err| serde_json::from_value::<Spec>(stringify_names(document)).map_err(|_| err));
    let spec = match parsed {
        Ok(spec) => Some(spec),
        Err(err) => {
            // The schema usually said why already; say it once more only
            // when it did not.
            if problems.iter().all(|p| p.rule != RuleKind::Schema) {
                problems.push(Problem::new(
                    RuleKind::Syntax,
                    "",
                    format!("not a CDI spec: {err}"),
                ));
            }
            None
        }
    };
    let mut notes = Vec::new();
    if let Some(spec) = &spec {
        problems.extend(rules::check_spec(spec));
        if let Some(declared) = CdiVersion::parse(&spec.cdi_version) {
            let needed = min_version(spec);
            if declared > needed {
                notes.push(format!(
                    "declares cdiVersion {declared} but needs only {needed}: declaring {needed} \
                     lets older runtimes read it"
                ));
            }
            if declared > CdiVersion::PODMAN_4_3_MAX {
                notes.push(format!(
                    "cdiVersion {declared} is newer than runtimes built with CDI 0.5 read (Podman \
                     4.3 in Debian 12 says only \"unresolvable CDI devices\")"
                ));
            }
        }
    }
    Checked {
        spec,
        problems,
        notes,
    }
}

#[cfg(feature = "schema")]
/// `document` with scalar `cdiVersion`, `kind` and device `name` values
/// as strings, for checking the rules of an otherwise readable spec.
fn stringify_names(document: &Value) -> Value {
    fn text(value: &mut Value) {
        if matches!(value, Value::Number(_) | Value::Bool(_)) {
            *value = Value::String(value.to_string());
        }
    }
    let mut copy = document.clone();
    if let Some(object) = copy.as_object_mut() {
        for field in ["cdiVersion", "kind"] {
            if let Some(value) = object.get_mut(field) {
                text(value);
            }
        }
        if let Some(devices) = object.get_mut("devices").and_then(Value::as_array_mut) {
            for name in devices.iter_mut().filter_map(|d| d.get_mut("name")) {
                text(name);
            }
        }
    }
    copy
}

/// Check the bytes of a spec file.
#[cfg(feature = "schema")]
pub fn check_document(bytes: &[u8], format: Format, schema: &SchemaValidator) -> Checked {
    match format::parse_value(bytes, format) {
        Ok(value) => check_value(&value, schema),
        Err(err) => Checked {
            spec: None,
            problems: vec![Problem::new(RuleKind::Syntax, "", err.to_string())],
            notes: Vec::new(),
        },
    }
}
