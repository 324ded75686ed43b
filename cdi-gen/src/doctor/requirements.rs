//! What each MIG-capable GPU needs from the driver, from NVIDIA's MIG user
//! guide, in one table, so a wrong number has one place to be fixed.
//!
//! Sources (read 2026): the guide's "Deployment Considerations" and
//! "Getting Started with MIG" prerequisites,
//! <https://docs.nvidia.com/datacenter/tesla/mig-user-guide/deployment-considerations.html>:
//! A100 and A30 need CUDA 11 and driver 525.53 (R525) or later; B200
//! 570.133.20 (R570); RTX PRO 6000 and 5000 Blackwell 575.51.03 (R575).
//! The per-product table of the guide's 620 release,
//! <https://docs.nvidia.com/datacenter/tesla/mig-user-guide/620/deployment-considerations.html>,
//! adds: H100 525.85.12, H20 535.161.07, H200 550.90.07 (CUDA 12 each);
//! B200 and GB200 570.133.20; B300 580.82.07 with CUDA 12.9; RTX PRO 5000
//! 575.57.08; RTX PRO 4500 575.64; GB300 595.58.03 with CUDA 13. (The
//! current guide's row for H100 and H200, R450 450.80.02, predates Hopper
//! and is not used.) The guide also names a minimum vBIOS for RTX PRO
//! Blackwell; its value was not found in the guide's text available here,
//! so doctor says so instead of checking it.

use std::cmp::Ordering;

/// The driver and CUDA a GPU needs for MIG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigRequirement {
    /// The product line the row is for, as the guide names it.
    pub product: &'static str,
    /// Lowest driver, e.g. `525.53`.
    pub min_driver: &'static str,
    /// Lowest CUDA (driver API) version, `(major, minor)`.
    pub min_cuda: (u32, u32),
    /// The guide asks for a minimum vBIOS too (RTX PRO Blackwell).
    pub vbios_requirement: bool,
}

const fn row(
    product: &'static str,
    min_driver: &'static str,
    min_cuda: (u32, u32),
    vbios_requirement: bool,
) -> MigRequirement {
    MigRequirement {
        product,
        min_driver,
        min_cuda,
        vbios_requirement,
    }
}

/// `(words every one of which the GPU name must contain, requirement)`,
/// most specific first.
const TABLE: &[(&[&str], MigRequirement)] = &[
    (&["GB300"], row("GB300", "595.58.03", (13, 0), false)),
    (&["B300"], row("B300", "580.82.07", (12, 9), false)),
    (&["GB200"], row("B200, GB200", "570.133.20", (12, 0), false)),
    (&["B200"], row("B200, GB200", "570.133.20", (12, 0), false)),
    (
        &["RTX", "PRO", "6000"],
        row("RTX PRO 6000 Blackwell", "575.51.03", (12, 0), true),
    ),
    (
        &["RTX", "PRO", "5000"],
        row("RTX PRO 5000 Blackwell", "575.57.08", (12, 0), true),
    ),
    (
        &["RTX", "PRO", "4500"],
        row("RTX PRO 4500 Blackwell", "575.64", (12, 0), true),
    ),
    (&["H200"], row("H200", "550.90.07", (12, 0), false)),
    (&["H20"], row("H20", "535.161.07", (12, 0), false)),
    (&["GH200"], row("H100 (GH200)", "525.85.12", (12, 0), false)),
    (&["H100"], row("H100", "525.85.12", (12, 0), false)),
    (&["A100"], row("A100 / A30", "525.53", (11, 0), false)),
    (&["A30"], row("A100 / A30", "525.53", (11, 0), false)),
];

/// The row for a GPU named `name` (`NVIDIA H100 80GB HBM3`), matched on
/// whole words (`-` separates words too: `A100-SXM4-80GB`).
pub fn for_gpu(name: &str) -> Option<&'static MigRequirement> {
    let words: Vec<&str> = name
        .split(|c: char| c.is_whitespace() || c == '-')
        .filter(|w| !w.is_empty())
        .collect();
    TABLE
        .iter()
        .find(|(needed, _)| needed.iter().all(|n| words.contains(n)))
        .map(|(_, requirement)| requirement)
}

/// Compare dotted version numbers (`580.159.04` > `580.82.07`); `None`
/// when either is not one.
pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let parse =
        |v: &str| -> Option<Vec<u32>> { v.trim().split('.').map(|p| p.parse().ok()).collect() };
    Some(parse(a)?.cmp(&parse(b)?))
}

/// `"12.4"` -> `(12, 4)`.
pub fn parse_cuda(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_found_by_whole_words() {
        let product = |name| for_gpu(name).map(|r| r.product);
        assert_eq!(product("NVIDIA A100-SXM4-80GB"), Some("A100 / A30"));
        assert_eq!(product("NVIDIA A30"), Some("A100 / A30"));
        assert_eq!(product("NVIDIA H100 80GB HBM3"), Some("H100"));
        assert_eq!(product("NVIDIA H100 NVL"), Some("H100"));
        assert_eq!(product("NVIDIA GH200 480GB"), Some("H100 (GH200)"));
        assert_eq!(product("NVIDIA H200"), Some("H200"));
        assert_eq!(product("NVIDIA H200 NVL"), Some("H200"));
        assert_eq!(product("NVIDIA H20"), Some("H20"));
        assert_eq!(product("NVIDIA B200"), Some("B200, GB200"));
        assert_eq!(
            product("NVIDIA RTX PRO 6000 Blackwell Server Edition"),
            Some("RTX PRO 6000 Blackwell")
        );
        assert_eq!(product("NVIDIA L40S"), None);
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(
            compare_versions("580.159.04", "580.82.07"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare_versions("515.65.01", "525.53"),
            Some(Ordering::Less)
        );
        assert_eq!(compare_versions("525.53", "525.53"), Some(Ordering::Equal));
        assert_eq!(compare_versions("r525", "525.53"), None);
        assert_eq!(parse_cuda("12.4"), Some((12, 4)));
    }
}
