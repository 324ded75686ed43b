//! `/proc/driver/nvidia-caps/mig-minors`: which `nvidia-cap<M>` node grants
//! which MIG capability.
//!
//! A container gets a MIG device by being handed two capability nodes, the
//! GPU instance's and the compute instance's access node; handing it the
//! wrong minor hands it someone else's instance. The minors come only from
//! this table, so it is parsed strictly: a garbled line, a repeated name or
//! a minor given twice is an error, never a guess. Names a newer driver may
//! add (well-formed, just unknown to us) are skipped.
//!
//! The table is static (every possible GPU, GI and CI: 4322 lines on a
//! 580 driver) and is read on every generator and hook run, so the loop is
//! plain string slicing with no allocation per line beyond the map entries.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use super::text::{decimal, Lines};
use super::{DriverError, UNEXPECTED_TABLE};

const EXPECTED: &str =
    "expected \"gpu<N>/gi<G>/access <minor>\" or \"gpu<N>/gi<G>/ci<C>/access <minor>\"";

/// `/proc/driver/nvidia-caps/mig-minors`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigMinors {
    /// Minor of the `config` capability (MIG management of whole GPUs).
    pub config: Option<u32>,
    /// Minor of the `monitor` capability (MIG monitoring of whole GPUs).
    pub monitor: Option<u32>,
    /// (gpu minor, gi) -> cap minor
    pub gi_access: BTreeMap<(u32, u32), u32>,
    /// (gpu minor, gi, ci) -> cap minor
    pub ci_access: BTreeMap<(u32, u32, u32), u32>,
}

impl MigMinors {
    /// Capability minor of `gpu<gpu_minor>/gi<gi>/access`.
    pub fn gi(&self, gpu_minor: u32, gi: u32) -> Option<u32> {
        self.gi_access.get(&(gpu_minor, gi)).copied()
    }

    /// Capability minor of `gpu<gpu_minor>/gi<gi>/ci<ci>/access`.
    pub fn ci(&self, gpu_minor: u32, gi: u32, ci: u32) -> Option<u32> {
        self.ci_access.get(&(gpu_minor, gi, ci)).copied()
    }
}

/// One recognised name.
enum Name {
    Config,
    Monitor,
    Gi(u32, u32),
    Ci(u32, u32, u32),
    /// Well-formed but not ours (a newer driver's addition).
    Unknown,
}

/// Parse the mig-minors table; `path` only names the file in errors.
///
/// Each line is `<name> <minor>`. Known names: `config`, `monitor`,
/// `gpu<N>/gi<G>/access`, `gpu<N>/gi<G>/ci<C>/access`. A name is garbled
/// (an error) if it has an empty `/` segment, a `gpu`/`gi`/`ci` segment in
/// its usual place without a decimal number, or ends in such a segment;
/// any other unknown name is skipped.
pub fn parse_mig_minors(reader: impl BufRead, path: &Path) -> Result<MigMinors, DriverError> {
    let mut lines = Lines::new(reader, path, UNEXPECTED_TABLE);
    let mut table = MigMinors::default();
    let parse_error = |line: usize, message: String| DriverError::Parse {
        path: path.to_path_buf(),
        line,
        message,
        hint: UNEXPECTED_TABLE,
    };
    while let Some((number, line)) = lines.next_line()? {
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let mut fields = text.split_ascii_whitespace();
        let (Some(name), Some(minor), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(parse_error(number, format!("{EXPECTED}, found \"{text}\"")));
        };
        let name_kind = classify(name)
            .ok_or_else(|| parse_error(number, format!("{EXPECTED}, found \"{text}\"")))?;
        let minor = decimal(minor).ok_or_else(|| {
            parse_error(
                number,
                format!("expected a decimal minor number after \"{name}\", found \"{minor}\""),
            )
        })?;
        let duplicate = match name_kind {
            Name::Config => table.config.replace(minor),
            Name::Monitor => table.monitor.replace(minor),
            Name::Gi(gpu, gi) => table.gi_access.insert((gpu, gi), minor),
            Name::Ci(gpu, gi, ci) => table.ci_access.insert((gpu, gi, ci), minor),
            Name::Unknown => None,
        };
        if let Some(earlier) = duplicate {
            return Err(parse_error(
                number,
                format!("\"{name}\" appears a second time (first with minor {earlier})"),
            ));
        }
    }
    check_minors_unique(&table, path)?;
    Ok(table)
}

/// `None` if the name is garbled.
fn classify(name: &str) -> Option<Name> {
    match name {
        "config" => return Some(Name::Config),
        "monitor" => return Some(Name::Monitor),
        _ => {}
    }
    if name.split('/').any(str::is_empty) {
        return None;
    }
    // The leading run of numbered segments, `gpu<N>[/gi<G>[/ci<C>]]`, then
    // whatever follows it.
    const PREFIXES: [&str; 3] = ["gpu", "gi", "ci"];
    let mut numbers = [0u32; 3];
    let mut depth = 0;
    let mut rest = name;
    while depth < PREFIXES.len() {
        let (segment, tail) = match rest.split_once('/') {
            Some((segment, tail)) => (segment, Some(tail)),
            None => (rest, None),
        };
        let Some(digits) = segment.strip_prefix(PREFIXES[depth]) else {
            break;
        };
        numbers[depth] = decimal(digits)?;
        depth += 1;
        match tail {
            Some(tail) => rest = tail,
            // Ends in a numbered segment (`gpu0/gi1`): a truncated name.
            None => return None,
        }
    }
    match (depth, rest) {
        (2, "access") => Some(Name::Gi(numbers[0], numbers[1])),
        (3, "access") => Some(Name::Ci(numbers[0], numbers[1], numbers[2])),
        _ => Some(Name::Unknown),
    }
}

/// No two capabilities may share a minor: a shared node would grant both.
fn check_minors_unique(table: &MigMinors, path: &Path) -> Result<(), DriverError> {
    let mut minors: Vec<u32> =
        Vec::with_capacity(2 + table.gi_access.len() + table.ci_access.len());
    minors.extend(table.config);
    minors.extend(table.monitor);
    minors.extend(table.gi_access.values());
    minors.extend(table.ci_access.values());
    minors.sort_unstable();
    let Some(shared) = minors.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]) else {
        return Ok(());
    };
    let names: Vec<String> = names_with_minor(table, shared).take(2).collect();
    Err(DriverError::Inconsistent {
        path: path.to_path_buf(),
        message: format!("minor {shared} is given to both {}", names.join(" and ")),
        hint: UNEXPECTED_TABLE,
    })
}

fn names_with_minor(table: &MigMinors, minor: u32) -> impl Iterator<Item = String> + '_ {
    let config = (table.config == Some(minor)).then(|| "\"config\"".to_string());
    let monitor = (table.monitor == Some(minor)).then(|| "\"monitor\"".to_string());
    let gis = table
        .gi_access
        .iter()
        .filter(move |(_, m)| **m == minor)
        .map(|((gpu, gi), _)| format!("\"gpu{gpu}/gi{gi}/access\""));
    let cis = table
        .ci_access
        .iter()
        .filter(move |(_, m)| **m == minor)
        .map(|((gpu, gi, ci), _)| format!("\"gpu{gpu}/gi{gi}/ci{ci}/access\""));
    config.into_iter().chain(monitor).chain(gis).chain(cis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MigMinors, DriverError> {
        parse_mig_minors(text.as_bytes(), Path::new("/m"))
    }

    #[test]
    fn known_names() {
        let table =
            parse("config 1\nmonitor 2\ngpu3/gi0/access 3\ngpu3/gi0/ci7/access 4\n\n").unwrap();
        assert_eq!((table.config, table.monitor), (Some(1), Some(2)));
        assert_eq!(table.gi(3, 0), Some(3));
        assert_eq!(table.ci(3, 0, 7), Some(4));
        assert_eq!(table.gi(0, 0), None);
    }

    #[test]
    fn well_formed_unknown_names_are_skipped() {
        let table = parse(
            "fabric-mgmt 10\ngpu0/gi0/ci0/profile 11\ngpu0/gi0/access/x 12\n\
             gpu0/nvlink/access 13\ngi0/access 14\ngpu0/gi0/access 3\n",
        )
        .unwrap();
        assert_eq!(table.gi_access.len(), 1);
        assert!(table.ci_access.is_empty());
    }

    #[test]
    fn garbled_names_fail() {
        for name in [
            "gpu/gi0/access",
            "gpu0/gi/access",
            "gpu0/gi0/ci/access",
            "gpu0/gix/access",
            "gpu0/gi+1/access",
            "gpu0//access",
            "/gpu0/gi0/access",
            "gpu0/gi0/access/",
            "gpu0/gi0",
            "gpu0/gi0/ci1",
            "gpu0",
        ] {
            let err = parse(&format!("{name} 3\n")).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("/m:1: {EXPECTED}, found \"{name} 3\";")),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn wrong_field_counts_fail() {
        assert!(parse("config\n").is_err());
        assert!(parse("config 1 2\n").is_err());
    }

    #[test]
    fn a_minor_shared_by_two_names_fails() {
        let err = parse("config 1\ngpu0/gi0/access 5\ngpu0/gi0/ci0/access 5\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "/m: minor 5 is given to both \"gpu0/gi0/access\" and \"gpu0/gi0/ci0/access\";"
            ),
            "{err}"
        );
    }

    #[test]
    fn repeated_config_fails() {
        let err = parse("config 1\nconfig 1\n").unwrap_err().to_string();
        assert!(
            err.starts_with("/m:2: \"config\" appears a second time"),
            "{err}"
        );
    }
}
