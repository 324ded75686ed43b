//! Where runtimes look for CDI specs, and which definition of a device
//! they use.
//!
//! Runtimes read every `*.json` and `*.yaml` file directly in each spec
//! folder — `/etc/cdi`, then `/var/run/cdi` — and a later folder wins: a
//! device defined in `/var/run/cdi` hides the same name in `/etc/cdi`. Two
//! files of one folder that define the same device make it unusable (the
//! runtime cannot tell which is meant). The hook's lookup, `validate
//! --device` and `generate`'s warning about a second file in the output
//! folder all follow these rules, from here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Spec folders, lowest priority first.
pub const DEFAULT_SPEC_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];

/// [`DEFAULT_SPEC_DIRS`] as paths.
pub fn default_spec_dirs() -> Vec<PathBuf> {
    DEFAULT_SPEC_DIRS.iter().map(PathBuf::from).collect()
}

/// Does a runtime read a file of this name as a spec?
pub fn is_spec_file_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("json" | "yaml")
    )
}

/// The spec files directly in `dir`, sorted by name; none when the folder
/// does not exist. Directories are left out; any other entry (a FIFO, a
/// device) is listed, so that reading it says what it is.
pub fn spec_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        // `metadata` follows a symlink (runtimes do) and never blocks.
        if is_spec_file_name(&path) && !path.metadata().is_ok_and(|m| m.is_dir()) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// One file's definition of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition<T> {
    pub file: PathBuf,
    /// Index of the file's folder: higher wins.
    pub priority: usize,
    pub item: T,
}

/// Which definition a runtime uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick<T> {
    /// No file defines the device.
    None,
    /// The one definition of the highest-priority folder, and how many
    /// lower-priority ones it hides.
    One {
        chosen: Definition<T>,
        hidden: usize,
    },
    /// Several files of the highest-priority folder define it.
    Conflict { files: Vec<PathBuf> },
}

/// Apply the priority and conflict rules to every definition of one device.
pub fn pick<T>(definitions: Vec<Definition<T>>) -> Pick<T> {
    let Some(top) = definitions.iter().map(|d| d.priority).max() else {
        return Pick::None;
    };
    let total = definitions.len();
    let mut winners: Vec<Definition<T>> = definitions
        .into_iter()
        .filter(|d| d.priority == top)
        .collect();
    if winners.len() > 1 {
        return Pick::Conflict {
            files: winners.into_iter().map(|d| d.file).collect(),
        };
    }
    let hidden = total - 1;
    match winners.pop() {
        Some(chosen) => Pick::One { chosen, hidden },
        None => Pick::None,
    }
}

/// Every device of a set of folders, by `(kind, name)`, each with all of
/// its definitions; files that could not be read are kept with why.
#[derive(Debug)]
pub struct Catalog<T> {
    pub dirs: Vec<PathBuf>,
    devices: BTreeMap<(String, String), Vec<Definition<T>>>,
    /// `(file, why)` for each file that was not read as a spec.
    pub skipped: Vec<(PathBuf, String)>,
    /// `(folder, why)` for each folder that could not be listed.
    pub unlisted: Vec<(PathBuf, String)>,
}

impl<T> Catalog<T> {
    /// Read every spec file of `dirs` (lowest priority first) with
    /// `decode`, which returns the `(kind, name, item)` of the devices it
    /// keeps from one file, or why the file is not a spec.
    pub fn load(
        dirs: &[PathBuf],
        decode: impl FnMut(&Path) -> Result<Vec<(String, String, T)>, String>,
    ) -> Self {
        Self::load_with(dirs, spec_files, decode)
    }

    /// [`Self::load`] with the folder listing given (a test double's, say).
    pub fn load_with(
        dirs: &[PathBuf],
        mut list: impl FnMut(&Path) -> std::io::Result<Vec<PathBuf>>,
        mut decode: impl FnMut(&Path) -> Result<Vec<(String, String, T)>, String>,
    ) -> Self {
        let mut catalog = Catalog {
            dirs: dirs.to_vec(),
            devices: BTreeMap::new(),
            skipped: Vec::new(),
            unlisted: Vec::new(),
        };
        for (priority, dir) in dirs.iter().enumerate() {
            let files = match list(dir) {
                Ok(files) => files,
                Err(err) => {
                    catalog.unlisted.push((dir.clone(), err.to_string()));
                    continue;
                }
            };
            for file in files {
                match decode(&file) {
                    Ok(devices) => {
                        for (kind, name, item) in devices {
                            catalog
                                .devices
                                .entry((kind, name))
                                .or_default()
                                .push(Definition {
                                    file: file.clone(),
                                    priority,
                                    item,
                                });
                        }
                    }
                    Err(why) => catalog.skipped.push((file, why)),
                }
            }
        }
        catalog
    }

    /// The definition of `kind=name` a runtime would use.
    pub fn get(&self, kind: &str, name: &str) -> Pick<&T> {
        let definitions = self
            .devices
            .get(&(kind.to_string(), name.to_string()))
            .map(|defs| {
                defs.iter()
                    .map(|d| Definition {
                        file: d.file.clone(),
                        priority: d.priority,
                        item: &d.item,
                    })
                    .collect()
            })
            .unwrap_or_default();
        pick(definitions)
    }

    /// Every device name of `kind`, sorted.
    pub fn names(&self, kind: &str) -> Vec<&str> {
        self.devices
            .keys()
            .filter(|(k, _)| k == kind)
            .map(|(_, n)| n.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(file: &str, priority: usize) -> Definition<()> {
        Definition {
            file: file.into(),
            priority,
            item: (),
        }
    }

    #[test]
    fn later_folder_wins_and_same_folder_conflicts() {
        assert_eq!(pick::<()>(vec![]), Pick::None);
        assert_eq!(
            pick(vec![
                def("/etc/cdi/a.json", 0),
                def("/var/run/cdi/b.json", 1)
            ]),
            Pick::One {
                chosen: def("/var/run/cdi/b.json", 1),
                hidden: 1
            }
        );
        assert_eq!(
            pick(vec![def("/etc/cdi/a.json", 0), def("/etc/cdi/b.yaml", 0)]),
            Pick::Conflict {
                files: vec!["/etc/cdi/a.json".into(), "/etc/cdi/b.yaml".into()]
            }
        );
        // A conflict in a lower folder is hidden by a higher definition.
        assert!(matches!(
            pick(vec![def("a", 0), def("b", 0), def("c", 1)]),
            Pick::One { hidden: 2, .. }
        ));
    }

    #[test]
    fn only_json_and_yaml_directly_in_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.yaml", "a.json", "c.yml", "d.txt", "e.JSON"] {
            std::fs::write(dir.path().join(name), "{}").unwrap();
        }
        std::fs::create_dir(dir.path().join("f.json")).unwrap();
        let names: Vec<_> = spec_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.json", "b.yaml"]);
        assert!(spec_files(Path::new("/nonexistent/cdi"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn catalog_keeps_every_definition_and_skipped_files() {
        let etc = tempfile::tempdir().unwrap();
        let run = tempfile::tempdir().unwrap();
        std::fs::write(etc.path().join("a.json"), "x=1").unwrap();
        std::fs::write(etc.path().join("b.json"), "bad").unwrap();
        std::fs::write(run.path().join("c.json"), "x=2").unwrap();
        let dirs = [etc.path().to_path_buf(), run.path().to_path_buf()];
        let catalog = Catalog::load(&dirs, |path| {
            let text = std::fs::read_to_string(path).unwrap();
            match text.split_once('=') {
                Some((name, value)) => Ok(vec![("k/c".into(), name.into(), value.to_string())]),
                None => Err("not a spec".into()),
            }
        });
        assert_eq!(catalog.skipped.len(), 1);
        match catalog.get("k/c", "x") {
            Pick::One { chosen, hidden } => assert_eq!((chosen.item.as_str(), hidden), ("2", 1)),
            other => panic!("{other:?}"),
        }
        assert_eq!(catalog.get("k/c", "y"), Pick::None);
        assert_eq!(catalog.names("k/c"), ["x"]);
    }
}
