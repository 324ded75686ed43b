//! Line reading and number parsing shared by the table parsers.
//!
//! The driver's tables are small line-oriented texts; every parser walks
//! them with one reused buffer ([`Lines`]) so that reading a table costs one
//! allocation, not one per line, and every error knows its line number.

use std::io::{BufRead, ErrorKind};
use std::path::Path;

use super::DriverError;

/// A line-at-a-time reader that keeps one buffer for the whole file.
pub(crate) struct Lines<'p, R> {
    reader: R,
    path: &'p Path,
    hint: &'static str,
    buf: String,
    number: usize,
}

impl<'p, R: BufRead> Lines<'p, R> {
    /// `hint` is what to tell the user if the file is not text.
    pub(crate) fn new(reader: R, path: &'p Path, hint: &'static str) -> Self {
        Lines {
            reader,
            path,
            hint,
            buf: String::with_capacity(128),
            number: 0,
        }
    }

    /// The next line, without its line ending, and its 1-based number;
    /// `None` at the end of the file.
    pub(crate) fn next_line(&mut self) -> Result<Option<(usize, &str)>, DriverError> {
        self.buf.clear();
        match self.reader.read_line(&mut self.buf) {
            Ok(0) => Ok(None),
            Ok(_) => {
                self.number += 1;
                let line = self.buf.strip_suffix('\n').unwrap_or(&self.buf);
                let line = line.strip_suffix('\r').unwrap_or(line);
                Ok(Some((self.number, line)))
            }
            Err(err) if err.kind() == ErrorKind::InvalidData => Err(DriverError::Parse {
                path: self.path.to_path_buf(),
                line: self.number + 1,
                message: "the line is not UTF-8 text".to_string(),
                hint: self.hint,
            }),
            Err(source) => Err(DriverError::Io {
                path: self.path.to_path_buf(),
                source,
            }),
        }
    }
}

/// A decimal number made of ASCII digits only (no sign, no spaces), as the
/// driver prints with `%u`. `str::parse` alone would also take `+7`.
pub(crate) fn decimal(text: &str) -> Option<u32> {
    decimal_bytes(text.as_bytes())
}

/// [`decimal`] over bytes.
pub(crate) fn decimal_bytes(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u32, |number, &digit| {
        if !digit.is_ascii_digit() {
            return None;
        }
        number.checked_mul(10)?.checked_add(u32::from(digit - b'0'))
    })
}

/// Permission bits printed in decimal (`DeviceFileMode: 438` is `0o666`);
/// anything beyond the 12 mode bits is not a mode.
pub(crate) fn decimal_mode(text: &str) -> Option<u32> {
    decimal(text).filter(|mode| *mode <= 0o7777)
}

/// `Key: value` with both sides trimmed; `None` when there is no colon or
/// the key is empty. The value may itself hold colons (`0000:00:06.0`).
pub(crate) fn key_value(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once(':')?;
    let key = key.trim();
    if key.is_empty() {
        return None;
    }
    Some((key, value.trim()))
}

/// Store a field seen once per file; a second sighting is an error.
pub(crate) fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    path: &Path,
    line: usize,
    key: &str,
    hint: &'static str,
) -> Result<(), DriverError> {
    if slot.is_some() {
        return Err(DriverError::Parse {
            path: path.to_path_buf(),
            line,
            message: format!("\"{key}\" appears a second time"),
            hint,
        });
    }
    *slot = Some(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_takes_digits_only() {
        assert_eq!(decimal("0"), Some(0));
        assert_eq!(decimal("4322"), Some(4322));
        assert_eq!(decimal("04"), Some(4));
        assert_eq!(decimal(""), None);
        assert_eq!(decimal("+7"), None);
        assert_eq!(decimal("-1"), None);
        assert_eq!(decimal(" 7"), None);
        assert_eq!(decimal("0x10"), None);
        assert_eq!(decimal("4294967296"), None);
    }

    #[test]
    fn decimal_mode_rejects_non_modes() {
        assert_eq!(decimal_mode("438"), Some(0o666));
        assert_eq!(decimal_mode("256"), Some(0o400));
        assert_eq!(decimal_mode("4096"), None);
    }

    #[test]
    fn lines_strip_endings_and_count_from_one() {
        let mut lines = Lines::new("a\r\nb\n\nc".as_bytes(), Path::new("/t"), "h");
        let mut seen = Vec::new();
        while let Some((n, line)) = lines.next_line().unwrap() {
            seen.push((n, line.to_string()));
        }
        let want = [(1, "a"), (2, "b"), (3, ""), (4, "c")];
        let want: Vec<_> = want.iter().map(|(n, s)| (*n, s.to_string())).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn lines_report_non_utf8_with_line_number() {
        let bytes: &[u8] = b"ok\n\xff\xfe\n";
        let mut lines = Lines::new(bytes, Path::new("/t"), "h");
        assert!(lines.next_line().unwrap().is_some());
        let err = lines.next_line().unwrap_err().to_string();
        assert_eq!(err, "/t:2: the line is not UTF-8 text; h");
    }
}
