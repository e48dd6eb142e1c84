//! Artifact keys from the real toolchain.

use zeval_compiler::{Kind, Language};

use crate::common::{compile, signature, toolchain, unit};

#[test]
fn same_unit_same_key_and_changes_change_it() {
    let sig = signature(&[Kind::String], Kind::String, "Z10010");
    let source = "fn Z10010(Z10010K1: &str) -> String { Z10010K1.to_uppercase() }";
    let base = unit(Language::Rust, "Z10010", &sig, source);
    let first = compile(&base);
    let second = compile(&base.clone());
    assert_eq!(first.key, second.key);
    assert_eq!(toolchain().key(&base), Some(first.key));
    assert_eq!(
        first.compiler,
        toolchain().identity(Language::Rust).unwrap()
    );
    assert!(
        first.compiler.starts_with("rustc 1.95.0 ("),
        "{}",
        first.compiler
    );
    // The build is reproducible, so the key really stands for the bytes.
    assert_eq!(first.wasm, second.wasm);

    let mut other_source = base.clone();
    other_source.source.push('\n');
    let mut other_signature = base.clone();
    other_signature.signature.result = Kind::Json;
    let mut other_language = base.clone();
    other_language.language = Language::C;
    for other in [other_source, other_signature, other_language] {
        assert_ne!(toolchain().key(&other), Some(first.key));
    }
    // Other flags: the same unit under another compiler identity (as a flag change would).
    let c = unit(
        Language::C,
        "Z10010",
        &sig,
        "const char *Z10010(const char *Z10010K1) { return Z10010K1; }",
    );
    let c_key = toolchain().key(&c).unwrap();
    assert_eq!(compile(&c).key, c_key);
    assert!(
        toolchain()
            .identity(Language::C)
            .unwrap()
            .contains("clang version")
    );
}
