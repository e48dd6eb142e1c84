//! `zeval import`: canonical Z2 files (or directories of them) into the embedded store.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use zeval_store::{Store, z2_id};
use zeval_zobject::{Form, Value};

/// Import canonical Z2 files, or directories of them (every `*.json` inside), into the store
/// at `<data-dir>/zeval.sqlite`. Each object is validated as a canonical Z2 and stored under
/// the ZID its `Z2K1` names, as a new revision. All objects are written in one transaction:
/// if any file is bad, nothing is imported. Objects identical to their stored version are
/// skipped.
#[derive(clap::Args)]
pub(crate) struct ImportCommand {
    /// Files or directories to import.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The data directory (created, with a store seeded from the built-in catalogue, if new).
    #[arg(long, env = "ZEVAL_DATA_DIR", default_value = "./zeval-data")]
    data_dir: PathBuf,
    /// The store's database instead of `<data-dir>/zeval.sqlite`: `postgres://…` or
    /// `sqlite://PATH`.
    #[arg(long, env = "ZEVAL_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// The author recorded on the new revisions.
    #[arg(long, default_value = "import")]
    author: String,
    /// Store objects without validating them as canonical Z2s.
    #[arg(long)]
    no_validate: bool,
    /// The Redis of the servers' shared result cache (`[cache] redis_url`): each imported
    /// object's generation is bumped there, so cached answers that read it miss.
    #[arg(long, env = "ZEVAL_CACHE_REDIS_URL")]
    cache_redis_url: Option<String>,
}

impl ImportCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        let files = collect_files(&self.paths)?;
        let store = super::user::open_store(&self.data_dir, self.database_url.as_deref())?;
        let progress = progress_bar(files.len() as u64, "reading");
        let mut objects: Vec<(String, Value)> = Vec::new();
        let mut problems = Vec::new();
        let mut unchanged = 0;
        let mut read = std::collections::HashSet::new();
        for file in &files {
            progress.set_message(file.display().to_string());
            match self.read_object(file) {
                Ok((zid, object)) => {
                    read.insert(zid.clone());
                    if store.get(&zid)?.as_ref() == Some(&object) {
                        unchanged += 1;
                    } else if objects.iter().any(|(z, _)| *z == zid) {
                        problems.push(format!("{}: {zid} is also in another file", file.display()));
                    } else {
                        objects.push((zid, object));
                    }
                }
                Err(e) => problems.push(format!("{}: {e:#}", file.display())),
            }
            progress.inc(1);
        }
        progress.finish_and_clear();
        if !problems.is_empty() {
            for problem in &problems {
                eprintln!("{problem}");
            }
            eprintln!(
                "nothing imported: {} of {} files are bad",
                problems.len(),
                files.len()
            );
            return Ok(ExitCode::FAILURE);
        }
        store
            .put_all(&objects, &self.author)
            .context("writing the objects")?;
        if let Some(url) = self.cache_redis_url.as_deref().filter(|u| !u.is_empty()) {
            invalidate_cached_answers(url, &objects)?;
        }
        let store = std::sync::Arc::new(store);
        let artifacts = self
            .paths
            .iter()
            .map(|path| import_artifacts(&store, &path.join(super::export::ARTIFACTS_DIR)))
            .sum::<anyhow::Result<usize>>()?;
        if artifacts > 0 {
            println!("imported {artifacts} artifacts");
        }
        for path in &self.paths {
            let (users, approvals) =
                import_users(&store, &path.join(super::export::STORE_DIR), &read)?;
            if users + approvals > 0 {
                println!("imported {users} users and {approvals} approvals");
            }
        }
        compile_implementations(&store, &objects, &self.author);
        println!(
            "imported {} objects ({unchanged} unchanged) into {}",
            objects.len(),
            store.path().map_or_else(
                || format!("the {} store", store.backend()),
                |p| p.display().to_string()
            )
        );
        Ok(ExitCode::SUCCESS)
    }

    fn read_object(&self, file: &Path) -> anyhow::Result<(String, Value)> {
        let object = zeval_store::read_object_file(file)?.context("the file disappeared")?;
        let zid = z2_id(&object)
            .context("not a Z2 with a ZID in Z2K1")?
            .to_string();
        if !self.no_validate {
            zeval_zobject::validate(&object, "Z2", Form::Canonical).map_err(|z5| {
                anyhow::anyhow!("not a valid canonical Z2 ({})", summarize_error(&z5))
            })?;
        }
        Ok((zid, object))
    }
}

/// Adds the users of an export's `store/users.json` (names already taken are left alone)
/// and restores its approvals of objects this import read (whose current revision in this
/// store is the approved content); how many of each.
fn import_users(
    store: &Store,
    dir: &Path,
    read: &std::collections::HashSet<String>,
) -> anyhow::Result<(usize, usize)> {
    let load = |name: &str| -> anyhow::Result<Vec<Value>> {
        let path = dir.join(name);
        if !path.is_file() {
            return Ok(Vec::new());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a JSON list", path.display()))
    };
    let field = |item: &Value, key: &str| -> anyhow::Result<String> {
        item.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("{}: an entry has no {key}", dir.display()))
    };
    let mut users = 0;
    for item in load("users.json")? {
        let record = zeval_store::UserRecord {
            name: field(&item, "name")?,
            role: field(&item, "role")?.parse()?,
            token_sha256: field(&item, "token_sha256")?,
            created_ms: item.get("created_ms").and_then(Value::as_i64).unwrap_or(0),
        };
        if store.restore_user(&record)? {
            users += 1;
        } else {
            eprintln!(
                "user {} is already there (or their token is): left alone",
                record.name
            );
        }
    }
    let mut approvals = 0;
    for item in load("approvals.json")? {
        let zid = field(&item, "zid")?;
        let Some(revision) = store
            .current_revision(&zid)?
            .filter(|_| read.contains(&zid))
        else {
            continue;
        };
        // An export made before approvals kept their function's signature has no such key
        // (`null` is an approval that kept none, suspended where it was exported).
        let before_signatures = item.get("signature").is_none();
        store.restore_approval(
            &zid,
            &zeval_store::Approval {
                revision,
                approved_by: field(&item, "approved_by")?,
                timestamp_ms: item
                    .get("timestamp_ms")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
                signature: item.get("signature").filter(|s| !s.is_null()).cloned(),
            },
            before_signatures,
        )?;
        approvals += 1;
    }
    Ok((users, approvals))
}

/// Stores the artifacts of an export's `artifacts/` directory (when there is one): each
/// `<key>.wasm` (a WebAssembly module, by its magic number) or `<key>.error`, with its
/// `<key>.meta`. Keys are the compiler's content hashes, so an artifact of the same source by
/// the same compiler is found instead of compiled; a different compiler computes other keys
/// and compiles afresh. An artifact runs in the sandbox like any user code; importing one is
/// an administrator's act, like importing the code itself.
fn import_artifacts(store: &Store, dir: &Path) -> anyhow::Result<usize> {
    if !dir.is_dir() {
        return Ok(0);
    }
    let mut imported = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let (Some(key), Some("meta")) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|e| e.to_str()),
        ) else {
            continue;
        };
        if zeval_compiler::ArtifactKey::from_hex(key).is_none() {
            anyhow::bail!("{}: not an artifact key", path.display());
        }
        let meta = std::fs::read_to_string(&path)?;
        let mut lines = meta.lines();
        let (language, compiler) = (
            lines.next().unwrap_or_default(),
            lines.next().unwrap_or_default(),
        );
        let wasm = dir.join(format!("{key}.wasm"));
        let outcome = if wasm.is_file() {
            let bytes = std::fs::read(&wasm)?;
            if !bytes.starts_with(b"\0asm") {
                anyhow::bail!("{}: not a WebAssembly module", wasm.display());
            }
            zeval_store::ArtifactOutcome::Compiled(bytes)
        } else {
            let error = dir.join(format!("{key}.error"));
            zeval_store::ArtifactOutcome::Failed(
                std::fs::read_to_string(&error)
                    .with_context(|| format!("reading {}", error.display()))?,
            )
        };
        store.put_artifact(
            key,
            &zeval_store::StoredArtifact {
                language: language.to_owned(),
                compiler: compiler.to_owned(),
                outcome,
            },
        )?;
        imported += 1;
    }
    Ok(imported)
}

/// Compiles the imported implementations in compiled languages (C, Rust) into the store's
/// artifacts, as a write through the objects API does, and says how each went. A compile
/// error does not fail the import: broken code can be saved, and its calls report the error.
fn compile_implementations(
    store: &std::sync::Arc<Store>,
    objects: &[(String, Value)],
    author: &str,
) {
    let lookup = |zid: &str| -> Option<Value> {
        objects
            .iter()
            .find(|(z, _)| z == zid)
            .map(|(_, object)| object.clone())
            .or_else(|| store.get(zid).ok().flatten())
            .or_else(|| zeval_catalogue::get(zid).cloned())
    };
    let units: Vec<(&String, zeval_compiler::Unit)> = objects
        .iter()
        .filter_map(|(zid, object)| {
            Some((zid, zeval_server::compilation::unit_of(object, lookup)?))
        })
        .collect();
    if units.is_empty() {
        return;
    }
    // The compilers `zeval serve` would use: `ZEVAL_RUST_SYSROOT`, `ZEVAL_CLANG`.
    let mut config = zeval_server::Config::default();
    if let Err(error) = config.apply_env(|name| std::env::var(name).ok()) {
        eprintln!("ignoring the environment's settings: {error}");
    }
    let Some(artifacts) = zeval_server::compilation::artifacts(
        &config,
        Some(std::sync::Arc::new(
            zeval_server::compilation::StoreArtifacts(store.clone()),
        )),
    ) else {
        eprintln!(
            "no compiler found: {} implementations not compiled",
            units.len()
        );
        return;
    };
    for (zid, unit) in units {
        let revision = store.current_revision(zid).ok().flatten().unwrap_or(1);
        let found = artifacts
            .toolchain()
            .key(&unit)
            .and_then(|key| artifacts.lookup(&key))
            .is_some();
        let Some(report) = zeval_server::compilation::compile_revision(
            &artifacts,
            store,
            zid,
            revision,
            &unit,
            author,
            // The operator's own import: every revision has one author ("import"), and a
            // per-editor budget would leave a large library's last artifacts unstored.
            u64::MAX,
        ) else {
            continue;
        };
        match report["status"].as_str() {
            _ if report["stored"] == false => eprintln!(
                "{zid}: {}",
                report["note"]
                    .as_str()
                    .unwrap_or("its artifact could not be stored")
            ),
            Some("compiled") if found => {
                println!("{zid}: artifact found ({})", unit.language.label())
            }
            Some("compiled") => println!("compiled {zid} ({})", unit.language.label()),
            _ => eprintln!(
                "{zid} does not compile: {}",
                report["error"]["Z5K2"].as_str().unwrap_or("unknown error")
            ),
        }
    }
}

/// The error codes of a Z5 tree and the keys it names, e.g. `Z502, Z511; key Z2K3` (the full
/// Z5 of a schema failure runs to kilobytes).
fn summarize_error(z5: &Value) -> String {
    let (mut codes, mut keys) = (Vec::new(), Vec::new());
    let mut stack = vec![z5];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                let code = m.get("Z5K1").and_then(zeval_zobject::build::ref_zid);
                let key = m.get("Z39K1").and_then(zeval_zobject::build::string_value);
                for (found, list) in [(code, &mut codes), (key, &mut keys)] {
                    if let Some(found) = found.filter(|f| !list.contains(f)) {
                        list.push(found);
                    }
                }
                stack.extend(m.values().rev());
            }
            Value::Array(items) => stack.extend(items.iter().rev()),
            _ => {}
        }
    }
    let mut summary = codes.join(", ");
    if !keys.is_empty() {
        summary += &format!("; key {}", keys.join(", "));
    }
    summary
}

/// The files named, with each directory replaced by its `*.json` files in name order.
/// Bumps the generation of every imported object in the shared result cache.
fn invalidate_cached_answers(url: &str, objects: &[(String, Value)]) -> anyhow::Result<()> {
    let settings = zeval_cache::RedisSettings {
        url: url.to_owned(),
        timeout: std::time::Duration::from_secs(2),
        retry_after: std::time::Duration::ZERO,
        dependencies_ttl: std::time::Duration::from_secs(1),
    };
    let backend = zeval_cache::RedisCache::new(settings, None)?;
    let cache =
        zeval_cache::ResultCache::new(Box::new(backend), zeval_cache::Limits::default(), "redis");
    for (zid, _) in objects {
        cache.bump(zid);
    }
    let errors = cache.stats().errors;
    if errors > 0 {
        anyhow::bail!(
            "the objects are imported, but {errors} of {} could not be invalidated in the result \
             cache at {url}: cached answers that read them may be stale until they expire",
            objects.len()
        );
    }
    Ok(())
}

fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .map(|entry| entry.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .with_context(|| format!("reading {}", path.display()))?;
            inside.retain(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"));
            inside.sort();
            files.extend(inside);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            anyhow::bail!("{} is neither a file nor a directory", path.display());
        }
    }
    Ok(files)
}

/// A progress bar on standard error (drawn only when it is a terminal).
pub(crate) fn progress_bar(length: u64, verb: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(length);
    let template = format!("{verb} {{bar:40}} {{pos}}/{{len}} {{wide_msg}}");
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z2(zid: &str, label: &str) -> String {
        serde_json::json!({
            "Z1K1": "Z2",
            "Z2K1": {"Z1K1": "Z6", "Z6K1": zid},
            "Z2K2": "text",
            "Z2K3": {"Z1K1": "Z12", "Z12K1": ["Z11", {"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": label}]}
        })
        .to_string()
    }

    fn import(paths: Vec<PathBuf>, data_dir: &Path) -> ExitCode {
        let command = ImportCommand {
            paths,
            data_dir: data_dir.to_path_buf(),
            database_url: None,
            author: "test".into(),
            no_validate: false,
            cache_redis_url: None,
        };
        command.execute().unwrap()
    }

    #[test]
    fn one_bad_file_imports_nothing_and_good_files_import_once() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        std::fs::create_dir(&input).unwrap();
        std::fs::write(input.join("Z10001.json"), z2("Z10001", "one")).unwrap();
        std::fs::write(input.join("notes.txt"), "ignored").unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(
            &bad,
            r#"{"Z1K1":"Z2","Z2K1":{"Z1K1":"Z6","Z6K1":"Z10002"},"Z2K2":"x"}"#,
        )
        .unwrap();
        let data = dir.path().join("data");

        assert_eq!(import(vec![input.clone(), bad], &data), ExitCode::FAILURE);
        let store = Store::open_in(&data).unwrap();
        assert_eq!(store.get("Z10001").unwrap(), None);
        assert_eq!(store.get("Z10002").unwrap(), None);

        assert_eq!(import(vec![input.clone()], &data), ExitCode::SUCCESS);
        assert_eq!(import(vec![input], &data), ExitCode::SUCCESS);
        let history = store
            .history("Z10001", 0, zeval_store::MAX_HISTORY_REVISIONS)
            .unwrap()
            .revisions;
        assert_eq!(history.len(), 1, "an unchanged object adds no revision");
        assert_eq!(history[0].author, "test");
    }

    #[test]
    fn schema_errors_are_summarized_by_code_and_key() {
        let object: Value =
            serde_json::from_str(r#"{"Z1K1":"Z2","Z2K1":{"Z1K1":"Z6","Z6K1":"Z1"},"Z2K2":"x"}"#)
                .unwrap();
        let z5 = zeval_zobject::validate(&object, "Z2", Form::Canonical).unwrap_err();
        assert_eq!(summarize_error(&z5), "Z502, Z511; key Z2K3");
    }

    #[test]
    fn a_missing_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(collect_files(&[dir.path().join("nope")]).is_err());
    }
}
