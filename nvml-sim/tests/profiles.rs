//! Every simulated board's GPU-instance profile table, row by row, against
//! the listing it came from: the published `nvidia-smi mig -lgip` rows
//! (memory in GiB as nvidia-smi prints it, SMs, engines, ids, instances),
//! and NVIDIA's MIG user guide's "Supported MIG Profiles" table (names,
//! instance counts, memory and SM fractions, copy engines and media
//! engines) for the rows no listing gave. The sources are named in
//! `src/profiles.rs`; the H200 is compared with the real machine's NVML
//! in `tests/nvml.rs`, the A100-80GB and H100 80GB in the unit tests.

use nvml_sim::profiles::{GiProfile, Model};

/// `nvidia-smi mig -lgip` rows as published: the first line of each
/// profile, and its second line (CE, JPEG, OFA) where the listing had it.
struct Listing {
    model: Model,
    source: &'static str,
    rows: &'static [(&'static str, Option<&'static str>)],
}

const LISTINGS: &[Listing] = &[
    Listing {
        model: Model::A100Sxm4_40Gb,
        source: "NVIDIA MIG user guide, Getting Started (A100-SXM4-40GB)",
        rows: &[
            ("|   0  MIG 1g.5gb        19     7/7        4.75       No     14     0     0   |", Some("|                                                             1     0     0   |")),
            ("|   0  MIG 1g.5gb+me     20     1/1        4.75       No     14     1     0   |", Some("|                                                             1     1     1   |")),
            ("|   0  MIG 1g.10gb       15     4/4        9.62       No     14     1     0   |", Some("|                                                             1     0     0   |")),
            ("|   0  MIG 2g.10gb       14     3/3        9.62       No     28     1     0   |", Some("|                                                             2     0     0   |")),
            ("|   0  MIG 3g.20gb        9     2/2        19.50      No     42     2     0   |", Some("|                                                             3     0     0   |")),
            ("|   0  MIG 4g.20gb        5     1/1        19.50      No     56     2     0   |", Some("|                                                             4     0     0   |")),
            ("|   0  MIG 7g.40gb        0     1/1        39.25      No     98     5     0   |", Some("|                                                             7     1     1   |")),
        ],
    },
    Listing {
        model: Model::A30_24Gb,
        source: "a published A30 listing with all five profiles (R525+)",
        rows: &[
            ("|   0  MIG 1g.6gb        14     4/4        5.81       No     14     1     0   |", Some("|                                                             1     0     0   |")),
            ("|   0  MIG 1g.6gb+me     21     1/1        5.81       No     14     1     0   |", Some("|                                                             1     1     1   |")),
            ("|   0  MIG 2g.12gb        5     2/2        11.69      No     28     2     0   |", Some("|                                                             2     0     0   |")),
            ("|   0  MIG 2g.12gb+me     6     1/1        11.69      No     28     2     0   |", Some("|                                                             2     1     1   |")),
            ("|   0  MIG 4g.24gb        0     1/1        23.44      No     56     4     0   |", Some("|                                                             4     1     1   |")),
        ],
    },
    Listing {
        model: Model::H100Nvl,
        source: "a published H100 NVL listing, driver 560.35.03",
        rows: &[
            ("|   0  MIG 1g.12gb       19     7/7        10.75      No     16     1     0   |", Some("|                                                             1     1     0   |")),
            ("|   0  MIG 1g.12gb+me    20     1/1        10.75      No     16     1     0   |", Some("|                                                             1     1     1   |")),
            ("|   0  MIG 1g.24gb       15     4/4        21.62      No     26     1     0   |", Some("|                                                             1     1     0   |")),
            ("|   0  MIG 2g.24gb       14     3/3        21.62      No     32     2     0   |", Some("|                                                             2     2     0   |")),
            ("|   0  MIG 3g.47gb        9     2/2        46.38      No     60     3     0   |", Some("|                                                             3     3     0   |")),
            ("|   0  MIG 4g.47gb        5     1/1        46.38      No     64     4     0   |", Some("|                                                             4     4     0   |")),
            ("|   0  MIG 7g.94gb        0     1/1        93.12      No     132    7     0   |", Some("|                                                             8     7     1   |")),
        ],
    },
    Listing {
        model: Model::Gh200,
        source: "a published GH200 listing",
        rows: &[
            ("|   0  MIG 1g.12gb       19     7/7        11.00      No     16     1     0   |", Some("|                                                             1     1     0   |")),
            ("|   0  MIG 1g.12gb+me    20     1/1        11.00      No     16     1     0   |", Some("|                                                             1     1     1   |")),
            ("|   0  MIG 1g.24gb       15     4/4        23.00      No     26     1     0   |", Some("|                                                             1     1     0   |")),
            ("|   0  MIG 2g.24gb       14     3/3        23.00      No     32     2     0   |", Some("|                                                             2     2     0   |")),
            ("|   0  MIG 3g.48gb        9     2/2        46.50      No     60     3     0   |", Some("|                                                             3     3     0   |")),
            ("|   0  MIG 4g.48gb        5     1/1        46.50      No     64     4     0   |", Some("|                                                             4     4     0   |")),
            ("|   0  MIG 7g.96gb        0     1/1        93.00      No     132    7     0   |", Some("|                                                             8     7     1   |")),
        ],
    },
    Listing {
        model: Model::B200,
        source: "NVIDIA's B200 listing in mig-parted PR 166 (the rows available here)",
        rows: &[
            ("|   0  MIG 1g.23gb       19     7/7        22.00      No     18     1     0   |", Some("|                                                             2     1     0   |")),
            ("|   0  MIG 1g.23gb+me    20     1/1        22.00      No     18     1     0   |", Some("|                                                             2     1     1   |")),
            ("|   0  MIG 1g.45gb       15     4/4        44.25      No     30     1     0   |", Some("|                                                             2     1     0   |")),
            ("|   0  MIG 2g.45gb       14     3/3        44.25      No     36     2     0   |", Some("|                                                             4     2     0   |")),
        ],
    },
    Listing {
        model: Model::RtxPro6000,
        source: "a published RTX PRO 6000 Blackwell Server Edition listing (1-slice rows)",
        rows: &[
            ("|   0  MIG 1g.24gb         14     4/4        23.12      No     46     1     1   |", Some("|                                                               1     1     0   |")),
            ("|   0  MIG 1g.24gb+me      21     1/1        23.12      No     46     1     1   |", Some("|                                                               1     1     1   |")),
            ("|   0  MIG 1g.24gb+gfx     47     4/4        23.12      No     46     1     1   |", Some("|                                                               1     1     0   |")),
            ("|   0  MIG 1g.24gb+me.all  65     1/1        23.12      No     46     4     4   |", Some("|                                                               1     4     1   |")),
            ("|   0  MIG 1g.24gb-me      67     4/4        23.12      No     46     0     0   |", None),
        ],
    },
];

/// A row of the guide's table: name, fraction of memory, fraction of SMs,
/// copy engines, media engines `(NVDEC, NVENC, JPEG, OFA)` (`None` where the
/// table has no NVENC column), instances.
type GuideRow = (
    &'static str,
    &'static str,
    &'static str,
    u32,
    (u32, Option<u32>, u32, u32),
    u32,
);

/// The guide's rows that no listing here gave (and one listing row's
/// missing second line), per board.
const GUIDE: &[(Model, &[GuideRow])] = &[
    (
        Model::B200,
        &[
            ("3g.90gb", "4/8", "3/7", 6, (1, None, 1, 0), 2),
            ("4g.90gb", "4/8", "4/7", 8, (1, None, 1, 0), 1),
            ("7g.180gb", "Full", "Full", 16, (1, None, 1, 1), 1),
        ],
    ),
    (
        Model::RtxPro6000,
        &[
            ("2g.48gb", "1/2", "1/2", 2, (2, Some(2), 2, 0), 2),
            ("4g.96gb", "Full", "Full", 4, (4, Some(4), 4, 1), 1),
            ("1g.24gb-me", "1/4", "1/4", 1, (0, Some(0), 0, 0), 4),
        ],
    ),
];

fn numbers(line: &str) -> Vec<String> {
    line.trim_matches(|c| c == '|' || c == ' ')
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn gib(mib: u64) -> String {
    format!("{:.2}", mib as f64 / 1024.0)
}

fn profile(model: Model, name: &str) -> &'static GiProfile {
    model
        .profile_by_name(name)
        .unwrap_or_else(|| panic!("{model} has no profile {name}"))
}

#[test]
fn every_listing_row_is_the_table_row() {
    for listing in LISTINGS {
        let model = listing.model;
        for (first, second) in listing.rows {
            // GPU, "MIG", name, id, free/total, GiB, P2P, SM, DEC, ENC
            let f = numbers(first);
            let p = profile(model, &f[2]);
            let total = f[4].split('/').nth(1).unwrap();
            let got = [
                p.id.to_string(),
                p.instances.to_string(),
                gib(p.memory_mib),
                if p.p2p { "Yes" } else { "No" }.to_string(),
                p.sms.to_string(),
                p.dec.to_string(),
                p.enc.to_string(),
            ];
            let want = [&f[3], total, &f[5], &f[6], &f[7], &f[8], &f[9]].map(|s| s.to_string());
            assert_eq!(got, want, "{model} {} ({})", f[2], listing.source);
            if let Some(second) = second {
                let s = numbers(second);
                assert_eq!(
                    [p.ce, p.jpeg, p.ofa].map(|n| n.to_string()).to_vec(),
                    s,
                    "{model} {} CE/JPEG/OFA ({})",
                    f[2],
                    listing.source
                );
            }
        }
    }
}

/// `a/b` or `Full` as a fraction of `total`: `part / total`.
fn is_fraction(text: &str, part: u32, total: u32) -> bool {
    match text.split_once('/') {
        None => text == "Full" && part == total,
        Some((a, b)) => {
            let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
            a * total == b * part
        }
    }
}

#[test]
fn rows_no_listing_gave_follow_the_guide() {
    for (model, rows) in GUIDE {
        for &(name, memory, sms, ce, (dec, enc, jpeg, ofa), instances) in *rows {
            let p = profile(*model, name);
            let what = format!("{model} {name}");
            assert!(
                is_fraction(memory, p.memory_slots, model.memory_slots()),
                "{what} memory"
            );
            assert!(
                is_fraction(sms, p.slices, model.compute_slices()),
                "{what} SMs"
            );
            assert_eq!(
                (p.ce, p.dec, p.jpeg, p.ofa),
                (ce, dec, jpeg, ofa),
                "{what} engines"
            );
            if let Some(enc) = enc {
                assert_eq!(p.enc, enc, "{what} NVENC");
            }
            assert_eq!(p.instances, instances, "{what} instances");
        }
    }
}

/// The guide's profile names per board: the table has exactly these
/// (the RTX PRO 6000's 2g/4g `+gfx`, `+me.all` and `-me` variants are not
/// simulated).
#[test]
fn each_board_has_the_guides_profiles() {
    let boards: &[(Model, &[&str])] = &[
        (
            Model::A30_24Gb,
            &["1g.6gb", "1g.6gb+me", "2g.12gb", "2g.12gb+me", "4g.24gb"],
        ),
        (
            Model::A100Sxm4_40Gb,
            &[
                "1g.5gb",
                "1g.5gb+me",
                "1g.10gb",
                "2g.10gb",
                "3g.20gb",
                "4g.20gb",
                "7g.40gb",
            ],
        ),
        (
            Model::H100Nvl,
            &[
                "1g.12gb",
                "1g.12gb+me",
                "1g.24gb",
                "2g.24gb",
                "3g.47gb",
                "4g.47gb",
                "7g.94gb",
            ],
        ),
        (
            Model::Gh200,
            &[
                "1g.12gb",
                "1g.12gb+me",
                "1g.24gb",
                "2g.24gb",
                "3g.48gb",
                "4g.48gb",
                "7g.96gb",
            ],
        ),
        (
            Model::B200,
            &[
                "1g.23gb",
                "1g.23gb+me",
                "1g.45gb",
                "2g.45gb",
                "3g.90gb",
                "4g.90gb",
                "7g.180gb",
            ],
        ),
        (
            Model::RtxPro6000,
            &[
                "1g.24gb",
                "1g.24gb+me",
                "1g.24gb+gfx",
                "1g.24gb+me.all",
                "1g.24gb-me",
                "2g.48gb",
                "4g.96gb",
            ],
        ),
    ];
    for (model, names) in boards {
        let mut got: Vec<&str> = model.profiles().iter().map(|p| p.name).collect();
        let mut want = names.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{model}");
    }
    assert!(Model::L40S.profiles().is_empty());
}

/// `nvidia-smi mig -lgipp` as published: an A30's (without 2g.12gb+me,
/// whose placements are assumed to be 2g.12gb's) and the H100 NVL's (the
/// same sets as every 8-slot board's).
#[test]
fn placements_follow_the_published_lgipp() {
    let lgipp: &[(Model, &str)] = &[
        (
            Model::A30_24Gb,
            "GPU  0 Profile ID 14 Placements: {0,1,2,3}:1\n\
             GPU  0 Profile ID 21 Placements: {0,1,2,3}:1\n\
             GPU  0 Profile ID  5 Placements: {0,2}:2\n\
             GPU  0 Profile ID  0 Placement : {0}:4",
        ),
        (
            Model::H100Nvl,
            "GPU  0 Profile ID 19 Placements: {0,1,2,3,4,5,6}:1\n\
             GPU  0 Profile ID 20 Placements: {0,1,2,3,4,5,6}:1\n\
             GPU  0 Profile ID 15 Placements: {0,2,4,6}:2\n\
             GPU  0 Profile ID 14 Placements: {0,2,4}:2\n\
             GPU  0 Profile ID  9 Placements: {0,4}:4\n\
             GPU  0 Profile ID  5 Placement : {0}:4\n\
             GPU  0 Profile ID  0 Placement : {0}:8",
        ),
    ];
    for (model, text) in lgipp {
        for line in text.lines() {
            let after = line.split("Profile ID").nth(1).unwrap();
            let (id, rest) = after.split_once("Placement").unwrap();
            let id: u32 = id.trim().parse().unwrap();
            let (starts, size) = rest.split('{').nth(1).unwrap().split_once("}:").unwrap();
            let starts: Vec<u32> = starts.split(',').map(|s| s.parse().unwrap()).collect();
            let p = model.profile_by_id(id).unwrap();
            assert_eq!(
                (p.placements.to_vec(), p.memory_slots),
                (starts, size.trim().parse().unwrap()),
                "{model} profile {id}"
            );
        }
    }
    assert_eq!(
        Model::A30_24Gb
            .profile_by_name("2g.12gb+me")
            .unwrap()
            .placements,
        Model::A30_24Gb
            .profile_by_name("2g.12gb")
            .unwrap()
            .placements
    );
}
