//! Compiling and running real functions in both languages.

use serde_json::json;
use zeval_compiler::{Answer, Kind, Language};

use crate::common::{call, compile, signature, string_list, unit, z6, z40};

const C_REVERSE: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reverses by code point. */
char *Z10000(const char *Z10000K1) {
    printf("user output that the host must skip\n");
    size_t n = strlen(Z10000K1);
    char *out = malloc(n + 1);
    size_t o = n;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char) Z10000K1[i];
        size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        o -= len;
        memcpy(out + o, Z10000K1 + i, len);
        i += len;
    }
    out[n] = 0;
    return out;
}
"#;

const RUST_REVERSE: &str = r#"
fn Z10000(Z10000K1: &str) -> String {
    println!("user output that the host must skip");
    Z10000K1.chars().rev().collect()
}
"#;

#[test]
fn string_reversal_with_unicode() {
    let sig = signature(&[Kind::String], Kind::String, "Z10000");
    for (language, source) in [(Language::C, C_REVERSE), (Language::Rust, RUST_REVERSE)] {
        let unit = unit(language, "Z10000", &sig, source);
        let compiled = compile(&unit);
        for (input, expected) in [
            ("abc", "cba"),
            ("", ""),
            ("héllo wörld 🎉", "🎉 dlröw olléh"),
            ("日本語", "語本日"),
        ] {
            assert_eq!(
                call(&compiled, &unit, &[z6(input)]),
                Answer::Value(z6(expected)),
                "{language} {input:?}"
            );
        }
    }
}

#[test]
fn booleans_in_and_out() {
    let sig = signature(&[Kind::String, Kind::Boolean], Kind::Boolean, "Z10001");
    let c = r#"
#include <stdbool.h>
#include <string.h>
bool Z10001(const char *Z10001K1, bool Z10001K2) {
    return (strlen(Z10001K1) % 2 == 0) != Z10001K2;
}
"#;
    let rust = "fn Z10001(Z10001K1: &str, Z10001K2: bool) -> bool { (Z10001K1.len() % 2 == 0) != Z10001K2 }";
    for (language, source) in [(Language::C, c), (Language::Rust, rust)] {
        let unit = unit(language, "Z10001", &sig, source);
        let compiled = compile(&unit);
        for (text, flag, expected) in [
            ("ab", false, true),
            ("ab", true, false),
            ("abc", false, false),
            ("abc", true, true),
        ] {
            assert_eq!(
                call(&compiled, &unit, &[z6(text), z40(flag)]),
                Answer::Value(z40(expected)),
                "{language} {text} {flag}"
            );
        }
    }
}

#[test]
fn json_typed_list_sum() {
    // Z881(Z6) in, Z6 out (the list arrives as its normal-form JSON text).
    let sig = signature(&[Kind::Json], Kind::String, "Z10002");
    let c = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
char *Z10002(const char *Z10002K1) {
    static char out[32];
    long sum = 0;
    const char *needle = "\"Z6K1\":\"";
    for (const char *at = strstr(Z10002K1, needle); at; at = strstr(at, needle)) {
        at += strlen(needle);
        sum += strtol(at, NULL, 10);
    }
    snprintf(out, sizeof out, "%ld", sum);
    return out;
}
"#;
    let rust = r#"
fn Z10002(Z10002K1: &str) -> Result<String, std::num::ParseIntError> {
    let mut sum = 0i64;
    for piece in Z10002K1.split("\"Z6K1\":\"").skip(1) {
        let number: String = piece.chars().take_while(|c| *c != '"').collect();
        sum += number.parse::<i64>()?;
    }
    Ok(sum.to_string())
}
"#;
    for (language, source) in [(Language::C, c), (Language::Rust, rust)] {
        let unit = unit(language, "Z10002", &sig, source);
        let compiled = compile(&unit);
        assert_eq!(
            call(&compiled, &unit, &[string_list(&["1", "2", "39"])]),
            Answer::Value(z6("42")),
            "{language}"
        );
        assert_eq!(
            call(&compiled, &unit, &[string_list(&[])]),
            Answer::Value(z6("0"))
        );
    }
    // The Rust version's Err is a failure with the error's message.
    let unit = unit(Language::Rust, "Z10002", &sig, rust);
    let compiled = compile(&unit);
    assert_eq!(
        call(&compiled, &unit, &[string_list(&["1", "x"])]),
        Answer::Failure("invalid digit found in string".to_owned())
    );
}

#[test]
fn fib_returning_json() {
    let sig = signature(&[Kind::String], Kind::Json, "Z10003");
    let c = r#"
#include <stdio.h>
#include <stdlib.h>
static long fib(long n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
const char *Z10003(const char *Z10003K1) {
    static char out[64];
    snprintf(out, sizeof out, "{\"Z1K1\":\"Z6\",\"Z6K1\":\"%ld\"}", fib(atol(Z10003K1)));
    return out;
}
"#;
    let rust = r##"
fn fib(n: u64) -> u64 { if n < 2 { n } else { fib(n - 1) + fib(n - 2) } }
fn Z10003(Z10003K1: &str) -> Result<String, String> {
    let n: u64 = Z10003K1.parse().map_err(|e| format!("not a number: {e}"))?;
    Ok(format!(r#"{{"Z1K1":"Z6","Z6K1":"{}"}}"#, fib(n)))
}
"##;
    for (language, source) in [(Language::C, c), (Language::Rust, rust)] {
        let unit = unit(language, "Z10003", &sig, source);
        let compiled = compile(&unit);
        assert_eq!(
            call(&compiled, &unit, &[z6("27")]),
            Answer::Value(json!({"Z1K1": "Z6", "Z6K1": "196418"})),
            "{language}"
        );
    }
}

#[test]
fn failures_reach_the_caller() {
    let sig = signature(&[Kind::String], Kind::String, "Z10004");
    let cases = [
        (
            Language::C,
            "#include \"zeval.h\"\nchar *Z10004(const char *Z10004K1) { zeval_error(Z10004K1); }",
            "bad input: é",
        ),
        (
            Language::C,
            "_Noreturn void zeval_error(const char *message);\n\
             const char *Z10004(const char *Z10004K1) { (void) Z10004K1; return 0; }",
            "the function returned NULL",
        ),
        (
            Language::Rust,
            "fn Z10004(Z10004K1: &str) -> String {\n    panic!(\"no: {}\", Z10004K1)\n}",
            "panicked at line 2:5: no: bad input: é",
        ),
        (
            Language::Rust,
            "fn Z10004(Z10004K1: &str) -> Result<&'static str, String> { Err(Z10004K1.to_owned()) }",
            "bad input: é",
        ),
        (
            Language::Rust,
            "fn Z10004(Z10004K1: &str) -> String { let v: Vec<u8> = vec![]; v[Z10004K1.len()].to_string() }",
            "panicked at line 1:65: index out of bounds: the len is 0 but the index is 13",
        ),
    ];
    for (language, source, expected) in cases {
        let unit = unit(language, "Z10004", &sig, source);
        let compiled = compile(&unit);
        assert_eq!(
            call(&compiled, &unit, &[z6("bad input: é")]),
            Answer::Failure(expected.to_owned()),
            "{language}: {source}"
        );
    }
}

#[test]
fn no_parameters_and_static_strings() {
    let sig = signature(&[], Kind::String, "Z10005");
    for (language, source) in [
        (
            Language::C,
            "const char *Z10005(void) { return \"constant\"; }",
        ),
        (
            Language::Rust,
            "fn Z10005() -> &'static str { \"constant\" }",
        ),
    ] {
        let unit = unit(language, "Z10005", &sig, source);
        let compiled = compile(&unit);
        assert_eq!(call(&compiled, &unit, &[]), Answer::Value(z6("constant")));
    }
}
