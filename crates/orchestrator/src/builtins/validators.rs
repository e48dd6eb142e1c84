//! The built-in type validators Z201–Z299 (spec §2.5). Most accept everything; Z204
//! (types), Z207 (function calls), Z208 (functions), Z212 and Z232 (multilingual texts and
//! stringsets) check what the schemas cannot.

use zeval_zobject::Value;
use zeval_zobject::build::z6;
use zeval_zobject::error::z5;
use zeval_zobject::ident::parse_key;
use zeval_zobject::validate::list_of_errors;

use crate::engine::{Engine, Fail, R};
use crate::node::{EntriesByKey, Node};

/// Runs validator builtin `id` at run time: the checking ones fail with their finding;
/// every validator returns its argument. `None` if `id` is not a validator builtin.
pub(super) fn run(engine: &Engine<'_>, id: &str, args: &[Node]) -> R<Option<Node>> {
    let Some(n) = zeval_zobject::ident::zid_number(id) else {
        return Ok(None);
    };
    if !(201..=299).contains(&n) || zeval_catalogue::get(id).is_none() {
        return Ok(None);
    }
    let Some(arg) = args.first() else {
        return Ok(Some(Node::void()));
    };
    let subject = arg.get("Z99K1").unwrap_or(arg);
    if let Some(error) = check(engine, id, subject)? {
        return Err(Fail::Error(error));
    }
    Ok(Some(arg.clone()))
}

/// The finding of validator `id` on `subject` (one Z5, or a Z509 of several), if any.
pub(crate) fn check(engine: &Engine<'_>, id: &str, subject: &Node) -> R<Option<Value>> {
    let findings = match id {
        "Z204" => sequential_keys(
            declared_keys(subject.get("Z4K2"), "Z3K2")?,
            subject
                .get("Z4K1")
                .and_then(Node::ref_zid)
                .unwrap_or_default(),
        ),
        "Z208" => sequential_keys(
            declared_keys(subject.get("Z8K1"), "Z17K2")?,
            subject
                .get("Z8K5")
                .and_then(Node::ref_zid)
                .unwrap_or_default(),
        ),
        "Z207" => function_call(engine, subject)?,
        "Z212" => duplicate_languages(
            subject,
            "Z12K1",
            "Z11K1",
            "Z11K1/language element in Z12/Multilingual text",
        )?,
        "Z232" => duplicate_languages(
            subject,
            "Z32K1",
            "Z31K1",
            "Z31K1/language element in Z32/Multilingual stringset",
        )?,
        _ => Vec::new(),
    };
    Ok(match findings.len() {
        0 => None,
        1 => findings.into_iter().next(),
        _ => Some(list_of_errors(findings)),
    })
}

/// The most findings one validator reports: a list built at run time may have any number
/// of items, each wrong.
const MAX_FINDINGS: usize = 100;

/// `text` as a finding quotes it: at most [`crate::engine::QUOTE_CHARS`] characters.
fn quoted(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(crate::engine::QUOTE_CHARS) {
        None => std::borrow::Cow::Borrowed(text),
        Some((end, _)) => std::borrow::Cow::Owned(format!("{}…", &text[..end])),
    }
}

/// The keys the declarations in `list` name under `key`: a step each, and their bytes
/// checked against the memory budget as they are copied (a list built at run time may hold
/// one long key many times).
fn declared_keys(list: Option<&Node>, key: &str) -> R<Vec<String>> {
    let mut keys = Vec::new();
    let mut bytes = 0usize;
    for declaration in list.and_then(Node::list_items).unwrap_or_default() {
        crate::budget::step()?;
        let name = key_of(&declaration, key);
        bytes = bytes.saturating_add(name.len());
        crate::budget::check_reserve(bytes)?;
        keys.push(name);
    }
    Ok(keys)
}

fn key_of(declaration: &Node, key: &str) -> String {
    declaration
        .get(key)
        .map(crate::engine::arg_name)
        .unwrap_or_default()
}

fn z522(message: String) -> Value {
    z5("Z522", [z6(message)])
}

/// Keys must be `K1`/`<identity>K1`, `K2`/…, in order, without repeats.
fn sequential_keys(keys: Vec<String>, identity: &str) -> Vec<Value> {
    let mut findings = Vec::new();
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for (i, k) in keys.iter().enumerate() {
        if findings.len() >= MAX_FINDINGS {
            break;
        }
        // Every earlier key counts, the ones reported as invalid too.
        let repeated = !seen.insert(k.as_str());
        let k = quoted(k);
        let k = k.as_ref();
        let parsed = parse_key(k);
        if let Some((Some(zid), _)) = parsed
            && zid != identity
        {
            findings.push(z522(format!(
                "Invalid key at index {i}: string should start with {identity}"
            )));
            continue;
        }
        if repeated {
            findings.push(z522(format!("Duplicated key at index {i}: {k}")));
        }
        let number = parsed.map(|(_, n)| n);
        if i == 0 {
            if number != Some(1) {
                findings.push(z522(format!(
                    "Invalid key at index 0: {k} (should be K1 or {identity}K1)"
                )));
            }
        } else if number != Some(i as u64 + 1) {
            findings.push(z522(format!("Non-sequential key at index {i}: {k}")));
        }
    }
    findings.truncate(MAX_FINDINGS);
    findings
}

fn duplicate_languages(
    subject: &Node,
    list_key: &str,
    language_key: &str,
    what: &str,
) -> R<Vec<Value>> {
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut seen_bytes = 0usize;
    let mut findings = Vec::new();
    for item in subject
        .get(list_key)
        .and_then(Node::list_items)
        .unwrap_or_default()
    {
        crate::budget::step()?;
        if findings.len() >= MAX_FINDINGS {
            break;
        }
        let Some(language) = item.get(language_key) else {
            continue;
        };
        let code = match language.ref_zid() {
            Some(zid) => zeval_catalogue::language_code(zid)
                .map(str::to_string)
                .unwrap_or_else(|| zid.to_string()),
            None => language
                .get("Z60K1")
                .and_then(Node::string_value)
                .unwrap_or_default()
                .to_string(),
        };
        if seen.contains(&code) {
            findings.push(z522(format!("Duplicate {what}: '{}'", quoted(&code))));
        } else {
            seen_bytes = seen_bytes.saturating_add(code.len());
            crate::budget::check_reserve(seen_bytes)?;
            seen.insert(code);
        }
    }
    Ok(findings)
}

/// Z207: binds the call's arguments; when binding works, each argument whose declared type
/// is a reference (other than Z1) must have that type, or be a reference, call or argument
/// reference.
fn function_call(engine: &Engine<'_>, call: &Node) -> R<Vec<Value>> {
    let Some(z7k1) = call.get("Z7K1") else {
        return Ok(Vec::new());
    };
    let function = match engine.resolve(z7k1, false, false) {
        Ok(f) if f.is_type("Z8") => f,
        Ok(_) | Err(Fail::Error(_)) => return Ok(Vec::new()),
        Err(other) => return Err(other),
    };
    let declarations = match engine.declarations(&function) {
        Ok(d) => d,
        Err(Fail::Error(_)) => return Ok(Vec::new()),
        Err(other) => return Err(other),
    };
    let mut found = Vec::new();
    let entries = EntriesByKey::of(call);
    for (name, declared) in &declarations {
        // A step each: the declarations may be many.
        engine.check_time()?;
        let local = zeval_zobject::ident::local_key(name).unwrap_or(name);
        match entries.position(name).or_else(|| entries.position(local)) {
            Some(position) => found.push((declared.clone(), entries.entry(position).1.clone())),
            None => return Ok(Vec::new()),
        }
    }
    let used = declarations.len();
    if call.keys().iter().filter(|k| &***k != "Z7K1").count() != used {
        return Ok(Vec::new());
    }
    let mut findings = Vec::new();
    for (declared, arg) in found {
        let Some(expected) = declared.ref_zid() else {
            continue;
        };
        if expected == "Z1" {
            continue;
        }
        let Some(actual) = arg.type_zid() else {
            continue;
        };
        if actual != expected && !matches!(actual, "Z18" | "Z9" | "Z7") {
            findings.push(z5(
                "Z506",
                [z6(format!(
                    "Invalid argument type: expected {expected}, got {actual}"
                ))],
            ));
        }
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::budget::{BudgetLimits, install_or_share};
    use crate::node::{key, typed_list};

    fn messages(keys: &[&str], identity: &str) -> Vec<String> {
        sequential_keys(keys.iter().map(|k| k.to_string()).collect(), identity)
            .iter()
            .map(|e| e["Z5K2"]["Z522K1"]["Z6K1"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn key_sequence_findings() {
        assert!(messages(&["Z803K1", "K2"], "Z803").is_empty());
        assert_eq!(
            messages(&["Z803K1", "Z803K1"], "Z803"),
            [
                "Duplicated key at index 1: Z803K1",
                "Non-sequential key at index 1: Z803K1"
            ]
        );
        assert_eq!(
            messages(&["Z803K1", "Z83333K2"], "Z803"),
            ["Invalid key at index 1: string should start with Z803"]
        );
        assert_eq!(
            messages(&["Z803K2"], "Z803"),
            ["Invalid key at index 0: Z803K2 (should be K1 or Z803K1)"]
        );
    }

    /// A list built at run time may hold one long key declaration many times: copying the
    /// keys is charged as it goes, and the findings are few and short. All of them were
    /// copied, and each finding quoted its key whole.
    #[test]
    fn many_long_keys_are_charged_and_quoted_briefly() {
        let _guard = install_or_share(
            BudgetLimits {
                max_request_memory_bytes: 16 * 1024 * 1024,
                ..BudgetLimits::default()
            },
            Instant::now() + Duration::from_secs(60),
        );
        let declaration = Node::object(
            vec![
                (key("Z1K1"), Node::z9("Z3")),
                (key("Z3K2"), Node::z6(&"K".repeat(64 * 1024))),
            ],
            None,
        );
        let list = typed_list(Node::z9("Z3"), vec![declaration; 2_000]);
        let Err(Fail::Error(error)) = declared_keys(Some(&list), "Z3K2") else {
            panic!("128 MiB of keys were copied");
        };
        assert_eq!(error["Z5K2"]["Z590K1"]["Z6K1"], "memory", "{error}");

        let keys = vec!["K".repeat(64 * 1024); 1_000];
        let findings = sequential_keys(keys, "Z10000");
        assert!(
            findings.len() <= MAX_FINDINGS,
            "{} findings",
            findings.len()
        );
        let bytes: usize = findings.iter().map(|f| f.to_string().len()).sum();
        assert!(bytes < 256 * 1024, "{bytes} bytes of findings");
    }
}
