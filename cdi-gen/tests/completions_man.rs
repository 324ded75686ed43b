//! `completions` and `man` cover every subcommand: the list comes from the
//! clap command itself, so a subcommand added later is checked without
//! editing this test.

use std::process::Command;

use clap::CommandFactory;
use mig_cdi_gen::cli::Cli;
use mig_cdi_testkit::e2e::bin;

/// Every visible subcommand of the clap definition (clap's own `help`
/// left out).
fn subcommands() -> Vec<String> {
    let cmd = Cli::command();
    let names: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect();
    for known in [
        "list",
        "generate",
        "validate",
        "docker-args",
        "doctor",
        "completions",
        "man",
    ] {
        assert!(
            names.iter().any(|n| n == known),
            "{known} missing from {names:?}"
        );
    }
    names
}

fn gen(args: &[&str]) -> String {
    let out = Command::new(bin("mig-cdi-gen"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mig-cdi-gen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_name_every_subcommand() {
    let subs = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let script = gen(&["completions", shell]);
        assert!(script.contains("mig-cdi-gen"), "{shell}");
        for sub in &subs {
            assert!(
                script.contains(sub.as_str()),
                "{shell} completion lacks {sub}"
            );
        }
        // A flag of a subcommand too: the scripts complete options.
        assert!(script.contains("device-name-strategy"), "{shell}");
    }
}

#[test]
fn completions_refuse_other_shells() {
    let out = Command::new(bin("mig-cdi-gen"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn scripts_parse_in_bash() {
    // The bash script is bash: `bash -n` reads it without running it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mig-cdi-gen.bash");
    std::fs::write(&file, gen(&["completions", "bash"])).unwrap();
    let status = Command::new("bash").arg("-n").arg(&file).status().unwrap();
    assert!(status.success());
}

#[test]
fn man_page_names_every_subcommand() {
    let page = gen(&["man"]).replace("\\-", "-");
    assert!(
        page.starts_with(".ie") || page.contains(".TH mig-cdi-gen"),
        "not roff"
    );
    assert!(page.contains(".SH SUBCOMMANDS"));
    for sub in subcommands() {
        assert!(
            page.contains(&format!("mig-cdi-gen-{sub}(1)")),
            "man page lacks {sub}"
        );
    }
}

#[test]
fn man_dir_writes_one_page_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    assert_eq!(gen(&["man", "--dir", out.to_str().unwrap()]), "");
    let mut pages: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    let mut want: Vec<String> = subcommands()
        .iter()
        .map(|s| format!("mig-cdi-gen-{s}.1"))
        .collect();
    want.push("mig-cdi-gen.1".to_string());
    want.sort();
    assert_eq!(pages, want);
    let generate = std::fs::read_to_string(out.join("mig-cdi-gen-generate.1")).unwrap();
    assert!(generate.contains(".TH mig-cdi-gen-generate"), "{generate}");
}
