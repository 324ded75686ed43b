//! Exit statuses, in one place: every command and `main` return these, and
//! the READMEs document them.

/// The command did what was asked (`generate --check`: the file is up to
/// date).
pub const EXIT_SUCCESS: u8 = 0;

/// `generate --check` only: the file differs from what the hardware gives
/// now, or is missing.
pub const EXIT_DRIFT: u8 = 1;

/// An error: bad input, a driver problem, a failed write, an invalid spec
/// (`validate`). One line on stderr says what to do.
pub const EXIT_ERROR: u8 = 2;
