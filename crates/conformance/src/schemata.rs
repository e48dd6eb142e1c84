//! The function-schemata suite (`../shared/wikifunctions/schemata`, rules in its README):
//! normalization, canonicalization, schema validation in the three forms, user-defined
//! types, error codes, bad definitions, the function-call checks, and the data definitions.
//!
//! Case ids are `<file>#<section>/<index>` (0-based), e.g. `normal_zobject/Z8.yaml#failure/3`,
//! and `definitions/<file>` for the data definitions.

use std::path::{Path, PathBuf};

use zeval_zobject::build::{failure, success, z9};
use zeval_zobject::validate::{Form, validate_mixed};
use zeval_zobject::{Value, canonicalize, normalize, validate, validate_with_type};

use crate::{ConformanceError, Report};

mod avro;
mod definitions;
mod function_call;

/// Runs every fixture group of the schemata suite in `suite_dir`, and the data-definitions
/// checks over `definitions_dir`.
pub fn run(suite_dir: &Path, definitions_dir: &Path) -> Result<Report, ConformanceError> {
    let mut report = Report::new("schemata");
    run_transform(&mut report, suite_dir, "normalization.yaml", normalize)?;
    run_transform(
        &mut report,
        suite_dir,
        "canonicalization.yaml",
        canonicalize,
    )?;
    for (dir, form) in [
        ("normal_zobject", Some(Form::Normal)),
        ("canonical_zobject", Some(Form::Canonical)),
        ("mixed_zobject", None),
    ] {
        for path in yaml_files(&suite_dir.join(dir))? {
            run_validity(&mut report, suite_dir, &path, form)?;
        }
    }
    for path in yaml_files(&suite_dir.join("normal_user_defined"))? {
        run_user_defined(&mut report, suite_dir, &path)?;
    }
    run_errors(
        &mut report,
        suite_dir,
        "errors/normal_Z2.yaml",
        Form::Normal,
    )?;
    run_errors(
        &mut report,
        suite_dir,
        "errors/canonical_Z2.yaml",
        Form::Canonical,
    )?;
    for (dir, persistent_valid) in [("bad_persistent", false), ("bad_inner", true)] {
        let rel = format!("bad_definitions/{dir}/Z1.json");
        let object = crate::manifest::read_json(&suite_dir.join(&rel))?;
        let outcome = definitions::check_bad_definition(&object, "Z1", persistent_valid);
        report.push("bad_definitions", rel.clone(), rel, outcome);
    }
    function_call::run(&mut report, suite_dir)?;
    definitions::run(&mut report, definitions_dir)?;
    Ok(report)
}

/// Reads a YAML fixture into a `Value`, keeping key order (YAML 1.2: `no` is a string).
pub fn read_yaml(path: &Path) -> Result<Value, ConformanceError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConformanceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_yaml::from_str(&text).map_err(|e| ConformanceError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, ConformanceError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ConformanceError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    Ok(files)
}

fn relative(suite_dir: &Path, path: &Path) -> String {
    path.strip_prefix(suite_dir)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

fn format_error(path: &Path, message: &str) -> ConformanceError {
    ConformanceError::Format {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn section<'a>(doc: &'a Value, name: &str) -> &'a [Value] {
    doc.get("test_objects")
        .and_then(|t| t.get(name))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn case_name(case: &Value, index: usize) -> String {
    case.get("name")
        .and_then(Value::as_str)
        .map_or_else(|| format!("case {index}"), str::to_string)
}

fn compact(v: &Value) -> String {
    let text = serde_json::to_string(v).unwrap_or_default();
    match text.char_indices().nth(600) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// normalization.yaml / canonicalization.yaml: the result wrapped in a normal Z22.
fn run_transform(
    report: &mut Report,
    suite_dir: &Path,
    file: &str,
    transform: fn(&Value) -> Result<Value, Value>,
) -> Result<(), ConformanceError> {
    let doc = read_yaml(&suite_dir.join(file))?;
    let envelope = |object: &Value| match transform(object) {
        Ok(v) => success(v),
        Err(e) => failure(e),
    };
    for (i, case) in section(&doc, "success").iter().enumerate() {
        let (object, expected) = (&case["object"], &case["expected"]);
        let z22 = envelope(object);
        let outcome = if z22["Z22K2"] != z9("Z24") {
            Err(format!("Z22K2 is not void: {}", compact(&z22["Z22K2"])))
        } else if &z22["Z22K1"] != expected {
            Err(format!(
                "Z22K1 {} != expected {}",
                compact(&z22["Z22K1"]),
                compact(expected)
            ))
        } else {
            Ok(())
        };
        report.push(
            file,
            format!("{file}#success/{i}"),
            case_name(case, i),
            outcome,
        );
    }
    for (i, case) in section(&doc, "throws").iter().enumerate() {
        let z22 = envelope(&case["object"]);
        let codes: Vec<&str> = case["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let outcome = check_throws(&z22, &codes);
        report.push(
            file,
            format!("{file}#throws/{i}"),
            case_name(case, i),
            outcome,
        );
    }
    Ok(())
}

fn check_throws(z22: &Value, codes: &[&str]) -> Result<(), String> {
    let metadata_type = zeval_zobject::build::map_type(z9("Z6"), z9("Z1"));
    if z22["Z22K1"] != z9("Z24") {
        return Err(format!("Z22K1 is not void: {}", compact(&z22["Z22K1"])));
    }
    if z22["Z22K2"].get("Z1K1") != Some(&metadata_type) {
        return Err(format!(
            "Z22K2 is not a Z883(Z6, Z1) map: {}",
            compact(&z22["Z22K2"])
        ));
    }
    missing_codes(&z22["Z22K2"], codes)
}

/// Every code must appear as the value of some `Z9K1` inside `value`.
pub(crate) fn missing_codes(value: &Value, codes: &[&str]) -> Result<(), String> {
    let found = z9k1_values(value);
    let missing: Vec<&&str> = codes
        .iter()
        .filter(|c| !found.iter().any(|f| f == *c))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("codes {missing:?} not found in {}", compact(value)))
    }
}

fn z9k1_values(value: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(s)) = m.get("Z9K1") {
                    out.push(s.as_str());
                }
                stack.extend(m.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    out
}

/// normal_zobject/, canonical_zobject/, mixed_zobject/: validity only.
fn run_validity(
    report: &mut Report,
    suite_dir: &Path,
    path: &Path,
    form: Option<Form>,
) -> Result<(), ConformanceError> {
    let doc = read_yaml(path)?;
    let file = relative(suite_dir, path);
    let schema = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    let check = |object: &Value| match form {
        Some(form) => validate(object, &schema, form),
        None => validate_mixed(object),
    };
    for (expect_valid, name) in [(true, "success"), (false, "failure")] {
        for (i, case) in section(&doc, name).iter().enumerate() {
            let outcome = validity_outcome(check(&case["object"]), expect_valid);
            report.push(
                &file,
                format!("{file}#{name}/{i}"),
                case_name(case, i),
                outcome,
            );
        }
    }
    Ok(())
}

fn validity_outcome(result: Result<(), Value>, expect_valid: bool) -> Result<(), String> {
    match (result, expect_valid) {
        (Ok(()), true) | (Err(_), false) => Ok(()),
        (Ok(()), false) => Err("valid, expected invalid".into()),
        (Err(z5), true) => Err(format!("invalid, expected valid: {}", compact(&z5))),
    }
}

/// normal_user_defined/: the schema built from the fixture's Z4.
fn run_user_defined(
    report: &mut Report,
    suite_dir: &Path,
    path: &Path,
) -> Result<(), ConformanceError> {
    let doc = read_yaml(path)?;
    let file = relative(suite_dir, path);
    let z4 = normalize(&doc["test_Z4"]).map_err(|e| {
        format_error(
            path,
            &format!("test_Z4 does not normalize: {}", compact(&e)),
        )
    })?;
    for (expect_valid, name) in [(true, "success"), (false, "failure")] {
        for (i, case) in section(&doc, name).iter().enumerate() {
            let result = validate_with_type(&case["object"], &z4, Form::Normal);
            let outcome = validity_outcome(result, expect_valid);
            report.push(
                &file,
                format!("{file}#{name}/{i}"),
                case_name(case, i),
                outcome,
            );
        }
    }
    Ok(())
}

/// errors/: invalid as a Z2, the listed codes (and the first `js_errors`) present, and the
/// Z5 itself a valid normal Z5.
fn run_errors(
    report: &mut Report,
    suite_dir: &Path,
    file: &str,
    form: Form,
) -> Result<(), ConformanceError> {
    let path = suite_dir.join(file);
    let doc = read_yaml(&path)?;
    let cases = doc["test_objects"]
        .as_array()
        .ok_or_else(|| format_error(&path, "test_objects is not a list"))?;
    for (i, case) in cases.iter().enumerate() {
        let mut codes: Vec<&str> = case["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if let Some(first_js) = case
            .get("js_errors")
            .and_then(|j| j.get(0))
            .and_then(Value::as_str)
        {
            codes.push(first_js);
        }
        let outcome = match validate(&case["object"], "Z2", form) {
            Ok(()) => Err("valid, expected invalid".to_string()),
            Err(z5) => missing_codes(&z5, &codes).and_then(|()| {
                validate(&z5, "Z5", Form::Normal)
                    .map_err(|e| format!("the Z5 is not a valid normal Z5: {}", compact(&e)))
            }),
        };
        report.push(file, format!("{file}#{i}"), case_name(case, i), outcome);
    }
    Ok(())
}
