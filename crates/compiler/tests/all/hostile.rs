//! Sources that try to read files at compile time are refused before a compiler runs.

use zeval_compiler::{CompileFailure, Kind, Language};

use crate::common::{signature, try_compile, unit};

fn refused(language: Language, source: &str) -> String {
    let sig = signature(&[Kind::String], Kind::String, "Z10020");
    match try_compile(&unit(language, "Z10020", &sig, source)) {
        Err(CompileFailure::Refused(reason)) => reason,
        other => panic!("{source:?} was not refused: {other:?}"),
    }
}

#[test]
fn c_file_inclusion_is_refused() {
    for source in [
        "#include \"/etc/passwd\"",
        "#include </etc/passwd>",
        "#include \"../x\"",
        "%:include \"/etc/passwd\"",
        "#\\\ninclude \"/etc/passwd\"",
        "??=include \"/etc/passwd\"",
        "#embed \"/etc/passwd\"",
        "#define F \"/etc/passwd\"\n#include F",
        "#if __has_embed(\"/etc/passwd\")\n#endif",
        "__asm__(\".incbin \\\"/etc/passwd\\\"\");",
        "#pragma GCC dependency \"/etc/passwd\"",
    ] {
        let reason = refused(Language::C, source);
        assert!(!reason.is_empty());
    }
}

#[test]
fn rust_file_inclusion_is_refused() {
    for source in [
        "const P: &str = include_str!(\"/etc/passwd\");",
        "const P: &str = r#include_str!(\"/etc/passwd\");",
        "const P: &[u8] = include_bytes!(\"/etc/passwd\");",
        "include!(\"/etc/passwd\");",
        "extern crate std as s;",
        "#[path = \"/etc/passwd\"] mod x;",
        "mod x;",
        "#![debugger_visualizer(gdb_script_file = \"/etc/passwd\")]",
    ] {
        let reason = refused(Language::Rust, source);
        assert!(!reason.is_empty());
    }
}

#[test]
fn oversized_sources_and_bad_names_are_refused() {
    let big = format!("// {}\n", "x".repeat(300 << 10));
    assert!(refused(Language::Rust, &big).contains("more than"));
    let sig = signature(&[Kind::String], Kind::String, "Z10020");
    let bad = unit(Language::C, "Z1; int x", &sig, "");
    assert!(matches!(try_compile(&bad), Err(CompileFailure::Refused(_))));
}
