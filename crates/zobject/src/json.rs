//! Parsing JSON text into ZObject values.
//!
//! Limit: nesting deeper than [`MAX_DEPTH`] arrays/objects is rejected before any value is
//! built. The depth is measured by a flat scan over the bytes, so hostile input (a million
//! `[`) costs one pass and no recursion. Within the limit, values are parsed by serde_json.

use crate::Value;

/// The deepest nesting of arrays and objects accepted in JSON text.
///
/// Canonical ZObjects from the wiki nest a few dozen levels; normal-form typed lists nest two
/// levels per element, so this admits normal lists of a few thousand elements.
pub const MAX_DEPTH: usize = 10_000;

/// The most JSON structural tokens (`[`, `{`, `,` and `:` outside strings, plus one) that
/// [`parse_untrusted`] accepts: counted on the bytes before anything is parsed, so that a
/// parsed value holds at most its text's bytes plus about 128 bytes per token (a `Value`, a
/// map entry, vector slack). 262 144 tokens: at most ~40 MiB of host memory beside the 8 MiB
/// that guests may write, however the text is shaped (`[0,0,…]` of 8 MiB would otherwise
/// parse into four million values, some 400 MiB).
pub const MAX_UNTRUSTED_TOKENS: usize = 256 * 1024;

/// Why JSON text could not be turned into a value.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// The text is not valid JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The text nests deeper than [`MAX_DEPTH`].
    #[error("JSON nested deeper than {max} levels at line {line}, column {column}")]
    TooDeep {
        /// The limit that was hit.
        max: usize,
        /// 1-based line where the limit was crossed.
        line: usize,
        /// 1-based column where the limit was crossed.
        column: usize,
    },
    /// The text has more structural tokens than allowed ([`MAX_UNTRUSTED_TOKENS`] for
    /// [`parse_untrusted`]).
    #[error("JSON with more than {max} values")]
    TooLarge {
        /// The limit that was hit.
        max: usize,
    },
}

/// Parses JSON text, rejecting nesting deeper than [`MAX_DEPTH`].
pub fn parse(text: &str) -> Result<Value, JsonError> {
    parse_with_max_depth(text, MAX_DEPTH)
}

/// Parses JSON bytes (which must be UTF-8), rejecting nesting deeper than [`MAX_DEPTH`].
pub fn parse_slice(bytes: &[u8]) -> Result<Value, JsonError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text),
        Err(e) => {
            let (line, column) = position(bytes, e.valid_up_to());
            Err(JsonError::Syntax {
                line,
                column,
                message: "invalid UTF-8".into(),
            })
        }
    }
}

/// Parses JSON text that an untrusted party wrote (a guest's answer or request, a compiled
/// module's result): [`parse`], refusing text of more than [`MAX_UNTRUSTED_TOKENS`] tokens
/// before anything is built.
pub fn parse_untrusted(text: &str) -> Result<Value, JsonError> {
    parse_within_tokens(text, MAX_UNTRUSTED_TOKENS)
}

/// [`parse`], refusing text of more than `max` structural tokens before anything is built:
/// for text that another party wrote around an untrusted value (a remote evaluator's answer
/// holds its guest's answer and some metadata).
pub fn parse_within_tokens(text: &str, max: usize) -> Result<Value, JsonError> {
    if structural_tokens(text.as_bytes(), max) > max {
        return Err(JsonError::TooLarge { max });
    }
    parse(text)
}

/// What a value takes in memory, about: each node's slot and map entry, and the bytes of
/// its strings and keys. Walked without recursion.
pub fn estimated_bytes(value: &Value) -> usize {
    estimated_bytes_within(value, usize::MAX).unwrap_or(usize::MAX)
}

/// [`estimated_bytes`], or `None` once past `max` (the walk stops there, so a huge value
/// costs no more than `max` bytes' worth of it).
pub fn estimated_bytes_within(value: &Value, max: usize) -> Option<usize> {
    const NODE: usize = 80;
    let mut total = 0usize;
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        total = total.saturating_add(NODE);
        match value {
            Value::String(s) => total = total.saturating_add(s.len()),
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                for (key, child) in map {
                    total = total.saturating_add(key.len());
                    stack.push(child);
                }
            }
            _ => {}
        }
        if total > max {
            return None;
        }
    }
    Some(total)
}

/// A writer that keeps at most `max` bytes and fails past them.
struct Bounded {
    bytes: Vec<u8>,
    max: usize,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.max - self.bytes.len();
        if room == 0 && !buf.is_empty() {
            return Err(std::io::Error::other("over the bound"));
        }
        let taken = buf.len().min(room);
        self.bytes.extend_from_slice(&buf[..taken]);
        Ok(taken)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `value` as JSON text, or `None` once the text passes `max` bytes: serializing stops
/// there, so a huge value costs at most `max` bytes of buffer (and the time to write them).
pub fn to_vec_within(value: &Value, max: usize) -> Option<Vec<u8>> {
    let mut out = Bounded {
        bytes: Vec::new(),
        max,
    };
    serde_json::to_writer(&mut out, value).ok()?;
    Some(out.bytes)
}

/// The first `max` bytes of `value`'s JSON text (fewer when a character would be cut);
/// serializing stops there.
pub fn text_prefix(value: &Value, max: usize) -> String {
    let mut out = Bounded {
        bytes: Vec::new(),
        max,
    };
    let _ = serde_json::to_writer(&mut out, value);
    match String::from_utf8(out.bytes) {
        Ok(text) => text,
        Err(cut) => {
            let valid = cut.utf8_error().valid_up_to();
            let mut bytes = cut.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).unwrap_or_default()
        }
    }
}

/// The JSON structural tokens of `bytes` (see [`MAX_UNTRUSTED_TOKENS`]), counting no further
/// than `limit + 1`.
pub fn structural_tokens(bytes: &[u8], limit: usize) -> usize {
    let mut tokens = 1;
    for (_, byte) in outside_strings(bytes) {
        if matches!(byte, b'[' | b'{' | b',' | b':') {
            tokens += 1;
            if tokens > limit {
                break;
            }
        }
    }
    tokens
}

/// The bytes of JSON text outside its strings, with their offsets (a string's quotes
/// included in it). Strings are jumped through from one quote or backslash to the next
/// (`memchr2`), so the pre-scans cost a string a fraction of a byte loop; a backslash escapes
/// the byte after it, as in the parser, and a string that is not closed runs to the end.
fn outside_strings(bytes: &[u8]) -> impl Iterator<Item = (usize, u8)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        while let Some(&byte) = bytes.get(at) {
            if byte != b'"' {
                at += 1;
                return Some((at - 1, byte));
            }
            at = past_string(bytes, at);
        }
        None
    })
}

/// The index just past the string whose opening quote is `bytes[open]`: the byte after its
/// closing quote, or `bytes.len()` when it is not closed.
fn past_string(bytes: &[u8], open: usize) -> usize {
    let mut at = open + 1;
    while let Some(found) = bytes
        .get(at..)
        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
    {
        let index = at + found;
        if bytes[index] == b'"' {
            return index + 1;
        }
        at = index + 2;
    }
    bytes.len()
}

/// Parses JSON text with a caller-chosen nesting limit.
pub fn parse_with_max_depth(text: &str, max: usize) -> Result<Value, JsonError> {
    if let Some(offset) = depth_violation(text.as_bytes(), max) {
        let (line, column) = position(text.as_bytes(), offset);
        return Err(JsonError::TooDeep { max, line, column });
    }
    let mut de = serde_json::Deserializer::from_str(text);
    // The pre-scan bounds the depth; serde_json's own limit (128) is too low for normal form.
    de.disable_recursion_limit();
    // serde_stacker grows the stack on the heap as the parser recurses, so even MAX_DEPTH
    // levels parse on a small thread stack.
    let value = serde::de::Deserialize::deserialize(serde_stacker::Deserializer::new(&mut de))
        .and_then(|v: Value| de.end().map(|()| v))
        .map_err(|e| JsonError::Syntax {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
    Ok(value)
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The byte offset where nesting first exceeds `max`, skipping brackets inside strings.
fn depth_violation(bytes: &[u8], max: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (at, byte) in outside_strings(bytes) {
        match byte {
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(at);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

fn position(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_text_prefix_stops_at_its_bound_and_never_cuts_a_character() {
        let value = serde_json::json!({"k": "é".repeat(100)});
        let whole = serde_json::to_string(&value).unwrap();
        assert_eq!(super::text_prefix(&value, 10_000), whole);
        let start = super::text_prefix(&value, 9);
        assert_eq!(start, &whole[..8], "the 9th byte is half an é");
        assert!(super::to_vec_within(&value, whole.len()).is_some());
        assert!(super::to_vec_within(&value, whole.len() - 1).is_none());
    }

    #[test]
    fn a_large_value_is_quoted_as_the_start_of_its_text() {
        let small = serde_json::json!("x");
        assert_eq!(
            crate::error::quote_briefly(small.clone()),
            crate::error::quote(small)
        );
        let large = serde_json::json!("y".repeat(100_000));
        let quoted = crate::error::quote_briefly(large);
        let text = quoted["Z99K1"]["Z6K1"].as_str().unwrap();
        assert_eq!(text.chars().count(), crate::error::QUOTED_TEXT_CHARS + 1);
        assert!(text.starts_with("\"yyy") && text.ends_with('…'), "{text}");
    }

    #[test]
    fn a_deep_value_is_quoted_as_the_start_of_its_text_however_small() {
        let nested = |levels: usize| {
            let mut value = serde_json::json!("x");
            for _ in 0..levels {
                value = serde_json::json!([value]);
            }
            value
        };
        let shallow = nested(crate::error::MAX_QUOTED_DEPTH);
        assert_eq!(
            crate::error::quote_briefly_ref(&shallow),
            crate::error::quote(shallow.clone())
        );
        assert_eq!(
            crate::error::quote_briefly(shallow.clone()),
            crate::error::quote(shallow)
        );
        let deep = nested(crate::error::MAX_QUOTED_DEPTH + 1);
        let quoted = crate::error::quote_briefly_ref(&deep);
        let text = quoted["Z99K1"]["Z6K1"].as_str().unwrap();
        assert!(text.starts_with("[[[") && text.ends_with('…'), "{text}");
        assert_eq!(crate::error::quote_briefly(deep), quoted);
    }

    use super::*;

    #[test]
    fn structural_tokens_skip_strings_and_stop_past_the_limit() {
        assert_eq!(structural_tokens(br#"{"a": [1, 2]}"#, 100), 5);
        assert_eq!(structural_tokens(br#"{"a,b:[{": "x\"[,"}"#, 100), 3);
        assert_eq!(structural_tokens(&b"[0,".repeat(1000), 10), 11);
    }

    /// The pre-scans as a byte loop, the way they were written before they skipped strings
    /// with `memchr2`: (tokens, offset where nesting first passes `max_depth`).
    fn byte_by_byte(bytes: &[u8], max_depth: usize) -> (usize, Option<usize>) {
        let (mut tokens, mut depth, mut too_deep) = (1, 0usize, None);
        let (mut in_string, mut escaped) = (false, false);
        for (i, &byte) in bytes.iter().enumerate() {
            if in_string {
                match (escaped, byte) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    tokens += 1;
                    depth += 1;
                    if depth > max_depth && too_deep.is_none() {
                        too_deep = Some(i);
                    }
                }
                b',' | b':' => tokens += 1,
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        (tokens, too_deep)
    }

    #[test]
    fn the_pre_scans_skip_strings_as_a_byte_loop_does() {
        let texts: [&[u8]; 12] = [
            br#"{"a": [1, 2], "b": {"c": "d"}}"#,
            br#"["\"", "[", "\\", "\\\"[", "{,:}"]"#,
            br#"[[["x\\"]]]"#,
            br#"[["unclosed [ { , :"#,
            br#"["ends in a backslash \"#,
            br#"["ends after an escaped quote \""#,
            br#"["\\\\\\\\", [[[]]], "\\\"\\\"", {"": [[]]}]"#,
            b"[\"\xc3\xa9\\u00e9\", [\"\xf0\x9d\x84\x9e\"]]",
            b"",
            b"\"",
            b"\"\\",
            br#"[] "a" [[ "b" ]] {"#,
        ];
        for text in texts {
            let (tokens, too_deep) = byte_by_byte(text, 2);
            assert_eq!(structural_tokens(text, usize::MAX - 1), tokens, "{text:?}");
            assert_eq!(depth_violation(text, 2), too_deep, "{text:?}");
        }
        // A long string with escapes all through it, and brackets inside it.
        let long = format!("[\"{}\", [[[0]]]]", "ab\\\"[{,:\\\\".repeat(10_000));
        let (tokens, too_deep) = byte_by_byte(long.as_bytes(), 3);
        assert_eq!(structural_tokens(long.as_bytes(), usize::MAX - 1), tokens);
        assert_eq!(tokens, 6);
        assert_eq!(depth_violation(long.as_bytes(), 3), too_deep);
        assert!(too_deep.is_some());
    }

    #[test]
    fn untrusted_text_of_too_many_values_is_refused_before_parsing() {
        let many = format!("[{}0]", "0,".repeat(MAX_UNTRUSTED_TOKENS));
        assert_eq!(
            parse_untrusted(&many),
            Err(JsonError::TooLarge {
                max: MAX_UNTRUSTED_TOKENS
            })
        );
        let enough = format!("[{}0]", "0,".repeat(MAX_UNTRUSTED_TOKENS - 2));
        assert!(parse_untrusted(&enough).is_ok());
    }

    #[test]
    fn million_deep_arrays_and_objects_are_rejected() {
        let arrays = "[".repeat(1_000_000) + &"]".repeat(1_000_000);
        assert!(matches!(parse(&arrays), Err(JsonError::TooDeep { .. })));
        let objects = "{\"K1\":".repeat(1_000_000) + &"}".repeat(1_000_000);
        assert!(matches!(parse(&objects), Err(JsonError::TooDeep { .. })));
    }

    #[test]
    fn syntax_errors_say_where() {
        let err = parse("{\n  \"Z1K1\": \"Z6\",\n  oops\n}").unwrap_err();
        let JsonError::Syntax { line, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(*line, 3);
        assert!(err.to_string().contains("line 3"));
    }

    #[test]
    fn unicode_round_trips() {
        let text = r#"{"Z1K1":"Z6","Z6K1":"\ud83d\udc69\ud83c\udfff x 𝄞"}"#;
        let v = parse(text).unwrap();
        assert_eq!(v["Z6K1"], "👩🏿 x 𝄞");
        let again = parse(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(v, again);
    }

    #[test]
    fn key_order_is_kept() {
        let v = parse(r#"{"b":"1","a":"2","Z1K1":"Z6"}"#).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["b", "a", "Z1K1"]);
    }

    #[test]
    fn fifty_megabyte_string() {
        let big = "x".repeat(50 * 1024 * 1024);
        let v = parse(&format!("{{\"Z1K1\":\"Z6\",\"Z6K1\":\"{big}\"}}")).unwrap();
        assert_eq!(v["Z6K1"].as_str().unwrap().len(), big.len());
    }
}
