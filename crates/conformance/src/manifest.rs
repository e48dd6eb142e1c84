//! Reading suite manifests: JSON with `{"file": "…"}` references, and YAML fixtures.

use std::path::Path;

use zeval_zobject::Value;

use crate::ConformanceError;

/// Reads and parses a JSON file.
pub fn read_json(path: &Path) -> Result<Value, ConformanceError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConformanceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    zeval_zobject::json::parse(&text).map_err(|e| ConformanceError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Replaces a value that is exactly `{"file": "<relative path>"}` by the contents of that file
/// (resolved against `base`). Other values are returned as they are. Only the value itself is
/// looked at, not its children: the manifests only use references at field level.
pub fn resolve_file_ref(value: &Value, base: &Path) -> Result<Value, ConformanceError> {
    match value.as_object() {
        Some(m) if m.len() == 1 => match m.get("file").and_then(Value::as_str) {
            Some(rel) => read_json(&base.join(rel)),
            None => Ok(value.clone()),
        },
        _ => Ok(value.clone()),
    }
}

/// JSON equality as the suites define it: object key order does not matter, array order
/// does. (`serde_json::Value`'s `==` with `preserve_order` already ignores key order.)
pub fn deep_equal(a: &Value, b: &Value) -> bool {
    a == b
}
