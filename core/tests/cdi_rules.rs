//! The rules beyond the schema, on hand-written specs: each failure says
//! where it is and what is wrong.

use mig_cdi_core::cdi::{self, CdiVersion, Format, RuleKind, SchemaValidator};
use serde_json::json;

fn problems(document: serde_json::Value) -> Vec<String> {
    let schema = SchemaValidator::new().unwrap();
    let checked = cdi::check_value(&document, &schema);
    checked.problems.iter().map(ToString::to_string).collect()
}

fn device(name: &str) -> serde_json::Value {
    json!({"name": name, "containerEdits": {"deviceNodes": [{"path": "/dev/x"}]}})
}

#[test]
fn digit_names_need_0_5_0() {
    let found = problems(json!({"cdiVersion": "0.3.0", "kind": "nvidia.com/gpu",
                                "devices": [device("gpu0"), device("0:1")]}));
    assert_eq!(
        found,
        [
            "[version] devices[1].name: device name \"0:1\" starts with a digit: needs cdiVersion \
          0.5.0 or later, but the spec declares 0.3.0 (declare 0.5.0)"
        ]
    );
}

#[test]
fn host_path_needs_0_5_0_and_annotations_0_6_0() {
    let found = problems(json!({"cdiVersion": "0.5.0", "kind": "v.com/c",
        "annotations": {"a": "b"},
        "devices": [{"name": "d", "containerEdits": {"deviceNodes": [{"path": "/dev/x", "hostPath": "/h/dev/x"}]}}]}));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].starts_with("[version] annotations: spec annotations: needs cdiVersion 0.6.0"));
    let found = problems(json!({"cdiVersion": "0.4.0", "kind": "v.com/c",
        "devices": [{"name": "d", "containerEdits": {"deviceNodes": [{"path": "/dev/x", "hostPath": ""}]}}]}));
    assert!(
        found[0].contains("devices[0].containerEdits.deviceNodes[0].hostPath"),
        "{found:#?}"
    );
}

#[test]
fn unknown_and_dropped_versions() {
    let found = problems(json!({"cdiVersion": "0.5", "kind": "v.com/c", "devices": [device("0")]}));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("unknown cdiVersion \"0.5\""),
        "{found:#?}"
    );
    assert!(
        found[0].contains("lowest one the spec needs: 0.5.0"),
        "{found:#?}"
    );
    let found = problems(
        json!({"cdiVersion": "1.1.0", "kind": "v.com/c", "devices": [device("d")],
        "containerEdits": {"intelRdt": {"enableCMT": true}}}),
    );
    assert!(found[0].contains("dropped in 1.1.0"), "{found:#?}");
}

#[test]
fn names_kinds_duplicates_and_empty_devices() {
    let found = problems(json!({"cdiVersion": "0.5.0", "kind": "nvidia.com",
        "devices": [device("a b"), device("x"), device("x"), {"name": "e", "containerEdits": {}}]}));
    let joined = found.join("\n");
    assert!(
        joined.contains("[name] kind: kind \"nvidia.com\" must be vendor/class"),
        "{joined}"
    );
    assert!(
        joined.contains("[name] devices[0].name: device name \"a b\" contains ' '"),
        "{joined}"
    );
    assert!(
        joined.contains(
            "[structure] devices[2].name: device name \"x\" is already used by devices[1]"
        ),
        "{joined}"
    );
    assert!(
        joined
            .contains("[structure] devices[3].containerEdits: device \"e\" has no container edits"),
        "{joined}"
    );
    let found = problems(json!({"cdiVersion": "0.3.0", "kind": "v.com/c", "devices": []}));
    assert_eq!(
        found,
        ["[structure] devices: a spec must define at least one device"]
    );
}

#[test]
fn edits_are_checked() {
    let found = problems(
        json!({"cdiVersion": "0.3.0", "kind": "v.com/c", "devices": [{
        "name": "d", "containerEdits": {
            "env": ["NOEQUALS", "=x"],
            "deviceNodes": [{"path": "/dev/x", "type": "z", "permissions": "rwx"}],
            "hooks": [{"hookName": "preStart", "path": "/bin/h"}],
            "mounts": [{"hostPath": "", "containerPath": "/c"}]}}]}),
    );
    let joined = found.join("\n");
    for expected in [
        "devices[0].containerEdits.env[0]: environment entry \"NOEQUALS\" must be NAME=value",
        "devices[0].containerEdits.env[1]",
        "devices[0].containerEdits.deviceNodes[0].type: device type \"z\" is not one of b, c, u, p",
        "permissions \"rwx\" contain 'x'",
        "hook name \"preStart\" is not one of prestart",
        "devices[0].containerEdits.mounts[0]: empty mount hostPath",
    ] {
        assert!(
            joined.contains(expected),
            "missing {expected:?} in\n{joined}"
        );
    }
}

#[test]
fn unknown_fields_are_named_with_their_place() {
    let found = problems(json!({"cdiVersion": "0.3.0", "kind": "v.com/c", "extra": 1,
        "devices": [{"name": "d", "containerEdits": {"deviceNodes": [{"path": "/dev/x", "mode": 1}]}}]}));
    let joined = found.join("\n");
    assert!(
        joined.contains("[unknown field] extra: no CDI version defines \"extra\" here"),
        "{joined}"
    );
    assert!(
        joined.contains("[unknown field] devices[0].containerEdits.deviceNodes[0].mode"),
        "{joined}"
    );
}

#[test]
fn schema_failures_say_where() {
    let found = problems(json!({"cdiVersion": "0.3.0", "kind": "v.com/c",
        "devices": [{"name": 7, "containerEdits": {"deviceNodes": [{"major": "195"}]}}]}));
    let joined = found.join("\n");
    assert!(joined.contains("[schema] devices[0].name:"), "{joined}");
    assert!(
        joined.contains("[schema] devices[0].containerEdits.deviceNodes[0]:"),
        "{joined}"
    );
    assert!(joined.contains("(schema /"), "{joined}");
}

#[test]
fn syntax_errors_are_reported_not_panicked() {
    let schema = SchemaValidator::new().unwrap();
    for (bytes, format) in [
        (&b"{"[..], Format::Json),
        (b"", Format::Json),
        (b"", Format::Yaml),
        (b"devices: [", Format::Yaml),
        (b"- 1\n- 2\n", Format::Yaml),
    ] {
        let checked = cdi::check_document(bytes, format, &schema);
        assert!(!checked.is_valid());
        assert!(
            checked
                .problems
                .iter()
                .any(|p| matches!(p.rule, RuleKind::Syntax | RuleKind::Schema)),
            "{:?}",
            checked.problems
        );
    }
}

#[test]
fn notes_for_valid_specs_newer_than_needed() {
    let schema = SchemaValidator::new().unwrap();
    let checked = cdi::check_value(
        &json!({"cdiVersion": "0.6.0", "kind": "v.com/c", "devices": [device("d")]}),
        &schema,
    );
    assert!(checked.is_valid());
    assert_eq!(checked.notes.len(), 2, "{:?}", checked.notes);
    assert!(checked.notes[0].contains("needs only 0.3.0"));
    assert!(checked.notes[1].contains("Podman"));
    assert_eq!(CdiVersion::PODMAN_4_3_MAX.as_str(), "0.5.0");
}
