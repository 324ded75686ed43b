//! A finding and how findings are printed: text for people (grouped by
//! section, each problem followed by its fix), JSON for tools. The ids are
//! stable: scripts may match on them; the wording may change.

use std::fmt::Write as _;

use serde::Serialize;

/// How much a finding matters. Ordered: `Ok` < `Info` < `Warning` < `Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A check that passed.
    Ok,
    /// Worth knowing; not a problem.
    Info,
    /// MIG in containers works, but something will break or is unsafe.
    Warning,
    /// MIG in containers does not work until this is fixed.
    Error,
}

impl Severity {
    fn label(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
        }
    }

    /// A warning or an error.
    pub fn is_problem(self) -> bool {
        self >= Severity::Warning
    }
}

/// One thing doctor found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable id, `area.what` (`mig.pending`).
    pub id: &'static str,
    pub severity: Severity,
    /// What it is about: `Driver`, `GPU 0: NVIDIA H200 (...)`, `CDI specs`.
    pub section: String,
    /// What was found.
    pub found: String,
    /// The command or setting that fixes it (problems always have one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn new(id: &'static str, severity: Severity, section: &str, found: String) -> Self {
        Self {
            id,
            severity,
            section: section.to_string(),
            found,
            fix: None,
        }
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// No warning and no error.
    pub healthy: bool,
    pub errors: usize,
    pub warnings: usize,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn new(findings: Vec<Finding>) -> Self {
        let count = |s| findings.iter().filter(|f| f.severity == s).count();
        let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
        Self {
            healthy: errors == 0 && warnings == 0,
            errors,
            warnings,
            findings,
        }
    }

    /// The text report: sections in the order their first finding came,
    /// findings in the order they were made.
    pub fn text(&self) -> String {
        let mut sections: Vec<&str> = Vec::new();
        for f in &self.findings {
            if !sections.contains(&f.section.as_str()) {
                sections.push(&f.section);
            }
        }
        let mut out = String::new();
        for section in sections {
            let _ = writeln!(out, "{section}");
            for f in self.findings.iter().filter(|f| f.section == section) {
                let label = format!("{:<7}", f.severity.label());
                let _ = writeln!(out, "  {label} {}: {}", f.id, f.found);
                if let Some(fix) = &f.fix {
                    let _ = writeln!(out, "          fix: {fix}");
                }
            }
            out.push('\n');
        }
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        if self.healthy {
            out.push_str("Healthy: no problem found.\n");
        } else {
            let _ = writeln!(
                out,
                "{} and {}: see the fixes above.",
                plural(self.errors, "error"),
                plural(self.warnings, "warning")
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_groups_by_section_and_counts_problems() {
        let report = Report::new(vec![
            Finding::new("a.ok", Severity::Ok, "Driver", "fine".into()),
            Finding::new("b.bad", Severity::Error, "GPU 0", "broken".into()).fix("mend it"),
            Finding::new("a.note", Severity::Info, "Driver", "note".into()),
        ]);
        assert!(!report.healthy);
        assert_eq!(
            report.text(),
            "Driver\n  ok      a.ok: fine\n  info    a.note: note\n\nGPU 0\n  ERROR   b.bad: \
             broken\n          fix: mend it\n\n1 error and 0 warnings: see the fixes above.\n"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["findings"][1]["severity"], "error");
        assert_eq!(json["findings"][0].get("fix"), None);
    }
}
