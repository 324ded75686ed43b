//! `/proc/devices`: which character-device major the kernel gave each driver.
//!
//! The NVIDIA majors are not all fixed: `nvidia` is 195, but `nvidia-uvm`
//! and `nvidia-caps` are allocated at load time, so every device node we
//! put in a spec takes its major from here. Only the "Character devices:"
//! section counts; block majors live in a separate number space and must
//! never be mistaken for character ones.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use super::text::{decimal, Lines};
use super::DriverError;

const HINT: &str =
    "this does not look like the kernel's /proc/devices — does --root point at the host's root?";

const CHAR_HEADER: &str = "Character devices:";
const BLOCK_HEADER: &str = "Block devices:";

/// Character-device majors from `/proc/devices` (name -> major).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CharDevices {
    /// Name -> major. Several names may share a major (`195 nvidia`,
    /// `195 nvidiactl`). Where one name is listed under several majors
    /// (`infiniband_verbs` is on real machines), this holds the first one
    /// listed and [`CharDevices::repeated`] holds them all.
    pub majors: BTreeMap<String, u32>,
    /// Names listed under more than one major, with every major in file
    /// order. Empty on a sane NVIDIA host for every `nvidia*` name.
    pub repeated: BTreeMap<String, Vec<u32>>,
}

impl CharDevices {
    /// The major of `name`, the first one listed if there are several.
    pub fn major(&self, name: &str) -> Option<u32> {
        self.majors.get(name).copied()
    }
}

/// Parse `/proc/devices`; `path` only names the file in errors.
///
/// Lines before the "Character devices:" header are ignored, and reading
/// stops at "Block devices:". Each entry is `<major> <name>` with a decimal
/// major; a name may contain `/` (`/dev/vc/0`).
pub fn parse_proc_devices(reader: impl BufRead, path: &Path) -> Result<CharDevices, DriverError> {
    let mut lines = Lines::new(reader, path, HINT);
    let mut devices = CharDevices::default();
    let mut in_char = false;
    while let Some((number, line)) = lines.next_line()? {
        let text = line.trim();
        if !in_char {
            in_char = text == CHAR_HEADER;
            continue;
        }
        if text == BLOCK_HEADER {
            break;
        }
        if text.is_empty() {
            continue;
        }
        let (major, name) = entry(text).ok_or_else(|| DriverError::Parse {
            path: path.to_path_buf(),
            line: number,
            message: format!(
                "expected \"<major> <name>\" with a decimal major in the \"{CHAR_HEADER}\" \
                 section, found \"{text}\""
            ),
            hint: HINT,
        })?;
        add(&mut devices, major, name);
    }
    if !in_char {
        return Err(DriverError::Missing {
            path: path.to_path_buf(),
            what: format!("\"{CHAR_HEADER}\" section"),
            hint: HINT,
        });
    }
    Ok(devices)
}

/// `195 nvidiactl` -> (195, "nvidiactl").
fn entry(text: &str) -> Option<(u32, &str)> {
    let (major, name) = text.split_once(|c: char| c.is_ascii_whitespace())?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    Some((decimal(major)?, name))
}

fn add(devices: &mut CharDevices, major: u32, name: &str) {
    match devices.majors.get(name) {
        None => {
            devices.majors.insert(name.to_string(), major);
        }
        Some(&first) if first == major => {}
        Some(&first) => {
            let all = devices
                .repeated
                .entry(name.to_string())
                .or_insert_with(|| vec![first]);
            if !all.contains(&major) {
                all.push(major);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CharDevices, DriverError> {
        parse_proc_devices(text.as_bytes(), Path::new("/r/proc/devices"))
    }

    #[test]
    fn shared_majors_and_slashes_in_names() {
        let devices = parse(
            "Character devices:\n  4 /dev/vc/0\n195 nvidia\n195 nvidiactl\n\nBlock devices:\n  7 loop\n",
        )
        .unwrap();
        assert_eq!(devices.major("/dev/vc/0"), Some(4));
        assert_eq!(devices.major("nvidia"), Some(195));
        assert_eq!(devices.major("nvidiactl"), Some(195));
        assert_eq!(devices.major("loop"), None);
        assert!(devices.repeated.is_empty());
    }

    #[test]
    fn a_name_under_two_majors_keeps_the_first_and_is_recorded() {
        let devices =
            parse("Character devices:\n231 infiniband_verbs\n244 infiniband_verbs\n").unwrap();
        assert_eq!(devices.major("infiniband_verbs"), Some(231));
        assert_eq!(devices.repeated["infiniband_verbs"], vec![231, 244]);
    }

    #[test]
    fn block_entries_after_the_header_are_not_read() {
        // Even a garbled block section does not matter: reading stops there.
        let devices = parse("Character devices:\n1 mem\nBlock devices:\nnot a line\n").unwrap();
        assert_eq!(devices.majors.len(), 1);
    }

    #[test]
    fn hex_major_fails_with_line() {
        let err = parse("Character devices:\n1 mem\nc3 nvidia\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/r/proc/devices:3: expected \"<major> <name>\""),
            "{err}"
        );
    }

    #[test]
    fn major_without_name_fails() {
        assert!(parse("Character devices:\n195\n").is_err());
        assert!(parse("Character devices:\n195   \n").is_err());
    }
}
