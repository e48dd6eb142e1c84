//! The usual request, read in Rust: every argument a string (a Z6).
//!
//! QuickJS's `JSON.parse` costs about 300 wasm instructions a byte of a small request, and
//! runner.js's deserialization and `JSON.stringify` of the answer as much again: most of a
//! trivial call. serde_json reads the same request in a few instructions a byte. A request
//! is read here only when doing so cannot change its answer: every field has the type
//! runner.js expects and every argument is a plain Z6, so that runner.js's `deserialize`
//! would give its `Z6K1` string. Anything else (another argument type, a duplicate key, a
//! number where a string was expected, a lone surrogate in a string, a `compileOnly`) is
//! left to runner.js's `__zeval_run`, which reads the text as before.
//!
//! Bounds: the request is the host's input, within its input limit; serde_json stops at 128
//! levels of nesting (a deeper request goes to runner.js); what is read borrows the input's
//! strings except those with escapes, so it takes at most about the input's size again.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

/// The fields of a request that runner.js's `execute` reads, with the types it needs; a
/// JSON `null` is as absent, as for runner.js.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StringCall<'a> {
    #[serde(borrow)]
    pub(crate) function_name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) code_string: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) code_newlines: Option<f64>,
    #[serde(borrow, default)]
    function_arguments: Option<BTreeMap<BorrowedOrOwned<'a>, StringArgument<'a>>>,
    /// Present (and not `null`), the request is not a call: runner.js handles it.
    #[serde(default)]
    compile_only: Option<serde::de::IgnoredAny>,
}

/// An argument in normal form whose `deserialize` is its `Z6K1` string.
#[derive(Deserialize)]
struct StringArgument<'a> {
    #[serde(rename = "Z1K1")]
    _type: StringType,
    #[serde(rename = "Z6K1", borrow)]
    value: Cow<'a, str>,
}

/// An argument's `Z1K1` that runner.js's `getZID` names Z6: "Z6", or a reference to it
/// (`{"Z1K1": "Z9", "Z9K1": "Z6"}`). Any other type fails to read, and the request goes to
/// runner.js. Read by hand: serde's untagged enums buffer what they read, which costs more
/// than the whole rest of a trivial request.
struct StringType;

impl<'de> Deserialize<'de> for StringType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StringTypeVisitor)
    }
}

struct StringTypeVisitor;

impl StringTypeVisitor {
    fn z6_or<E: serde::de::Error>(is_z6: bool) -> Result<StringType, E> {
        if is_z6 {
            Ok(StringType)
        } else {
            Err(E::custom("not a string's type"))
        }
    }
}

impl<'de> serde::de::Visitor<'de> for StringTypeVisitor {
    type Value = StringType;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Z6 or a reference to it")
    }

    fn visit_str<E: serde::de::Error>(self, zid: &str) -> Result<Self::Value, E> {
        Self::z6_or(zid == "Z6")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut kind, mut zid) = (None, None);
        while let Some(key) = map.next_key::<BorrowedOrOwned<'de>>()? {
            let slot = match key.0.as_ref() {
                "Z1K1" => &mut kind,
                "Z9K1" => &mut zid,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    continue;
                }
            };
            if slot.is_some() {
                // JSON.parse keeps the last of duplicate keys: left to runner.js.
                return Err(serde::de::Error::custom("a duplicate key"));
            }
            *slot = Some(map.next_value::<BorrowedOrOwned<'de>>()?.0);
        }
        Self::z6_or(kind.as_deref() == Some("Z9") && zid.as_deref() == Some("Z6"))
    }
}

/// A string as serde_json gives it: borrowed from the input unless it holds an escape.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct BorrowedOrOwned<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BorrowedOrOwned<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Borrowing<'a>(#[serde(borrow)] Cow<'a, str>);
        Borrowing::deserialize(deserializer).map(|Borrowing(text)| Self(text))
    }
}

impl<'a> StringCall<'a> {
    /// `input` read as a call of string arguments that runner.js would run, or `None` when
    /// runner.js must read it (see the module's docs).
    pub(crate) fn read(input: &'a str, with_bytecode: bool) -> Option<Self> {
        let call: Self = serde_json::from_str(input).ok()?;
        let has_code = with_bytecode || call.code_string.is_some();
        (call.compile_only.is_none() && has_code).then_some(call)
    }

    /// The arguments' strings in the order runner.js passes them: by key, as JavaScript
    /// sorts strings (by UTF-16 code units).
    pub(crate) fn arguments(&self) -> Vec<&str> {
        let mut arguments: Vec<(&str, &str)> = self
            .function_arguments
            .iter()
            .flatten()
            .map(|(key, argument)| (key.0.as_ref(), argument.value.as_ref()))
            .collect();
        arguments.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
        arguments.into_iter().map(|(_, value)| value).collect()
    }
}

/// Writes the answer runner.js gives for a call that returned the string `value`.
pub(crate) fn write_string_answer(
    out: &mut dyn std::io::Write,
    value: &str,
) -> std::io::Result<()> {
    out.write_all(br#"{"result":{"Z1K1":"Z6","Z6K1":"#)?;
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &str, with_bytecode: bool) -> Option<(Vec<String>, String)> {
        StringCall::read(input, with_bytecode).map(|call| {
            let arguments = call.arguments().into_iter().map(str::to_owned).collect();
            (arguments, call.function_name.into_owned())
        })
    }

    #[test]
    fn string_arguments_are_read_in_key_order() {
        let input = r#"{"functionName":"Z1","codeString":"c","functionArguments":{
            "Z1K2":{"Z1K1":"Z6","Z6K1":"two"},
            "Z1K1":{"Z1K1":{"Z1K1":"Z9","Z9K1":"Z6"},"Z6K1":"one\n\u00e9"}}}"#;
        assert_eq!(
            read(input, false),
            Some((vec!["one\né".to_owned(), "two".to_owned()], "Z1".to_owned()))
        );
    }

    #[test]
    fn keys_sort_by_utf16_code_units() {
        // U+1F600 sorts before U+FF5E in UTF-16 (its surrogates start at 0xD83D), after it in
        // UTF-8.
        let input = r#"{"functionName":"f","functionArguments":{
            "😀":{"Z1K1":"Z6","Z6K1":"emoji"},"～":{"Z1K1":"Z6","Z6K1":"tilde"}}}"#;
        assert_eq!(
            read(input, true).map(|(arguments, _)| arguments),
            Some(vec!["emoji".to_owned(), "tilde".to_owned()])
        );
    }

    #[test]
    fn anything_runner_js_reads_otherwise_is_left_to_it() {
        for input in [
            // Not a string argument.
            r#"{"functionName":"f","codeString":"c","functionArguments":{"K1":{"Z1K1":"Z40","Z40K1":"Z41"}}}"#,
            r#"{"functionName":"f","codeString":"c","functionArguments":{"K1":{"Z1K1":"Z6","Z6K1":5}}}"#,
            r#"{"functionName":"f","codeString":"c","functionArguments":{"K1":{"Z1K1":{"Z1K1":"Z9","Z9K1":"Z40"},"Z6K1":"x"}}}"#,
            r#"{"functionName":"f","codeString":"c","functionArguments":{"K1":"x"}}"#,
            r#"{"functionName":"f","codeString":"c","functionArguments":[]}"#,
            // A duplicate key, which JSON.parse resolves its own way.
            r#"{"functionName":"f","codeString":"c","functionArguments":{"K1":{"Z1K1":"Z6","Z1K1":"Z40","Z6K1":"x"}}}"#,
            // Fields of another type, or missing.
            r#"{"functionName":5,"codeString":"c"}"#,
            r#"{"codeString":"c"}"#,
            r#"{"functionName":"f"}"#,
            r#"{"functionName":"f","codeString":7}"#,
            // Not a call.
            r#"{"functionName":"f","codeString":"c","compileOnly":100}"#,
            // A lone surrogate, which Rust's strings cannot hold.
            r#"{"functionName":"f","codeString":"c","functionArguments":{"K1":{"Z1K1":"Z6","Z6K1":"\ud800"}}}"#,
            "[]",
            "not JSON",
        ] {
            assert!(read(input, false).is_none(), "{input}");
        }
    }

    #[test]
    fn with_bytecode_the_code_string_may_be_absent() {
        let input = r#"{"functionName":"f","codeNewlines":3,"functionArguments":null}"#;
        let call = StringCall::read(input, true).expect("read");
        assert_eq!(call.code_newlines, Some(3.0));
        assert!(call.arguments().is_empty());
        assert!(StringCall::read(input, false).is_none());
    }

    #[test]
    fn a_string_answer_is_the_json_runner_js_writes() {
        let mut out = Vec::new();
        write_string_answer(&mut out, "a \"b\"\n\u{1}é").expect("written");
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            r#"{"result":{"Z1K1":"Z6","Z6K1":"a \"b\"\n\u0001é"}}"#
        );
    }
}
