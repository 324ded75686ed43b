//! How a run ends, in one place: the exit statuses every command and
//! `main` return (the READMEs document them), and the one line an error
//! prints.

/// `generate --check` only: the file differs from what the hardware gives
/// now, or is missing.
pub const EXIT_DRIFT: u8 = 1;

/// `doctor` only: it found a warning or an error on the host.
pub const EXIT_PROBLEMS: u8 = 1;

/// An error: bad input, a driver problem, a failed write, an invalid spec
/// (`validate`). One line on stderr says what to do.
pub const EXIT_ERROR: u8 = 2;

/// The error and its causes on one line, `outer: inner: ...`, each said
/// once: a cause whose text a message before it already includes (an
/// error type that prints its source and also returns it) is left out.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read /x: {source}")]
    struct SaysItsSource {
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_said_once() {
        let os = || std::io::Error::from_raw_os_error(13);
        let err = anyhow::Error::from(SaysItsSource { source: os() }).context("loading tables");
        assert_eq!(
            error_line(&err),
            "loading tables: cannot read /x: Permission denied (os error 13)"
        );
        let err = anyhow::Error::from(os()).context("cannot write /y");
        assert_eq!(
            error_line(&err),
            "cannot write /y: Permission denied (os error 13)"
        );
    }
}
