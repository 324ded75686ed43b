//! The generator's modules import one way only: no module may reach,
//! through `crate::` paths, a module that reaches it back. Read from the
//! source files, so a new circle fails here rather than in review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The first path segment after each `crate::` in `text` (line comments
/// left out), including each item of a `crate::{a, b::c}` group.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut refs = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Items at depth 1 of the group.
            let mut depth = 1;
            let mut item_start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            refs.insert(ident(&group[item_start..i]));
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        refs.insert(ident(&group[item_start..i]));
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            refs.insert(ident(rest));
        }
    }
    refs.retain(|r| !r.is_empty());
    refs
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        if name == "main" || name == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut refs = crate_refs(&text);
        refs.remove(&name);
        graph.insert(name, refs);
    }
    assert!(graph.contains_key("cli") && graph.contains_key("generate"));
    // Depth-first search for a cycle, reporting its path.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            panic!("import circle: {}", cycle.join(" -> "));
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if graph.contains_key(next) {
                visit(next, graph, path, done);
            }
        }
        path.pop();
        done.insert(node.to_string());
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
    // The commands sit side by side: none imports another.
    let commands = ["list", "generate", "validate", "docker_args", "doctor"];
    for command in commands {
        for other in commands.iter().filter(|&&o| o != command) {
            assert!(
                !graph[command].contains(*other),
                "{command} imports {other}: move what they share below both"
            );
        }
    }
}

#[test]
fn references_are_read_from_paths_and_groups() {
    let refs = crate_refs(
        "use crate::args::HostArgs;\nuse crate::{list, generate::{self, X}};\n\
         // crate::nvml in a comment\nlet x = crate::exit::EXIT_ERROR;",
    );
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        ["args", "exit", "generate", "list"]
    );
}
