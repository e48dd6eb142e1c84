//! [`DirSource`]: a directory of canonical Z2 files, one per ZID (`Z123.json`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use zeval_zobject::Value;
use zeval_zobject::ident::{is_zid, zid_number};

use crate::{ObjectSource, StoreError};

/// Reads `<dir>/<ZID>.json` on every fetch (wrap it in a [`crate::SharedCache`] to keep
/// objects in memory).
///
/// Files are served as they are: the ZID comes from the file name, not from `Z2K1`, so a
/// fixture whose `Z2K1` disagrees with its name (the conformance suite has two) is served
/// unchanged. Only well-formed ZIDs (`Z[1-9][0-9]*`) are looked up, so a requested "ZID"
/// can never name a path outside the directory.
#[derive(Debug, Clone)]
pub struct DirSource {
    dir: PathBuf,
}

impl DirSource {
    /// A source over `dir`, which must be an existing directory.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(StoreError::Io {
                path: dir.display().to_string(),
                message: "not a directory".into(),
            });
        }
        Ok(Self { dir })
    }

    /// The directory read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path that holds `zid`'s object (whether or not it exists).
    pub fn path_of(&self, zid: &str) -> PathBuf {
        self.dir.join(format!("{zid}.json"))
    }

    /// Every ZID that has a file in the directory, in numeric order. Other files are ignored.
    pub fn zids(&self) -> Result<Vec<String>, StoreError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, &e))?;
        let mut zids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&self.dir, &e))?;
            let name = entry.file_name();
            let Some(zid) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if is_zid(zid) {
                zids.push(zid.to_string());
            }
        }
        zids.sort_by_key(|z| zid_number(z));
        Ok(zids)
    }

    /// Reads and parses one file; `Ok(None)` when there is no file for `zid`.
    pub fn read(&self, zid: &str) -> Result<Option<Value>, StoreError> {
        if !is_zid(zid) {
            return Ok(None);
        }
        read_object_file(&self.path_of(zid))
    }
}

impl ObjectSource for DirSource {
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
        let mut found = HashMap::new();
        for zid in zids {
            if found.contains_key(zid) {
                continue;
            }
            if let Some(object) = self.read(zid)? {
                found.insert(zid.clone(), object);
            }
        }
        Ok(found)
    }
}

/// Reads a JSON object file with the depth-bounded ZObject parser; `Ok(None)` if it does not
/// exist.
pub fn read_object_file(path: &Path) -> Result<Option<Value>, StoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, &e)),
    };
    zeval_zobject::json::parse(&text)
        .map(Some)
        .map_err(|e| StoreError::Invalid(format!("{}: {e}", path.display())))
}

fn io_error(path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn fetches_present_zids_and_omits_missing_ones() {
        let dir = dir_with(&[(
            "Z10001.json",
            r#"{"Z1K1":"Z2","Z2K1":{"Z1K1":"Z6","Z6K1":"Z10001"}}"#,
        )]);
        let source = DirSource::new(dir.path()).unwrap();
        let found = source.fetch(&["Z10001".into(), "Z10002".into()]).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found["Z10001"]["Z1K1"], "Z2");
    }

    #[test]
    fn serves_a_file_whose_z2k1_disagrees_with_its_name() {
        let dir = dir_with(&[(
            "Z88404.json",
            r#"{"Z1K1":"Z2","Z2K1":{"Z1K1":"Z6","Z6K1":"Z88403"}}"#,
        )]);
        let source = DirSource::new(dir.path()).unwrap();
        let found = source.fetch(&["Z88404".into()]).unwrap();
        assert_eq!(found["Z88404"]["Z2K1"]["Z6K1"], "Z88403");
    }

    #[test]
    fn never_reads_outside_the_directory() {
        let outer = dir_with(&[("secret.json", "{}")]);
        std::fs::create_dir(outer.path().join("inner")).unwrap();
        let source = DirSource::new(outer.path().join("inner")).unwrap();
        let found = source
            .fetch(&["../secret".into(), "Z0".into(), "z1".into()])
            .unwrap();
        assert!(found.is_empty());
    }

    #[test]
    fn a_broken_file_is_an_invalid_error_naming_the_file() {
        let dir = dir_with(&[("Z5.json", "{not json")]);
        let source = DirSource::new(dir.path()).unwrap();
        let err = source.fetch(&["Z5".into()]).unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains("Z5.json")),
            "{err}"
        );
    }

    #[test]
    fn lists_zids_in_numeric_order_and_ignores_other_files() {
        let dir = dir_with(&[
            ("Z10.json", "{}"),
            ("Z9.json", "{}"),
            ("README.md", ""),
            ("Z802_true.json", "{}"),
        ]);
        let source = DirSource::new(dir.path()).unwrap();
        assert_eq!(source.zids().unwrap(), ["Z9", "Z10"]);
    }

    #[test]
    fn a_missing_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DirSource::new(dir.path().join("nope")).is_err());
    }
}
