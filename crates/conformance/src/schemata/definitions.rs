//! The data-definitions checks (`../definitions`, and `bad_definitions/`): every `Z<n>.json`
//! is a valid canonical Z2 whose `Z2K2` is valid under the canonical schema of its inferred
//! type, with a ZID outside Z400–Z499; the three index files match what the definitions
//! say.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use zeval_zobject::ident::{is_reference, zid_number};
use zeval_zobject::validate::{Form, has_schema};
use zeval_zobject::{Map, Value, validate};

use crate::{ConformanceError, Report};

use super::compact;

const GROUP: &str = "definitions";

/// Runs the checks over every file of `dir`.
pub(super) fn run(report: &mut Report, dir: &Path) -> Result<(), ConformanceError> {
    let mut files: Vec<(u64, String, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|source| ConformanceError::Io {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_string();
            let is_json = p.extension().is_some_and(|x| x == "json");
            Some((zid_number(&stem)?, stem, p)).filter(|_| is_json)
        })
        .collect();
    files.sort();
    let mut objects = Vec::with_capacity(files.len());
    for (number, zid, path) in &files {
        let text = std::fs::read_to_string(path).map_err(|source| ConformanceError::Io {
            path: path.clone(),
            source,
        })?;
        let id = format!("definitions/{zid}.json");
        match zeval_zobject::json::parse(&text) {
            Ok(object) => {
                let outcome = check_definition(&object, zid);
                report.push(GROUP, id.clone(), id, outcome);
                objects.push((*number, zid.clone(), text, object));
            }
            Err(e) => report.push(GROUP, id.clone(), id, Err(e.to_string())),
        }
    }
    index_checks(report, dir, &objects)
}

/// Valid canonical Z2, valid inner object, ZID outside the test range.
fn check_definition(object: &Value, zid: &str) -> Result<(), String> {
    validate(object, "Z2", Form::Canonical)
        .map_err(|e| format!("not a valid canonical Z2: {}", compact(&e)))?;
    check_inner(object)?;
    check_zid_range(zid)
}

/// The `bad_definitions/` rule: the Z2 check and the inner check must come out as given.
pub(super) fn check_bad_definition(
    object: &Value,
    zid: &str,
    persistent_valid: bool,
) -> Result<(), String> {
    let persistent = validate(object, "Z2", Form::Canonical).is_ok();
    if persistent != persistent_valid {
        return Err(format!(
            "valid as a canonical Z2: {persistent}, expected {persistent_valid}"
        ));
    }
    let inner_valid = check_inner(object).is_ok();
    if inner_valid == persistent_valid {
        return Err(format!(
            "inner object valid: {inner_valid}, expected {}",
            !persistent_valid
        ));
    }
    check_zid_range(zid)
}

/// Validates `Z2K2` under the canonical schema of its inferred type (skipped when there is
/// no schema for that type).
fn check_inner(object: &Value) -> Result<(), String> {
    let inner = object.get("Z2K2").ok_or("no Z2K2")?;
    let schema = match inner {
        Value::String(s) if is_reference(s) => "Z9",
        Value::String(_) => "Z6",
        Value::Array(_) => "LIST",
        _ => match inner.get("Z1K1").and_then(Value::as_str) {
            Some(t) => t,
            None => return Ok(()),
        },
    };
    if !has_schema(schema, Form::Canonical) {
        return Ok(());
    }
    validate(inner, schema, Form::Canonical)
        .map_err(|e| format!("Z2K2 is not a valid canonical {schema}: {}", compact(&e)))
}

fn check_zid_range(zid: &str) -> Result<(), String> {
    match zid_number(zid) {
        Some(n) if (400..500).contains(&n) => Err(format!("{zid} is in the test range Z400–Z499")),
        Some(_) => Ok(()),
        None => Err(format!("{zid} is not a ZID")),
    }
}

type Definition = (u64, String, String, Value);

fn index_checks(
    report: &mut Report,
    dir: &Path,
    objects: &[Definition],
) -> Result<(), ConformanceError> {
    let mut natural = Map::new();
    let mut software = Map::new();
    let mut dependencies = Map::new();
    for (number, zid, text, object) in objects {
        let label = object.get("Z2K1").and_then(|k| k.get("Z6K1")).cloned();
        let inner = object.get("Z2K2");
        if let (true, Some(label), Some(inner)) = ((1001..=1999).contains(number), &label, inner) {
            if let Some(code) = inner.get("Z60K1").and_then(Value::as_str) {
                natural.insert(code.to_string(), label.clone());
            }
            let aliases = inner.get("Z60K2").and_then(Value::as_array);
            // The first element of a benjamin array is the item type, not an alias.
            for alias in aliases
                .into_iter()
                .flatten()
                .skip(1)
                .filter_map(Value::as_str)
            {
                natural.insert(alias.to_string(), label.clone());
            }
        }
        let software_code = inner.and_then(|i| i.get("Z61K1")).and_then(Value::as_str);
        if let (true, Some(label), Some(code)) =
            ((600..=699).contains(number), &label, software_code)
        {
            software.insert(code.to_string(), label.clone());
        }
        let deps = dependencies_of(text, zid);
        if !deps.is_empty() {
            dependencies.insert(zid.clone(), Value::from(deps));
        }
    }
    for (file, expected) in [
        ("naturalLanguages.json", Value::Object(natural)),
        ("softwareLanguages.json", Value::Object(software)),
    ] {
        let actual = crate::manifest::read_json(&dir.join(file))?;
        let outcome = compare_maps(&actual, &expected);
        let id = format!("definitions/{file}");
        report.push(GROUP, id.clone(), id, outcome);
    }
    let actual = crate::manifest::read_json(&dir.join("dependencies.json"))?;
    let every_file_listed = objects
        .iter()
        .find(|(_, zid, _, _)| actual.get(zid.as_str()).is_none())
        .map_or(Ok(()), |(_, zid, _, _)| {
            Err(format!("dependencies.json has no key {zid}"))
        });
    let outcome =
        every_file_listed.and_then(|()| compare_maps(&actual, &Value::Object(dependencies)));
    report.push(
        GROUP,
        "definitions/dependencies.json".into(),
        "definitions/dependencies.json".into(),
        outcome,
    );
    Ok(())
}

fn compare_maps(actual: &Value, expected: &Value) -> Result<(), String> {
    if actual == expected {
        return Ok(());
    }
    let (Some(a), Some(e)) = (actual.as_object(), expected.as_object()) else {
        return Err("not an object".into());
    };
    let mut diffs: BTreeMap<&str, String> = BTreeMap::new();
    for (k, v) in a {
        if e.get(k) != Some(v) {
            diffs.insert(
                k,
                format!(
                    "file {v}, derived {}",
                    e.get(k).map_or("none".into(), Value::to_string)
                ),
            );
        }
    }
    for (k, v) in e {
        if !a.contains_key(k) {
            diffs.insert(k, format!("file none, derived {v}"));
        }
    }
    let shown: Vec<String> = diffs
        .iter()
        .take(5)
        .map(|(k, d)| format!("{k}: {d}"))
        .collect();
    Err(format!(
        "{} keys differ, e.g. {}",
        diffs.len(),
        shown.join("; ")
    ))
}

/// ZIDs named by `"Z1K1"`, `"Z3K1"` or `"Z11K1"` in the file text (the regex
/// `"Z(?:1|3|11)K1":\s?"(Z[1-9]\d*)"`), minus the core types, the file itself and repeats.
fn dependencies_of(text: &str, own: &str) -> Vec<String> {
    const DROPPED: [&str; 16] = [
        "Z1", "Z2", "Z3", "Z4", "Z5", "Z6", "Z7", "Z8", "Z9", "Z11", "Z12", "Z22", "Z31", "Z32",
        "Z39", "Z99",
    ];
    let mut out: Vec<String> = Vec::new();
    let bytes = text.as_bytes();
    let mut found: Vec<(usize, String)> = Vec::new();
    for key in ["\"Z1K1\":", "\"Z3K1\":", "\"Z11K1\":"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(key) {
            let start = from + at;
            from = start + key.len();
            let mut i = from;
            if bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
                i += 1;
            }
            if bytes.get(i) != Some(&b'"') {
                continue;
            }
            let rest = &text[i + 1..];
            let Some(end) = rest.find('"') else { continue };
            let candidate = &rest[..end];
            if zeval_zobject::ident::is_zid(candidate) {
                found.push((start, candidate.to_string()));
            }
        }
    }
    found.sort();
    for (_, zid) in found {
        if zid != own && !DROPPED.contains(&zid.as_str()) && !out.contains(&zid) {
            out.push(zid);
        }
    }
    out
}
