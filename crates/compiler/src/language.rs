//! The compiled languages, what one compilation is about ([`Unit`]), and the content address
//! of its artifact ([`ArtifactKey`]).

use std::fmt;

use sha2::{Digest, Sha256};

use crate::convention::{CONVENTION_VERSION, Signature};

/// A compiled programming language (a Z61).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// C17 against wasi-libc, compiled by clang.
    C,
    /// Rust 2021 with std only, compiled by rustc.
    Rust,
}

impl Language {
    /// Every language, in a stable order.
    pub const ALL: [Language; 2] = [Language::C, Language::Rust];

    /// The language for a Z61K1 code (`"c17"`, `"rust"`) or a Z61 ZID (`"Z630"`, `"Z640"`).
    /// `"c"` is accepted too in code strings, though a Z61 cannot carry it: the original's
    /// schema wants a programming-language code of at least three characters.
    pub fn from_code(code: &str) -> Option<Language> {
        match code {
            "c17" | "c" | "Z630" => Some(Language::C),
            "rust" | "Z640" => Some(Language::Rust),
            _ => None,
        }
    }

    /// The Z61K1 code.
    pub fn code(self) -> &'static str {
        match self {
            Language::C => "c17",
            Language::Rust => "rust",
        }
    }

    /// The Z61 ZID.
    pub fn zid(self) -> &'static str {
        match self {
            Language::C => "Z630",
            Language::Rust => "Z640",
        }
    }

    /// The name people use.
    pub fn label(self) -> &'static str {
        match self {
            Language::C => "C",
            Language::Rust => "Rust",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One compilation: the implementation's source, the function it defines and its signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Unit {
    pub language: Language,
    /// The function's ZID, e.g. `Z10000`: the name the source must define.
    pub function_name: String,
    pub signature: Signature,
    pub source: String,
}

/// The SHA-256 content address of an artifact: the same key means the same wasm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactKey(pub [u8; 32]);

impl ArtifactKey {
    /// Hashes everything that determines the artifact, each field length-prefixed so no two
    /// field lists hash alike: the convention version, the language, the compiler's identity,
    /// the exact flags, the function name, the signature and the source.
    pub fn compute(unit: &Unit, compiler_identity: &str, flags: &[&str]) -> ArtifactKey {
        let mut hasher = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        field(b"zeval-artifact");
        field(&CONVENTION_VERSION.to_le_bytes());
        field(unit.language.code().as_bytes());
        field(compiler_identity.as_bytes());
        field(&(flags.len() as u64).to_le_bytes());
        for flag in flags {
            field(flag.as_bytes());
        }
        field(unit.function_name.as_bytes());
        field(&(unit.signature.parameters.len() as u64).to_le_bytes());
        for (key, kind) in &unit.signature.parameters {
            field(key.as_bytes());
            field(kind.name().as_bytes());
        }
        field(unit.signature.result.name().as_bytes());
        field(unit.source.as_bytes());
        ArtifactKey(hasher.finalize().into())
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<ArtifactKey> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(ArtifactKey(bytes))
    }
}

impl fmt::Display for ArtifactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convention::Kind;

    #[test]
    fn codes_and_zids_round_trip() {
        for language in Language::ALL {
            assert_eq!(Language::from_code(language.code()), Some(language));
            assert_eq!(Language::from_code(language.zid()), Some(language));
        }
        assert_eq!(Language::from_code("python"), None);
        assert_eq!(Language::Rust.label(), "Rust");
    }

    #[test]
    fn keys_cover_every_field_and_round_trip_as_hex() {
        let unit = Unit {
            language: Language::C,
            function_name: "Z1".to_owned(),
            signature: Signature {
                parameters: vec![("Z1K1".to_owned(), Kind::String)],
                result: Kind::String,
            },
            source: "x".to_owned(),
        };
        let key = ArtifactKey::compute(&unit, "clang 19", &["-O2"]);
        assert_eq!(
            key,
            ArtifactKey::compute(&unit.clone(), "clang 19", &["-O2"])
        );
        assert_eq!(ArtifactKey::from_hex(&key.to_hex()), Some(key));
        assert_eq!(key.to_string().len(), 64);
        assert_eq!(ArtifactKey::from_hex("zz"), None);
        let mut others = vec![
            ArtifactKey::compute(&unit, "clang 18", &["-O2"]),
            ArtifactKey::compute(&unit, "clang 19", &["-O1"]),
            ArtifactKey::compute(&unit, "clang 19", &["-O", "2"]),
        ];
        let mut changed = unit.clone();
        changed.language = Language::Rust;
        others.push(ArtifactKey::compute(&changed, "clang 19", &["-O2"]));
        let mut changed = unit.clone();
        changed.function_name = "Z2".to_owned();
        others.push(ArtifactKey::compute(&changed, "clang 19", &["-O2"]));
        let mut changed = unit.clone();
        changed.signature.result = Kind::Json;
        others.push(ArtifactKey::compute(&changed, "clang 19", &["-O2"]));
        let mut changed = unit.clone();
        changed.signature.parameters[0].0 = "Z1K2".to_owned();
        others.push(ArtifactKey::compute(&changed, "clang 19", &["-O2"]));
        let mut changed = unit.clone();
        changed.source.push(' ');
        others.push(ArtifactKey::compute(&changed, "clang 19", &["-O2"]));
        for other in &others {
            assert_ne!(*other, key);
        }
    }
}
