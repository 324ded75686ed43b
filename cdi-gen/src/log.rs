//! Diagnostics on stderr, quiet by default: `-v` shows what was read and
//! decided (info), `-vv` the details (debug); `RUST_LOG=info|debug` (or
//! `mig_cdi_gen=debug`) does the same where a flag cannot be passed, such
//! as in a unit file. Warnings and errors are printed whatever the level.
//!
//! A process-wide level, set once by `main`: a whole crate for two
//! levels would cost more start-up than it saves code.

use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(0);

/// The level a command line and `RUST_LOG` ask for: the higher wins.
pub fn level_from(verbose: u8, rust_log: Option<&str>) -> u8 {
    let env = rust_log
        .unwrap_or("")
        .split(',')
        .filter_map(|item| match item.split_once('=') {
            Some((target, level)) if target.trim() == "mig_cdi_gen" => Some(level),
            Some(_) => None,
            None => Some(item),
        })
        .map(|level| match level.trim().to_ascii_lowercase().as_str() {
            "info" => 1,
            "debug" | "trace" => 2,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    verbose.min(2).max(env)
}

/// Set the level for the process.
pub fn init(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
}

/// Is `level` (1 info, 2 debug) on?
pub fn enabled(level: u8) -> bool {
    LEVEL.load(Ordering::Relaxed) >= level
}

/// `mig-cdi-gen: info: ...` with `-v` or `RUST_LOG=info`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => {
        if $crate::log::enabled(1) {
            eprintln!("mig-cdi-gen: info: {}", format_args!($($arg)*));
        }
    };
}

/// `mig-cdi-gen: debug: ...` with `-vv` or `RUST_LOG=debug`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::log::enabled(2) {
            eprintln!("mig-cdi-gen: debug: {}", format_args!($($arg)*));
        }
    };
}

#[cfg(test)]
mod tests {
    use super::level_from;

    #[test]
    fn flags_and_rust_log() {
        assert_eq!(level_from(0, None), 0);
        assert_eq!(level_from(1, None), 1);
        assert_eq!(level_from(5, None), 2);
        assert_eq!(level_from(0, Some("debug")), 2);
        assert_eq!(level_from(0, Some("warn,mig_cdi_gen=info")), 1);
        assert_eq!(level_from(0, Some("other_crate=debug")), 0);
        assert_eq!(level_from(2, Some("info")), 2);
    }
}
