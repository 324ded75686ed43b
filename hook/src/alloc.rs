//! Allocation and claims: `any` / `any:<profile>` picks a MIG device no
//! live container holds; every injection claims its device in the
//! [`Ledger`] before anything is changed, and is refused when another
//! live container holds it (unless the operator allows sharing).
//!
//! Candidates are the MIG devices of the spec folders (the same catalog a
//! named request resolves in), one per device however many names it has,
//! in a fixed order: lowest GPU minor, then MIG index (from an index name,
//! `0:1` or `mig0:1`; UUID-only specs fall back to the name). The profile
//! comes from the device's `MIG_CDI_PROFILE` env, which mig-cdi-gen writes.

use mig_cdi_core::cdi::folders::{Catalog, Pick};
use mig_cdi_core::cdi::view::SpecDevice;
use mig_cdi_core::paths::{classify, NodePath};

use crate::error::HookError;
use crate::host::Host;
use crate::lease::{self, DeviceKey, Holder, Lease, Ledger, Liveness};
use crate::request::{Request, Wanted as Asked};
use crate::resolve::{Resolved, DEFAULT_KIND};

/// The env entry of a MIG device that names its profile (mig-cdi-gen
/// writes it).
pub use mig_cdi_core::cdi::render::PROFILE_ENV;
/// At most this many holders are named in a refusal.
const NAMED_HOLDERS: usize = 8;

/// Why no device can be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    #[error(
        "{device} is held by container {} (pid {}, since {}); stop that container, pick \
         another device (`mig-cdi-hook leases` lists the holders), or ask for any free one \
         with NVIDIA_VISIBLE_DEVICES=any{}",
        holder.container, holder.pid, lease::rfc3339(*since), profile_suffix(profile)
    )]
    Held {
        device: String,
        holder: Holder,
        since: u64,
        profile: Option<String>,
    },
    #[error(
        "no free MIG device{}: {total} exist{} and live containers hold {}{}; wait for one \
         to stop or ask for another profile (`mig-cdi-gen list` shows them)",
        profile.as_deref().map(|p| format!(" of profile {p}")).unwrap_or_default(),
        if *total == 1 { "s" } else { "" },
        if holders.is_empty() { "none".to_string() } else { holders.join(", ") },
        if *more > 0 { format!(" and {more} more") } else { String::new() }
    )]
    NoneFree {
        profile: Option<String>,
        total: usize,
        /// `0:1 (container abc, pid 12)`.
        holders: Vec<String>,
        more: usize,
    },
    #[error(
        "no MIG device of profile {profile} in {dirs}{known}; `mig-cdi-gen list` shows the \
         devices and profiles"
    )]
    NoProfile {
        profile: String,
        dirs: String,
        /// `(profiles there: 1g.18gb, 3g.71gb)`.
        known: String,
    },
    #[error(
        "any:{profile} needs the MIG profile of each device, and the specs in {dirs} do not \
         carry it ({PROFILE_ENV}); regenerate them with `mig-cdi-gen generate`"
    )]
    ProfilesUnknown { profile: String, dirs: String },
    #[error("no MIG device in {dirs}; run `mig-cdi-gen generate` (and `mig-cdi-gen list`)")]
    NoMig { dirs: String },
    #[error("the OCI state names no container id; a lease needs one")]
    NoContainerId,
}

fn profile_suffix(profile: &Option<String>) -> String {
    profile
        .as_deref()
        .map(|p| format!(":{p}"))
        .unwrap_or_default()
}

/// A spec hook that is our own verify or release hook (`mig-cdi-gen
/// generate --hook-path` writes them): what the hook and the runtime
/// wrapper do themselves, so neither counts it as an edit to apply.
pub fn is_lease_hook(hook: &serde_json::Value) -> bool {
    let args = hook["args"].as_array();
    let arg = |i: usize| args.and_then(|a| a.get(i)).and_then(|v| v.as_str());
    arg(0).is_some_and(|a| a.rsplit('/').next() == Some("mig-cdi-hook"))
        && matches!(arg(1), Some("verify" | "poststop"))
}

/// A spec env entry that only says the device's profile.
pub fn is_profile_env(entry: &str) -> bool {
    entry
        .strip_prefix(PROFILE_ENV)
        .is_some_and(|rest| rest.starts_with('='))
}

/// A MIG device's key from its spec nodes (`None`: not a MIG device).
pub fn device_key(device: &SpecDevice) -> Option<DeviceKey> {
    let mut gpu = None;
    let mut caps = Vec::new();
    for node in &device.nodes {
        match classify(&node.path) {
            NodePath::Gpu(minor) => gpu = Some(node.minor.unwrap_or(minor)),
            NodePath::Cap(minor) => caps.push(node.minor.unwrap_or(minor)),
            _ => {}
        }
    }
    caps.sort_unstable();
    caps.dedup();
    (!caps.is_empty()).then_some(DeviceKey { gpu: gpu?, caps })
}

/// The profile a spec device declares.
pub fn profile(device: &SpecDevice) -> Option<String> {
    device.edits.env.iter().find_map(|entry| {
        entry
            .strip_prefix(PROFILE_ENV)
            .and_then(|rest| rest.strip_prefix('='))
            .map(str::to_string)
    })
}

/// One MIG device of the catalog.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub key: DeviceKey,
    pub profile: Option<String>,
    pub device: Resolved,
    order: (u32, u32, String),
}

/// The MIG index in an index name: `0:1` and `mig0:1` give 1.
fn mig_index(name: &str) -> Option<u32> {
    let (gpu, mig) = name.strip_prefix("mig").unwrap_or(name).split_once(':')?;
    gpu.parse::<u32>().ok()?;
    mig.parse().ok()
}

/// Every MIG device of `catalog`'s default kind, in allocation order.
pub fn candidates(catalog: &Catalog<SpecDevice>) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for name in catalog.names(DEFAULT_KIND) {
        let Pick::One { chosen, .. } = catalog.get(DEFAULT_KIND, name) else {
            continue;
        };
        let device = chosen.item;
        let Some(key) = device_key(device) else {
            continue;
        };
        let index = mig_index(name);
        match out.iter_mut().find(|c| c.key == key) {
            Some(c) => {
                c.device.names.push(name.to_string());
                if let Some(index) = index {
                    c.order.1 = c.order.1.min(index);
                }
                c.profile = c.profile.take().or_else(|| profile(device));
            }
            None => out.push(Candidate {
                order: (key.gpu, index.unwrap_or(u32::MAX), name.to_string()),
                key,
                profile: profile(device),
                device: Resolved::new(vec![name.to_string()], device.clone()),
            }),
        }
    }
    out.sort_by(|a, b| a.order.cmp(&b.order));
    out
}

fn dirs_text(catalog: &Catalog<SpecDevice>) -> String {
    catalog
        .dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a claim is for.
pub struct Claim<'a> {
    pub holder: &'a Holder,
    /// `hook`, `runtime`, `verify`.
    pub by: &'static str,
    /// A named device another live container holds may be given too.
    pub share: bool,
}

/// The leases that still hold, with stale ones dropped from `leases`.
fn prune(host: &dyn Host, leases: &mut Vec<Lease>) {
    leases.retain(|l| lease::liveness(host, l) == Liveness::Live);
}

/// Pick the first free candidate of `profile` (any profile when `None`)
/// and lease it to the claim's holder, in one locked step.
pub fn allocate(
    host: &dyn Host,
    ledger: &mut dyn Ledger,
    catalog: &Catalog<SpecDevice>,
    wanted_profile: Option<&str>,
    claim: &Claim<'_>,
) -> Result<(Candidate, Lease), HookError> {
    let all = candidates(catalog);
    if all.is_empty() {
        return Err(AllocError::NoMig {
            dirs: dirs_text(catalog),
        }
        .into());
    }
    let pool: Vec<&Candidate> = match wanted_profile {
        None => all.iter().collect(),
        Some(p) => {
            if all.iter().all(|c| c.profile.is_none()) {
                return Err(AllocError::ProfilesUnknown {
                    profile: p.into(),
                    dirs: dirs_text(catalog),
                }
                .into());
            }
            let pool: Vec<&Candidate> = all
                .iter()
                .filter(|c| c.profile.as_deref() == Some(p))
                .collect();
            if pool.is_empty() {
                let mut known: Vec<&str> =
                    all.iter().filter_map(|c| c.profile.as_deref()).collect();
                known.sort_unstable();
                known.dedup();
                return Err(AllocError::NoProfile {
                    profile: p.into(),
                    dirs: dirs_text(catalog),
                    known: format!(" (profiles there: {})", known.join(", ")),
                }
                .into());
            }
            pool
        }
    };
    let mut picked: Option<(Candidate, Lease)> = None;
    ledger.update(&mut |leases| {
        prune(host, leases);
        // Asked again for the same container (a hook run twice): the
        // device it holds already.
        let free = pool
            .iter()
            .find(|c| {
                leases
                    .iter()
                    .any(|l| l.device == c.key && l.container == claim.holder.container)
            })
            .or_else(|| {
                pool.iter()
                    .find(|c| !leases.iter().any(|l| l.device == c.key))
            });
        let Some(candidate) = free else {
            let held: Vec<String> = pool
                .iter()
                .filter_map(|c| {
                    let l = leases.iter().find(|l| l.device == c.key)?;
                    Some(format!(
                        "{} (container {}, pid {})",
                        c.device.device.name, l.container, l.pid
                    ))
                })
                .collect();
            return Err(AllocError::NoneFree {
                profile: wanted_profile.map(str::to_string),
                total: pool.len(),
                more: held.len().saturating_sub(NAMED_HOLDERS),
                holders: held.into_iter().take(NAMED_HOLDERS).collect(),
            }
            .into());
        };
        let wanted = Wanted {
            key: candidate.key.clone(),
            name: candidate.device.qualified(),
            profile: candidate.profile.clone(),
        };
        let lease = record(leases, &wanted, claim, false);
        picked = Some(((*candidate).clone(), lease));
        Ok(())
    })?;
    Ok(picked.expect("set by a successful update"))
}

/// Insert or refresh the holder's lease of the device (a runtime's lease
/// taken before the container's process existed moves to that process).
fn record(leases: &mut Vec<Lease>, wanted: &Wanted, claim: &Claim<'_>, shared: bool) -> Lease {
    let holder = claim.holder;
    if let Some(existing) = leases
        .iter_mut()
        .find(|l| l.device == wanted.key && l.container == holder.container)
    {
        existing.pid = holder.pid;
        existing.start = holder.start;
        if existing.profile.is_none() {
            existing.profile = wanted.profile.clone();
        }
        return existing.clone();
    }
    let lease = Lease {
        device: wanted.key.clone(),
        name: wanted.name.clone(),
        profile: wanted.profile.clone(),
        container: holder.container.clone(),
        pid: holder.pid,
        start: holder.start,
        since: lease::now(),
        by: claim.by.to_string(),
        shared,
    };
    leases.push(lease.clone());
    lease
}

/// What a claim leases: the device, the name it goes by, its profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub key: DeviceKey,
    pub name: String,
    pub profile: Option<String>,
}

impl Wanted {
    /// A resolved spec device; `None` when it is not a MIG device (whole
    /// GPUs are not leased).
    pub fn of(device: &Resolved) -> Option<Self> {
        Some(Self {
            key: device_key(&device.device)?,
            name: device.qualified(),
            profile: profile(&device.device),
        })
    }
}

/// Lease a named device (or the one a container's config already has) to
/// the claim's holder; refused when another live container holds it and
/// sharing is off.
pub fn claim(
    host: &dyn Host,
    ledger: &mut dyn Ledger,
    wanted: &Wanted,
    claim: &Claim<'_>,
) -> Result<Lease, HookError> {
    let mut out = None;
    ledger.update(&mut |leases| {
        prune(host, leases);
        let other = leases
            .iter()
            .find(|l| l.device == wanted.key && l.container != claim.holder.container);
        if let Some(other) = other {
            if !claim.share {
                return Err(AllocError::Held {
                    device: wanted.name.clone(),
                    holder: other.holder(),
                    since: other.since,
                    profile: wanted.profile.clone(),
                }
                .into());
            }
        }
        let shared = claim.share && other.is_some();
        out = Some(record(leases, wanted, claim, shared));
        Ok(())
    })?;
    Ok(out.expect("set by a successful update"))
}

/// The device a request gets, leased: `any` allocates, a name (or `all`)
/// resolves through the catalog and claims. A whole GPU is not leased.
pub fn give(
    host: &dyn Host,
    ledger: &mut dyn Ledger,
    catalog: &Catalog<SpecDevice>,
    request: &Request,
    claim: &Claim<'_>,
) -> Result<(Resolved, Option<Lease>), HookError> {
    if let Asked::Any { profile } = &request.wanted {
        let (candidate, lease) = allocate(host, ledger, catalog, profile.as_deref(), claim)?;
        return Ok((candidate.device, Some(lease)));
    }
    let device = crate::resolve::resolve(catalog, request)?;
    let lease = match Wanted::of(&device) {
        Some(wanted) => Some(self::claim(host, ledger, &wanted, claim)?),
        None => None,
    };
    Ok((device, lease))
}

/// Drop `container`'s leases (all of them, or only of `key`). Returns how
/// many were dropped.
pub fn release(
    ledger: &mut dyn Ledger,
    container: &str,
    key: Option<&DeviceKey>,
) -> Result<usize, HookError> {
    let mut dropped = 0;
    ledger.update(&mut |leases| {
        let before = leases.len();
        leases.retain(|l| l.container != container || key.is_some_and(|k| *k != l.device));
        dropped = before - leases.len();
        Ok(())
    })?;
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::FakeHost;
    use crate::lease::MemoryLedger;
    use crate::log::Log;
    use crate::request::Wanted as Req;
    use std::path::PathBuf;

    fn spec() -> String {
        let device = |name: &str, gpu: u32, gi: u32, ci: u32, profile: &str| {
            format!(
                r#"{{"name": "{name}", "containerEdits": {{"env": ["MIG_CDI_PROFILE={profile}"],
                "deviceNodes": [
                {{"path": "/dev/nvidia{gpu}", "type": "c", "major": 195, "minor": {gpu}}},
                {{"path": "/dev/nvidia-caps/nvidia-cap{gi}", "type": "c", "major": 241, "minor": {gi}}},
                {{"path": "/dev/nvidia-caps/nvidia-cap{ci}", "type": "c", "major": 241, "minor": {ci}}}]}}}}"#
            )
        };
        let devices = [
            device("1:0", 1, 30, 31, "1g.18gb"),
            device("0:1", 0, 21, 22, "1g.18gb"),
            device("MIG-bbbb", 0, 21, 22, "1g.18gb"),
            device("0:0", 0, 12, 13, "3g.71gb"),
        ];
        format!(
            r#"{{"cdiVersion": "0.5.0", "kind": "nvidia.com/gpu", "devices": [{}]}}"#,
            devices.join(",")
        )
    }

    fn catalog(host: &FakeHost) -> Catalog<SpecDevice> {
        crate::resolve::load(host, &[PathBuf::from("/cdi")], &Req::All, &mut Log::none())
    }

    fn holder(container: &str, pid: i32) -> Holder {
        Holder {
            container: container.into(),
            pid,
            start: 100 + pid as u64,
        }
    }

    fn host() -> FakeHost {
        let mut host = FakeHost::h200();
        host.write("/cdi/nvidia.com-gpu.json", spec());
        for pid in 1..10 {
            host.processes.insert(pid, 100 + pid as u64);
        }
        host
    }

    fn by(holder: &Holder) -> Claim<'_> {
        Claim {
            holder,
            by: "hook",
            share: false,
        }
    }

    #[test]
    fn order_is_gpu_minor_then_mig_index_and_names_of_one_device_merge() {
        let host = host();
        let all = candidates(&catalog(&host));
        let names: Vec<_> = all.iter().map(|c| c.device.names.join("=")).collect();
        assert_eq!(names, ["0:0", "0:1=MIG-bbbb", "1:0"]);
        assert_eq!(all[1].profile.as_deref(), Some("1g.18gb"));
    }

    #[test]
    fn any_hands_out_each_device_once_then_names_the_holders() {
        let host = host();
        let catalog = catalog(&host);
        let mut ledger = MemoryLedger::default();
        let mut got = Vec::new();
        for pid in 1..=2 {
            let h = holder(&format!("c{pid}"), pid);
            let (c, _) = allocate(&host, &mut ledger, &catalog, Some("1g.18gb"), &by(&h)).unwrap();
            got.push(c.device.device.name.clone());
        }
        assert_eq!(got, ["0:1", "1:0"]);
        let h = holder("c3", 3);
        let err = allocate(&host, &mut ledger, &catalog, Some("1g.18gb"), &by(&h))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no free MIG device of profile 1g.18gb: 2 exist"),
            "{err}"
        );
        assert!(err.contains("0:1 (container c1, pid 1)"), "{err}");
        // The same container asking again gets its own device back.
        let h = holder("c1", 1);
        let (c, _) = allocate(&host, &mut ledger, &catalog, Some("1g.18gb"), &by(&h)).unwrap();
        assert_eq!(c.device.device.name, "0:1");
        // `any` alone takes the 3g device, the only one left.
        let h = holder("c4", 4);
        let (c, _) = allocate(&host, &mut ledger, &catalog, None, &by(&h)).unwrap();
        assert_eq!(c.device.device.name, "0:0");
    }

    #[test]
    fn a_gone_or_reused_holder_frees_its_device() {
        let mut host = host();
        let catalog = catalog(&host);
        let mut ledger = MemoryLedger::default();
        for pid in 1..=2 {
            let h = holder(&format!("c{pid}"), pid);
            allocate(&host, &mut ledger, &catalog, Some("1g.18gb"), &by(&h)).unwrap();
        }
        host.processes.remove(&1);
        host.processes.insert(2, 999);
        for (pid, want) in [(5, "0:1"), (6, "1:0")] {
            let h = holder(&format!("c{pid}"), pid);
            let (c, _) = allocate(&host, &mut ledger, &catalog, Some("1g.18gb"), &by(&h)).unwrap();
            assert_eq!(c.device.device.name, want);
        }
        assert_eq!(ledger.leases.len(), 2);
    }

    #[test]
    fn unknown_and_unrecorded_profiles_are_explained() {
        let host = host();
        let catalog = catalog(&host);
        let mut ledger = MemoryLedger::default();
        let h = holder("c1", 1);
        let err = allocate(&host, &mut ledger, &catalog, Some("7g.141gb"), &by(&h))
            .unwrap_err()
            .to_string();
        assert!(err.contains("profiles there: 1g.18gb, 3g.71gb"), "{err}");
        let mut bare = FakeHost::h200();
        bare.write(
            "/cdi/nvidia.com-gpu.json",
            spec().replace("MIG_CDI_PROFILE", "OTHER"),
        );
        let err = allocate(
            &bare,
            &mut ledger,
            &crate::resolve::load(&bare, &[PathBuf::from("/cdi")], &Req::All, &mut Log::none()),
            Some("1g.18gb"),
            &by(&h),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("regenerate them"), "{err}");
        assert_eq!(ledger.writes, 0);
    }

    #[test]
    fn a_named_device_held_elsewhere_is_refused_unless_shared() {
        let host = host();
        let catalog = catalog(&host);
        let mut ledger = MemoryLedger::default();
        let device = Wanted::of(&candidates(&catalog).remove(1).device).unwrap();
        assert_eq!(device.profile.as_deref(), Some("1g.18gb"));
        let (a, b) = (holder("a", 1), holder("b", 2));
        claim(&host, &mut ledger, &device, &by(&a)).unwrap();
        let err = claim(&host, &mut ledger, &device, &by(&b))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is held by container a (pid 1"), "{err}");
        let share = Claim {
            share: true,
            ..by(&b)
        };
        let lease = claim(&host, &mut ledger, &device, &share).unwrap();
        assert!(lease.shared);
        assert_eq!(release(&mut ledger, "a", None).unwrap(), 1);
        assert_eq!(release(&mut ledger, "a", None).unwrap(), 0);
        assert_eq!(ledger.leases.len(), 1);
    }
}
