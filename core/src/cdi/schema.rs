//! The official CDI JSON schema, embedded, and a validator for it.
//!
//! `schema/schema.json` refers to `schema/defs.json` by relative name; both
//! are compiled in and registered under fixed names, and the compiler is
//! given a loader that refuses every URL, so validation never reads a file
//! or the network.
//!
//! The names are under `https://json-schema.org/`, on purpose. boon checks
//! every schema document it loads against its draft's metaschema — except
//! documents hosted there, the metaschemas themselves — and the first such
//! check compiles the metaschemas of all five drafts it knows: ~12.7 M
//! instructions and ~230 page faults, half of a whole `generate` run on a
//! one-GPU node, spent proving a constant. The embedded schema is checked
//! against the draft-07 metaschema by a test instead
//! (`embedded_schema_is_valid_draft_07`, which compiles it under `file:`
//! names, where boon does check it); every document is still validated
//! against the compiled CDI schema, as before.

use serde_json::Value;

use super::rules::{Problem, RuleKind};

/// `schema.json` of the CDI project, byte for byte.
pub const SCHEMA_JSON: &str = include_str!("schema/schema.json");
/// `defs.json` of the CDI project, byte for byte.
pub const DEFS_JSON: &str = include_str!("schema/defs.json");

/// Where the compiled schema says it lives (in keyword locations of boon's
/// own errors); nothing is ever loaded from there.
const BASE_URL: &str = "https://json-schema.org/mig-cdi/embedded/cdi/";

/// Why the embedded schema could not be compiled (a build defect).
#[derive(Debug, thiserror::Error)]
#[error("the embedded CDI schema does not compile: {0}")]
pub struct SchemaError(String);

/// The compiled schema.
pub struct SchemaValidator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

struct NoLoader;

impl boon::UrlLoader for NoLoader {
    fn load(&self, url: &str) -> Result<Value, Box<dyn std::error::Error>> {
        Err(format!("refusing to load {url}: the CDI schema is embedded").into())
    }
}

impl SchemaValidator {
    /// Compile the embedded schema (without boon's metaschema check of it:
    /// see the module documentation).
    pub fn new() -> Result<Self, SchemaError> {
        Self::compile_under(BASE_URL)
    }

    /// Compile the embedded schema with its files named under `base`.
    fn compile_under(base: &str) -> Result<Self, SchemaError> {
        let parse = |text: &str| {
            serde_json::from_str::<Value>(text).map_err(|e| SchemaError(e.to_string()))
        };
        let (schema_url, defs_url) = (format!("{base}schema.json"), format!("{base}defs.json"));
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V7);
        compiler.use_loader(Box::new(NoLoader));
        compiler
            .add_resource(&defs_url, parse(DEFS_JSON)?)
            .map_err(|e| SchemaError(e.to_string()))?;
        compiler
            .add_resource(&schema_url, parse(SCHEMA_JSON)?)
            .map_err(|e| SchemaError(e.to_string()))?;
        let mut schemas = boon::Schemas::new();
        let index = compiler
            .compile(&schema_url, &mut schemas)
            .map_err(|e| SchemaError(format!("{e:#}")))?;
        Ok(Self { schemas, index })
    }

    /// Every place where `document` breaks the schema; empty when valid.
    pub fn validate(&self, document: &Value) -> Vec<Problem> {
        let Err(error) = self.schemas.validate(document, self.index) else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        let output = error.basic_output();
        match &output.error {
            boon::OutputError::Leaf(kind) => problems.push(problem(
                &output.instance_location.to_string(),
                &output.keyword_location,
                &kind.to_string(),
            )),
            boon::OutputError::Branch(units) => {
                for unit in units {
                    if let boon::OutputError::Leaf(kind) = &unit.error {
                        // Group errors only say "validation failed" around
                        // their causes, which are listed on their own.
                        if matches!(
                            kind,
                            boon::ErrorKind::Group | boon::ErrorKind::Reference { .. }
                        ) {
                            continue;
                        }
                        problems.push(problem(
                            &unit.instance_location.to_string(),
                            &unit.keyword_location,
                            &kind.to_string(),
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            problems.push(problem("", "", &error.to_string()));
        }
        problems
    }
}

fn problem(instance_pointer: &str, keyword_location: &str, message: &str) -> Problem {
    let message = if keyword_location.is_empty() {
        message.to_string()
    } else {
        format!("{message} (schema {keyword_location})")
    };
    Problem::new(RuleKind::Schema, pointer_to_path(instance_pointer), message)
}

/// `/devices/0/containerEdits` -> `devices[0].containerEdits`.
pub(crate) fn pointer_to_path(pointer: &str) -> String {
    let mut path = String::new();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{token}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&token);
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_paths() {
        assert_eq!(pointer_to_path(""), "");
        assert_eq!(
            pointer_to_path("/devices/0/containerEdits"),
            "devices[0].containerEdits"
        );
        assert_eq!(pointer_to_path("/a~1b"), "a/b");
    }

    /// What `new` leaves out: boon's check of the embedded schema against
    /// the draft-07 metaschema (done for documents not under
    /// json-schema.org), and that a schema breaking it would be caught.
    #[test]
    fn embedded_schema_is_valid_draft_07() {
        let checked = SchemaValidator::compile_under("file:///cdi/").unwrap();
        let fast = SchemaValidator::new().unwrap();
        for document in [
            serde_json::json!({"cdiVersion": "0.3.0", "kind": "a/b", "devices": []}),
            serde_json::json!({"cdiVersion": 5, "kind": "a/b", "devices": [
                {"name": "x", "containerEdits": {"deviceNodes": [{"major": 1}]}}]}),
            serde_json::json!({"cdiVersion": "0.6.0", "kind": "a/b", "annotations": {"k": 1},
                "devices": [{"name": "x", "containerEdits": {"env": ["A=1"]}}]}),
        ] {
            assert_eq!(checked.validate(&document), fast.validate(&document));
        }
        // The metaschema check is real: a broken schema under file: fails.
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V7);
        compiler.use_loader(Box::new(NoLoader));
        compiler
            .add_resource("file:///bad.json", serde_json::json!({"type": 5}))
            .unwrap();
        assert!(compiler
            .compile("file:///bad.json", &mut boon::Schemas::new())
            .is_err());
    }

    #[test]
    fn embedded_schema_compiles_and_checks() {
        let schema = SchemaValidator::new().unwrap();
        assert!(schema
            .validate(&serde_json::json!({"cdiVersion": "0.3.0", "kind": "a/b", "devices": []}))
            .is_empty());
        let problems = schema.validate(&serde_json::json!({
            "cdiVersion": 5, "kind": "a/b",
            "devices": [{"name": "x", "containerEdits": {"deviceNodes": [{"major": 1}]}}]
        }));
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{text:#?}");
        assert!(text.iter().any(|t| t.contains("cdiVersion")), "{text:#?}");
        assert!(
            text.iter()
                .any(|t| t.contains("devices[0].containerEdits.deviceNodes[0]")
                    && t.contains("path")),
            "{text:#?}"
        );
    }
}
