//! The embedded schema is the official one, and the official test data
//! passes (good/) and fails (bad/) as it should.

use std::path::{Path, PathBuf};

use mig_cdi_core::cdi::{self, schema, Format, SchemaValidator};
use mig_cdi_testkit::paths::shared_dir;

fn shared_schema_dir() -> Option<PathBuf> {
    let dir = shared_dir().join("cdi-schema");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent", dir.display());
        None
    }
}

#[test]
fn embedded_schema_is_byte_identical_to_shared() {
    let Some(dir) = shared_schema_dir() else {
        return;
    };
    for (name, embedded) in [
        ("schema.json", schema::SCHEMA_JSON),
        ("defs.json", schema::DEFS_JSON),
    ] {
        let shared = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(
            shared == embedded,
            "core/src/cdi/schema/{name} differs from shared/cdi-schema/{name}: copy it again"
        );
    }
}

fn check_file(path: &Path) -> cdi::Checked {
    let schema = SchemaValidator::new().unwrap();
    let bytes = std::fs::read(path).unwrap();
    cdi::check_document(&bytes, Format::from_path(path), &schema)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no test data in {}", dir.display());
    files
}

#[test]
fn official_good_specs_pass() {
    let Some(dir) = shared_schema_dir() else {
        return;
    };
    for path in files(&dir.join("testdata/good")) {
        let checked = check_file(&path);
        assert!(
            checked.is_valid(),
            "{}: {:#?}",
            path.display(),
            checked.problems
        );
    }
}

#[test]
fn official_bad_specs_fail_with_reasons() {
    let Some(dir) = shared_schema_dir() else {
        return;
    };
    for path in files(&dir.join("testdata/bad")) {
        let checked = check_file(&path);
        assert!(!checked.is_valid(), "{} passed", path.display());
        for problem in &checked.problems {
            assert!(!problem.message.is_empty());
        }
        eprintln!("{}: {:?}", path.display(), checked.problems);
    }
}
