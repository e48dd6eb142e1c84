//! Compile errors come back with the user's line numbers and no host paths.

use zeval_compiler::{CompileFailure, Kind, Language};

use crate::common::{signature, try_compile, unit};

fn diagnostics(language: Language, source: &str) -> String {
    let sig = signature(&[Kind::String], Kind::String, "Z10030");
    match try_compile(&unit(language, "Z10030", &sig, source)) {
        Err(CompileFailure::Diagnostics(text)) => text,
        other => panic!("expected diagnostics for {source:?}, got {other:?}"),
    }
}

fn assert_clean(text: &str) {
    for leak in ["/tmp", "zeval-compile-", "/root", ".rustup"] {
        assert!(!text.contains(leak), "diagnostics leak {leak}: {text}");
    }
}

#[test]
fn c_errors_name_the_users_line() {
    let text = diagnostics(
        Language::C,
        "#include <string.h>\n\nconst char *Z10030(const char *Z10030K1) {\n    return undefined_thing;\n}\n",
    );
    assert!(text.contains("main.c:4:12"), "{text}");
    assert!(text.contains("undefined_thing"), "{text}");
    assert_clean(&text);
}

#[test]
fn c_missing_function_and_wrong_signature_fail_to_link() {
    let text = diagnostics(Language::C, "const char *Z99(const char *x) { return x; }");
    assert!(text.contains("Z10030"), "{text}");
    let text = diagnostics(Language::C, "double Z10030(double x) { return x; }");
    assert!(text.contains("signature mismatch"), "{text}");
    assert_clean(&text);
}

#[test]
fn rust_errors_name_the_users_line() {
    let text = diagnostics(
        Language::Rust,
        "fn Z10030(Z10030K1: &str) -> String {\n    let x: u32 = Z10030K1;\n    x.to_string()\n}\n",
    );
    assert!(text.contains("main.rs:2:"), "{text}");
    assert!(text.contains("mismatched types"), "{text}");
    assert_clean(&text);
}

#[test]
fn rust_wrong_return_type_is_a_compile_error() {
    let text = diagnostics(
        Language::Rust,
        "fn Z10030(Z10030K1: &str) -> bool { Z10030K1.is_empty() }",
    );
    assert!(text.contains("not a valid return type"), "{text}");
    let text = diagnostics(
        Language::Rust,
        "fn Z10030(Z10030K1: String) -> String { Z10030K1 }",
    );
    assert!(text.contains("mismatched types"), "{text}");
    let text = diagnostics(
        Language::Rust,
        "fn main() {}\nfn Z10030(x: &str) -> String { x.into() }",
    );
    assert!(text.contains("main"), "{text}");
    assert_clean(&text);
}
