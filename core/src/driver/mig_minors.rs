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
//! plain byte slicing with no allocation per line: entries go to pre-sized
//! vectors and become the maps in one bulk build at the end.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use super::text::{decimal, decimal_bytes, Lines};
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
///
/// Errors, in the order they are looked for: the first malformed line; the
/// first line that repeats a name; a minor given to two names.
pub fn parse_mig_minors(reader: impl BufRead, path: &Path) -> Result<MigMinors, DriverError> {
    parse_mig_minors_for(reader, path, None)
}

/// [`parse_mig_minors`] keeping only the entries of the GPU minors in
/// `gpus` (and `config`, `monitor`): a node uses a few of the table's 4322
/// lines, and the others are skipped by their `gpu<N>/` prefix before
/// anything else is done with them. The checks then cover the lines kept.
pub fn parse_mig_minors_for(
    reader: impl BufRead,
    path: &Path,
    gpus: Option<&[u32]>,
) -> Result<MigMinors, DriverError> {
    let mut lines = Lines::new(reader, path, UNEXPECTED_TABLE);
    let mut table = MigMinors::default();
    // Entries go to vectors first and into the maps in one bulk build at
    // the end: the driver writes them in key order, so that is a linear
    // pass, where inserting one by one would search the tree each time.
    let mut gi_entries: Vec<Entry<(u32, u32)>> = Vec::with_capacity(512);
    let mut ci_entries: Vec<Entry<(u32, u32, u32)>> = Vec::with_capacity(4096);
    // Minors in file order, to check that no two names share one.
    let mut minors: Vec<u32> = Vec::with_capacity(4400);
    while let Some((number, line)) = lines.next_line()? {
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let Some((name, minor)) = two_fields(text) else {
            return Err(parse_error(
                path,
                number,
                format!("{EXPECTED}, found \"{text}\""),
            ));
        };
        if let (Some(gpus), Some(gpu)) = (gpus, gpu_prefix(name)) {
            if !gpus.contains(&gpu) {
                continue;
            }
        }
        let Some(name_kind) = classify(name) else {
            return Err(parse_error(
                path,
                number,
                format!("{EXPECTED}, found \"{text}\""),
            ));
        };
        let Some(minor) = decimal(minor) else {
            return Err(parse_error(
                path,
                number,
                format!("expected a decimal minor number after \"{name}\", found \"{minor}\""),
            ));
        };
        if !matches!(name_kind, Name::Unknown) {
            minors.push(minor);
        }
        let earlier = match name_kind {
            Name::Config => table.config.replace(minor),
            Name::Monitor => table.monitor.replace(minor),
            Name::Gi(gpu, gi) => {
                gi_entries.push(((gpu, gi), minor, number));
                None
            }
            Name::Ci(gpu, gi, ci) => {
                ci_entries.push(((gpu, gi, ci), minor, number));
                None
            }
            Name::Unknown => None,
        };
        if let Some(earlier) = earlier {
            return Err(parse_error(path, number, repeated(name, earlier)));
        }
    }
    let gi_repeat = sort_and_find_repeat(&mut gi_entries, gi_name);
    let ci_repeat = sort_and_find_repeat(&mut ci_entries, ci_name);
    if let Some((line, message)) = gi_repeat.into_iter().chain(ci_repeat).min() {
        return Err(parse_error(path, line, message));
    }
    table.gi_access = into_map(gi_entries);
    table.ci_access = into_map(ci_entries);
    check_minors_unique(&table, minors, path)?;
    Ok(table)
}

/// `N` of a name starting `gpu<N>/`, read cheaply; `None` otherwise (the
/// full check is `classify`'s).
fn gpu_prefix(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("gpu")?;
    let end = rest.bytes().position(|b| b == b'/')?;
    decimal(&rest[..end])
}

/// `<name><ascii whitespace><minor>` (the line is already trimmed); `None`
/// for any other number of fields.
fn two_fields(text: &str) -> Option<(&str, &str)> {
    let gap = text.bytes().position(|b| b.is_ascii_whitespace())?;
    let (name, minor) = text.split_at(gap);
    let minor = minor.trim_ascii_start();
    if minor.bytes().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    Some((name, minor))
}

fn gi_name((gpu, gi): (u32, u32)) -> String {
    format!("gpu{gpu}/gi{gi}/access")
}

fn ci_name((gpu, gi, ci): (u32, u32, u32)) -> String {
    format!("gpu{gpu}/gi{gi}/ci{ci}/access")
}

/// One access entry as read: key, minor, 1-based line.
type Entry<K> = (K, u32, usize);

fn parse_error(path: &Path, line: usize, message: String) -> DriverError {
    DriverError::Parse {
        path: path.to_path_buf(),
        line,
        message,
        hint: UNEXPECTED_TABLE,
    }
}

fn repeated(name: &str, earlier: u32) -> String {
    format!("\"{name}\" appears a second time (first with minor {earlier})")
}

/// Sort by key (stable, so equal keys stay in file order; linear on the
/// driver's already sorted table) and find the first line, in file order,
/// that repeats a key, with the message for it.
fn sort_and_find_repeat<K: Ord + Copy>(
    entries: &mut [Entry<K>],
    name: impl Fn(K) -> String,
) -> Option<(usize, String)> {
    entries.sort_by_key(|entry| entry.0);
    let pair = entries
        .windows(2)
        .filter(|pair| pair[0].0 == pair[1].0)
        .min_by_key(|pair| pair[1].2)?;
    let ((key, earlier, _), (_, _, line)) = (pair[0], pair[1]);
    Some((line, repeated(&name(key), earlier)))
}

/// Sorted, repeat-free entries as a map (a bulk build).
fn into_map<K: Ord>(entries: Vec<Entry<K>>) -> BTreeMap<K, u32> {
    entries
        .into_iter()
        .map(|(key, minor, _)| (key, minor))
        .collect()
}

/// `None` if the name is garbled. Works on bytes: this runs once per
/// line of a 4322-line table.
fn classify(name: &str) -> Option<Name> {
    match name {
        "config" => return Some(Name::Config),
        "monitor" => return Some(Name::Monitor),
        _ => {}
    }
    // The leading run of numbered segments, `gpu<N>[/gi<G>[/ci<C>]]`, then
    // whatever follows it.
    let mut numbers = [0u32; 3];
    let mut depth = 0;
    let mut rest = name.as_bytes();
    while depth < numbers.len() {
        let (segment, tail) = match rest.iter().position(|&b| b == b'/') {
            Some(slash) => (&rest[..slash], Some(&rest[slash + 1..])),
            None => (rest, None),
        };
        let digits = match depth {
            0 => segment.strip_prefix(b"gpu"),
            1 => segment.strip_prefix(b"gi"),
            _ => segment.strip_prefix(b"ci"),
        };
        let Some(digits) = digits else {
            break;
        };
        numbers[depth] = decimal_bytes(digits)?;
        depth += 1;
        // Ending in a numbered segment (`gpu0/gi1`) is a truncated name.
        rest = tail?;
    }
    match (depth, rest) {
        (2, b"access") => Some(Name::Gi(numbers[0], numbers[1])),
        (3, b"access") => Some(Name::Ci(numbers[0], numbers[1], numbers[2])),
        _ if rest.split(|&b| b == b'/').any(<[u8]>::is_empty) => None,
        _ => Some(Name::Unknown),
    }
}

/// No two capabilities may share a minor: a shared node would grant both.
/// `minors` are in file order; the driver writes them ascending, so the
/// sort is only needed for an unusual table.
fn check_minors_unique(
    table: &MigMinors,
    mut minors: Vec<u32>,
    path: &Path,
) -> Result<(), DriverError> {
    if minors.windows(2).all(|pair| pair[0] < pair[1]) {
        return Ok(());
    }
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
    let config = (table.config == Some(minor)).then(|| "config".to_string());
    let monitor = (table.monitor == Some(minor)).then(|| "monitor".to_string());
    let gis = table
        .gi_access
        .iter()
        .filter(move |(_, m)| **m == minor)
        .map(|(key, _)| gi_name(*key));
    let cis = table
        .ci_access
        .iter()
        .filter(move |(_, m)| **m == minor)
        .map(|(key, _)| ci_name(*key));
    config
        .into_iter()
        .chain(monitor)
        .chain(gis)
        .chain(cis)
        .map(|name| format!("\"{name}\""))
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
    fn the_earliest_repeat_is_reported() {
        let err = parse(
            "gpu1/gi0/access 10\ngpu0/gi0/ci0/access 20\ngpu0/gi0/ci0/access 21\n\
             gpu1/gi0/access 11\ngpu1/gi0/access 12\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(
                "/m:3: \"gpu0/gi0/ci0/access\" appears a second time (first with minor 20)"
            ),
            "{err}"
        );
        let err = parse("gpu1/gi0/access 10\ngpu0/gi0/access 2\ngpu1/gi0/access 11\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "/m:3: \"gpu1/gi0/access\" appears a second time (first with minor 10)"
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
