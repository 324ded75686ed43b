//! Device cgroup rules (`linux.resources.devices`), evaluated the way runc
//! and crun apply them.
//!
//! The hook must know, before it changes anything, whether a container's
//! rules already let it open device nodes it should not (another MIG
//! instance's capability node) and whether they let it open the nodes it is
//! about to get. On cgroup v2 the runtime compiles these rules into the eBPF
//! filter, so the rules in `config.json` are the whole truth; on v1 they are
//! what the runtime wrote into `devices.allow`/`devices.deny`.
//!
//! Semantics, as runc's device emulator and its eBPF generator (and crun's)
//! implement them:
//! - everything starts denied (runtimes prepend "deny all"; an empty list is
//!   deny-all plus the runtime's own defaults, none of them NVIDIA devices);
//! - a rule of type `a` matches every device with every access, whatever
//!   major, minor or access it names: `allow a` resets to allow-all,
//!   `deny a` to deny-all;
//! - otherwise a rule matches a device when the type is equal and the major
//!   and minor are equal or wildcards (absent or negative);
//! - for each access bit (`r`, `w`, `m`) the last matching rule that names
//!   that bit decides.
//!
//! Pure functions only: no I/O here.

use std::fmt;

/// Device type of a rule or a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceType {
    /// `a`: every device (rules only).
    All,
    /// `c`: character device.
    Char,
    /// `b`: block device.
    Block,
}

impl DeviceType {
    /// `a`, `c` or `b`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "a" => Some(Self::All),
            "c" => Some(Self::Char),
            "b" => Some(Self::Block),
            _ => None,
        }
    }

    fn letter(self) -> char {
        match self {
            Self::All => 'a',
            Self::Char => 'c',
            Self::Block => 'b',
        }
    }
}

/// A set of access bits: read, write, mknod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Access(u8);

impl Access {
    pub const NONE: Access = Access(0);
    pub const READ: Access = Access(1);
    pub const WRITE: Access = Access(2);
    pub const MKNOD: Access = Access(4);
    pub const RW: Access = Access(3);
    pub const ALL: Access = Access(7);

    /// Parse a subset of `rwm`; an empty string means `rwm` (as runtimes
    /// read an absent `access`). `None` for any other letter.
    pub fn parse(text: &str) -> Option<Self> {
        if text.is_empty() {
            return Some(Self::ALL);
        }
        let mut bits = 0;
        for c in text.chars() {
            bits |= match c {
                'r' => 1,
                'w' => 2,
                'm' => 4,
                _ => return None,
            };
        }
        Some(Access(bits))
    }

    pub fn contains(self, other: Access) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn intersects(self, other: Access) -> bool {
        self.0 & other.0 != 0
    }

    pub const fn union(self, other: Access) -> Access {
        Access(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The single bits of this set, `r` first.
    fn bits(self) -> impl Iterator<Item = Access> {
        [Self::READ, Self::WRITE, Self::MKNOD]
            .into_iter()
            .filter(move |bit| self.contains(*bit))
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, letter) in [(Self::READ, 'r'), (Self::WRITE, 'w'), (Self::MKNOD, 'm')] {
            if self.contains(bit) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// One entry of `linux.resources.devices`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceType,
    /// `None`: any major.
    pub major: Option<u32>,
    /// `None`: any minor.
    pub minor: Option<u32>,
    pub access: Access,
}

impl DeviceRule {
    /// An allow rule for exactly one character device.
    pub fn allow_char(major: u32, minor: u32, access: Access) -> Self {
        Self {
            allow: true,
            kind: DeviceType::Char,
            major: Some(major),
            minor: Some(minor),
            access,
        }
    }

    /// Does this rule speak about `access` on char/block device
    /// `major:minor`?
    pub fn matches(&self, kind: DeviceType, major: u32, minor: u32, access: Access) -> bool {
        if self.kind == DeviceType::All {
            return true;
        }
        self.kind == kind
            && (self.major.is_none() || self.major == Some(major))
            && (self.minor.is_none() || self.minor == Some(minor))
            && self.access.contains(access)
    }

    /// The rule as the kernel's v1 files and `--device-cgroup-rule` write
    /// it: `c 195:0 rw`, `a *:* rwm`.
    pub fn device_text(&self) -> String {
        if self.kind == DeviceType::All {
            return "a *:* rwm".to_string();
        }
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        format!(
            "{} {}:{} {}",
            self.kind.letter(),
            num(self.major),
            num(self.minor),
            self.access
        )
    }
}

impl fmt::Display for DeviceRule {
    /// `allow c 241:* rwm`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.allow { "allow" } else { "deny" };
        write!(f, "{verb} {}", self.device_text())
    }
}

/// The rule that decides one access bit on one device, and its verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// Index in the rule list; `None` when no rule matched (denied).
    pub rule: Option<usize>,
}

/// Decide one access bit: the last matching rule wins; nothing matching
/// means denied.
pub fn decide(
    rules: &[DeviceRule],
    kind: DeviceType,
    major: u32,
    minor: u32,
    bit: Access,
) -> Verdict {
    rules
        .iter()
        .enumerate()
        .rev()
        .find(|(_, rule)| rule.matches(kind, major, minor, bit))
        .map_or(
            Verdict {
                allowed: false,
                rule: None,
            },
            |(index, rule)| Verdict {
                allowed: rule.allow,
                rule: Some(index),
            },
        )
}

/// The access bits the rules grant on a device.
pub fn allowed(rules: &[DeviceRule], kind: DeviceType, major: u32, minor: u32) -> Access {
    let mut granted = 0;
    for bit in Access::ALL.bits() {
        if decide(rules, kind, major, minor, bit).allowed {
            granted |= bit.0;
        }
    }
    Access(granted)
}

/// Do the rules let the container open (read or write) char device
/// `major:minor`? Returns the deciding allow rule's index when they do.
pub fn opens(rules: &[DeviceRule], major: u32, minor: u32) -> Option<usize> {
    [Access::READ, Access::WRITE].into_iter().find_map(|bit| {
        let verdict = decide(rules, DeviceType::Char, major, minor, bit);
        if verdict.allowed {
            verdict.rule
        } else {
            None
        }
    })
}

/// The access bits of `want` on char `major:minor` the rules do not grant.
pub fn missing(rules: &[DeviceRule], major: u32, minor: u32, want: Access) -> Access {
    let granted = allowed(rules, DeviceType::Char, major, minor);
    Access(want.0 & !granted.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        kind: &str,
        major: Option<u32>,
        minor: Option<u32>,
        access: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind: DeviceType::parse(kind).unwrap(),
            major,
            minor,
            access: Access::parse(access).unwrap(),
        }
    }

    fn deny_all() -> DeviceRule {
        rule(false, "a", None, None, "rwm")
    }

    #[test]
    fn nothing_matching_is_denied() {
        assert_eq!(allowed(&[], DeviceType::Char, 195, 0), Access::NONE);
        assert_eq!(opens(&[deny_all()], 195, 0), None);
    }

    #[test]
    fn exact_allow_grants_only_its_bits() {
        let rules = [deny_all(), rule(true, "c", Some(195), Some(0), "rw")];
        assert_eq!(allowed(&rules, DeviceType::Char, 195, 0), Access::RW);
        assert_eq!(allowed(&rules, DeviceType::Char, 195, 1), Access::NONE);
        assert_eq!(allowed(&rules, DeviceType::Block, 195, 0), Access::NONE);
        assert_eq!(opens(&rules, 195, 0), Some(1));
    }

    #[test]
    fn last_match_wins_per_bit() {
        let rules = [
            deny_all(),
            rule(true, "c", Some(241), None, "rwm"),
            rule(false, "c", Some(241), Some(5), "r"),
        ];
        assert_eq!(
            allowed(&rules, DeviceType::Char, 241, 5),
            Access::parse("wm").unwrap()
        );
        assert_eq!(
            opens(&rules, 241, 5),
            Some(1),
            "write is still allowed by the wildcard"
        );
        assert_eq!(allowed(&rules, DeviceType::Char, 241, 6), Access::ALL);
        let rules = [
            deny_all(),
            rule(true, "c", Some(241), None, "rwm"),
            rule(false, "c", Some(241), Some(5), "rwm"),
        ];
        assert_eq!(opens(&rules, 241, 5), None);
    }

    #[test]
    fn type_a_matches_everything_whatever_it_names() {
        let rules = [rule(true, "a", Some(1), Some(3), "r")];
        assert_eq!(allowed(&rules, DeviceType::Char, 241, 9), Access::ALL);
        let rules = [
            rule(true, "c", Some(195), Some(0), "rw"),
            rule(false, "a", None, None, "r"),
        ];
        assert_eq!(allowed(&rules, DeviceType::Char, 195, 0), Access::NONE);
    }

    #[test]
    fn later_allow_all_reopens_everything() {
        let rules = [deny_all(), rule(true, "a", None, None, "rwm")];
        assert_eq!(opens(&rules, 241, 77), Some(1));
    }

    #[test]
    fn missing_names_the_bits_not_granted() {
        let rules = [deny_all(), rule(true, "c", Some(195), Some(0), "r")];
        assert_eq!(missing(&rules, 195, 0, Access::RW), Access::WRITE);
        assert_eq!(missing(&rules, 195, 0, Access::READ), Access::NONE);
    }

    #[test]
    fn access_parses_only_rwm() {
        assert_eq!(Access::parse(""), Some(Access::ALL));
        assert_eq!(Access::parse("rw"), Some(Access::RW));
        assert_eq!(Access::parse("rx"), None);
        assert_eq!(Access::parse("mr").unwrap().to_string(), "rm");
    }

    #[test]
    fn rules_print_as_the_kernel_writes_them() {
        assert_eq!(
            rule(true, "c", Some(241), None, "rwm").to_string(),
            "allow c 241:* rwm"
        );
        assert_eq!(deny_all().to_string(), "deny a *:* rwm");
        assert_eq!(
            DeviceRule::allow_char(195, 0, Access::RW).device_text(),
            "c 195:0 rw"
        );
    }
}
