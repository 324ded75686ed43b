//! Carry out an [`InjectionPlan`] through a [`Kernel`], all or nothing.
//!
//! Order: open the container root, make missing directories, create or
//! keep each node, then append the cgroup v1 rules. Every change is
//! recorded; on the first failure the recorded changes are undone in
//! reverse (nodes and directories removed, cgroup rules denied again), so a
//! refused container is left as the runtime made it. An existing node is
//! kept only if it is a character device with the planned number; anything
//! else at a node's path (a file, a symlink, another device) is refused.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use crate::kernel::{Dir, Entry, Kernel};
use crate::log::Log;
use crate::plan::InjectionPlan;

/// What a successful run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub created: Vec<String>,
    pub kept: Vec<String>,
    pub cgroup_lines: Vec<String>,
}

enum Undo {
    Dir {
        parent: Dir,
        name: String,
        rel: String,
    },
    Node {
        parent: Dir,
        name: String,
        rel: String,
    },
    Cgroup {
        deny: PathBuf,
        line: String,
    },
}

/// Why the plan could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "cannot open the container root {} in the mount namespace of pid {pid}: {source}; is \
         the hook installed as prestart or createRuntime, and run as root?",
        root.display()
    )]
    OpenRoot {
        root: PathBuf,
        pid: i32,
        source: io::Error,
    },
    /// A step failed; what this run had made is undone (`leftovers`: what
    /// could not be).
    #[error(
        "{why} (container root {}); {}",
        root.display(),
        if leftovers.is_empty() {
            "nothing was changed (what this run had made is removed)".to_string()
        } else {
            format!("cleanup also failed for {}", leftovers.join(", "))
        }
    )]
    Step {
        why: String,
        root: PathBuf,
        leftovers: Vec<String>,
    },
}

/// Why one step failed (before rollback is described).
struct Failure(String);

fn io_failure(what: String, err: io::Error) -> Failure {
    Failure(format!("{what}: {err}"))
}

pub fn apply(
    plan: &InjectionPlan,
    kernel: &mut dyn Kernel,
    log: &mut Log,
) -> Result<Report, ApplyError> {
    let root = kernel
        .open_root(plan.pid, &plan.root)
        .map_err(|source| ApplyError::OpenRoot {
            root: plan.root.clone(),
            pid: plan.pid,
            source,
        })?;
    let mut undo = Vec::new();
    let mut report = Report::default();
    match run(plan, kernel, root, &mut undo, &mut report, log) {
        Ok(()) => Ok(report),
        Err(Failure(why)) => Err(ApplyError::Step {
            why,
            leftovers: rollback(kernel, undo, log),
            root: plan.root.clone(),
        }),
    }
}

fn split(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

fn run(
    plan: &InjectionPlan,
    k: &mut dyn Kernel,
    root: Dir,
    undo: &mut Vec<Undo>,
    report: &mut Report,
    log: &mut Log,
) -> Result<(), Failure> {
    let (uid, gid) = plan.owner;
    let mut dirs: BTreeMap<&str, Dir> = BTreeMap::new();
    dirs.insert("", root);
    for rel in &plan.dirs {
        let (parent_rel, name) = split(rel);
        let parent = dirs[parent_rel];
        let shown = format!("/{rel}");
        let opened = match k.open_dir(root, rel) {
            Ok(Some(dir)) => dir,
            Ok(None) => match k
                .entry(parent, name)
                .map_err(|e| io_failure(format!("cannot examine {shown}"), e))?
            {
                Entry::Missing => {
                    k.mkdir(parent, name, 0o755)
                        .map_err(|e| io_failure(format!("cannot create directory {shown}"), e))?;
                    undo.push(Undo::Dir {
                        parent,
                        name: name.to_string(),
                        rel: rel.clone(),
                    });
                    log.line(format_args!("created directory {shown}"));
                    k.chown(parent, name, uid, gid)
                        .map_err(|e| io_failure(format!("cannot chown {shown}"), e))?;
                    k.open_dir(root, rel)
                        .map_err(|e| io_failure(format!("cannot open {shown}"), e))?
                        .ok_or_else(|| Failure(format!("{shown} vanished after it was created")))?
                }
                Entry::Symlink => {
                    return Err(Failure(format!(
                        "{shown} in the image is a symbolic link that leads nowhere inside the \
                         container root; refusing to follow it"
                    )))
                }
                other => {
                    return Err(Failure(format!(
                        "{shown} is {}, not a directory",
                        describe(other)
                    )))
                }
            },
            Err(err) => {
                return Err(Failure(format!(
                    "{shown} cannot be used as a directory inside the container root ({err}); \
                     an image must not make it a file or a link out of the root"
                )))
            }
        };
        dirs.insert(rel.as_str(), opened);
    }
    for node in &plan.nodes {
        let (parent_rel, name) = split(&node.rel);
        let parent = dirs[parent_rel];
        let shown = format!("/{}", node.rel);
        let want = format!("char {}:{}", node.major, node.minor);
        match k
            .entry(parent, name)
            .map_err(|e| io_failure(format!("cannot examine {shown}"), e))?
        {
            Entry::Missing => {
                k.mknod(parent, name, node.mode, node.major, node.minor)
                    .map_err(|e| io_failure(format!("cannot create {shown} ({want})"), e))?;
                undo.push(Undo::Node {
                    parent,
                    name: name.to_string(),
                    rel: node.rel.clone(),
                });
                k.chown(parent, name, uid, gid)
                    .map_err(|e| io_failure(format!("cannot chown {shown}"), e))?;
                log.line(format_args!("created {shown} {want} mode {:o}", node.mode));
                report.created.push(shown);
            }
            Entry::Char { major, minor } if (major, minor) == (node.major, node.minor) => {
                log.line(format_args!("kept existing {shown} {want}"));
                report.kept.push(shown);
            }
            other => {
                return Err(Failure(format!(
                    "{shown} already exists in the container as {}, not {want}; refusing to \
                     replace it",
                    describe(other)
                )))
            }
        }
    }
    if let Some(cgroup) = &plan.cgroup {
        for line in &cgroup.lines {
            k.write_cgroup(&cgroup.allow, line).map_err(|e| {
                io_failure(
                    format!("cannot write \"{line}\" to {}", cgroup.allow.display()),
                    e,
                )
            })?;
            undo.push(Undo::Cgroup {
                deny: cgroup.deny.clone(),
                line: line.clone(),
            });
            log.line(format_args!("{}: {line}", cgroup.allow.display()));
            report.cgroup_lines.push(line.clone());
        }
    }
    Ok(())
}

fn describe(entry: Entry) -> String {
    match entry {
        Entry::Missing => "missing".into(),
        Entry::Char { major, minor } => format!("char {major}:{minor}"),
        Entry::Directory => "a directory".into(),
        Entry::Symlink => "a symbolic link".into(),
        Entry::Other(what) => what.into(),
    }
}

/// Undo in reverse; returns what could not be undone.
fn rollback(k: &mut dyn Kernel, undo: Vec<Undo>, log: &mut Log) -> Vec<String> {
    let mut left = Vec::new();
    for step in undo.into_iter().rev() {
        let (what, result) = match step {
            Undo::Node { parent, name, rel } => (format!("/{rel}"), k.remove(parent, &name, false)),
            Undo::Dir { parent, name, rel } => (format!("/{rel}"), k.remove(parent, &name, true)),
            Undo::Cgroup { deny, line } => (
                format!("\"{line}\" in {}", deny.display()),
                k.write_cgroup(&deny, &line),
            ),
        };
        match result {
            Ok(()) => log.line(format_args!("rolled back {what}")),
            Err(err) => {
                log.line(format_args!("rollback of {what} failed: {err}"));
                left.push(format!("{what} ({err})"));
            }
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::recording::{Op, Recording};
    use crate::plan::{CgroupWrite, PlannedNode};

    fn plan(cgroup: bool) -> InjectionPlan {
        let node = |rel: &str, major, minor, mode| PlannedNode {
            rel: rel.into(),
            major,
            minor,
            mode,
        };
        InjectionPlan {
            pid: 7,
            root: "/r".into(),
            owner: (100, 200),
            dirs: vec!["dev".into(), "dev/nvidia-caps".into()],
            nodes: vec![
                node("dev/nvidia0", 195, 0, 0o666),
                node("dev/nvidia-caps/nvidia-cap12", 241, 12, 0o444),
                node("dev/nvidia-caps/nvidia-cap13", 241, 13, 0o444),
            ],
            cgroup: cgroup.then(|| CgroupWrite {
                allow: "/cg/devices.allow".into(),
                deny: "/cg/devices.deny".into(),
                lines: vec![
                    "c 195:0 rw".into(),
                    "c 241:12 rw".into(),
                    "c 241:13 rw".into(),
                ],
            }),
        }
    }

    fn with_dev() -> Recording {
        let mut k = Recording::default();
        k.entries.insert("dev".into(), Entry::Directory);
        k
    }

    #[test]
    fn creates_dirs_nodes_owner_then_cgroup() {
        let mut k = with_dev();
        let report = apply(&plan(true), &mut k, &mut Log::none()).unwrap();
        assert_eq!(
            k.ops,
            [
                Op::Mkdir("dev/nvidia-caps".into()),
                Op::Chown("dev/nvidia-caps".into(), 100, 200),
                Op::Mknod("dev/nvidia0".into(), 0o666, 195, 0),
                Op::Chown("dev/nvidia0".into(), 100, 200),
                Op::Mknod("dev/nvidia-caps/nvidia-cap12".into(), 0o444, 241, 12),
                Op::Chown("dev/nvidia-caps/nvidia-cap12".into(), 100, 200),
                Op::Mknod("dev/nvidia-caps/nvidia-cap13".into(), 0o444, 241, 13),
                Op::Chown("dev/nvidia-caps/nvidia-cap13".into(), 100, 200),
                Op::Cgroup("/cg/devices.allow".into(), "c 195:0 rw".into()),
                Op::Cgroup("/cg/devices.allow".into(), "c 241:12 rw".into()),
                Op::Cgroup("/cg/devices.allow".into(), "c 241:13 rw".into()),
            ]
        );
        assert_eq!(report.created.len(), 3);
        assert_eq!(report.cgroup_lines.len(), 3);
    }

    #[test]
    fn a_correct_existing_node_is_kept() {
        let mut k = with_dev();
        k.entries.insert(
            "dev/nvidia0".into(),
            Entry::Char {
                major: 195,
                minor: 0,
            },
        );
        let report = apply(&plan(false), &mut k, &mut Log::none()).unwrap();
        assert_eq!(report.kept, ["/dev/nvidia0"]);
        assert!(!k
            .ops
            .iter()
            .any(|op| matches!(op, Op::Mknod(p, ..) if p == "dev/nvidia0")));
    }

    #[test]
    fn a_wrong_existing_entry_is_refused_and_everything_rolled_back() {
        for wrong in [
            Entry::Char {
                major: 241,
                minor: 99,
            },
            Entry::Symlink,
            Entry::Other("a regular file"),
            Entry::Directory,
        ] {
            let mut k = with_dev();
            k.entries
                .insert("dev/nvidia-caps/nvidia-cap13".into(), wrong);
            let err = apply(&plan(true), &mut k, &mut Log::none())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("/dev/nvidia-caps/nvidia-cap13 already exists"),
                "{err}"
            );
            assert!(err.contains("nothing was changed"), "{err}");
            assert_eq!(
                k.ops[k.ops.len() - 3..],
                [
                    Op::Remove("dev/nvidia-caps/nvidia-cap12".into()),
                    Op::Remove("dev/nvidia0".into()),
                    Op::Remove("dev/nvidia-caps".into()),
                ]
            );
            assert!(!k.ops.iter().any(|op| matches!(op, Op::Cgroup(..))));
        }
    }

    #[test]
    fn a_failed_cgroup_write_undoes_earlier_rules_and_nodes() {
        let mut k = with_dev();
        k.fail_cgroup = Some(1);
        let err = apply(&plan(true), &mut k, &mut Log::none())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot write \"c 241:12 rw\""), "{err}");
        assert!(k
            .ops
            .contains(&Op::Cgroup("/cg/devices.deny".into(), "c 195:0 rw".into())));
        assert!(!k.entries.contains_key("dev/nvidia0"));
        assert!(!k.entries.contains_key("dev/nvidia-caps"));
        assert_eq!(
            k.entries.get("dev"),
            Some(&Entry::Directory),
            "pre-existing dir kept"
        );
    }

    #[test]
    fn a_failed_mknod_rolls_back() {
        let mut k = with_dev();
        k.fail_mknod = Some(2);
        let err = apply(&plan(false), &mut k, &mut Log::none())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot create /dev/nvidia-caps/nvidia-cap13 (char 241:13)"),
            "{err}"
        );
        assert_eq!(k.entries.len(), 1);
    }

    #[test]
    fn missing_dev_is_made_and_a_dangling_symlink_is_refused() {
        let mut k = Recording::default();
        apply(&plan(false), &mut k, &mut Log::none()).unwrap();
        assert_eq!(k.ops[0], Op::Mkdir("dev".into()));
        let mut k = Recording::default();
        k.entries.insert("dev".into(), Entry::Symlink);
        let err = apply(&plan(false), &mut k, &mut Log::none())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/dev in the image is a symbolic link"),
            "{err}"
        );
        assert!(k.ops.is_empty());
    }
}
