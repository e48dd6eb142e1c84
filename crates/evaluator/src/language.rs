//! Programming languages: which guest runs a `Z61K1` language string or language ZID, per
//! deployment variant (spec §3.1 step 4).

use std::fmt;
use std::str::FromStr;

/// The language families zeval has a guest for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// QuickJS (`quickjs.wasm`).
    JavaScript,
    /// CPython (`python.wasm`).
    Python,
    /// C17, compiled by clang to a wasm module per implementation (`zeval_compiler`).
    C,
    /// Rust, compiled by rustc to a wasm module per implementation (`zeval_compiler`).
    Rust,
}

impl Family {
    /// The families run by an interpreter guest, loaded once per evaluator.
    pub const INTERPRETED: [Family; 2] = [Family::JavaScript, Family::Python];

    /// The guest file stem in the guest directory (compiled families have none: their
    /// name).
    pub fn guest_name(self) -> &'static str {
        match self {
            Family::JavaScript => "quickjs",
            Family::Python => "python",
            Family::C => "c",
            Family::Rust => "rust",
        }
    }

    /// Whether implementations of this family are compiled ahead of the call.
    pub fn is_compiled(self) -> bool {
        self.compiled_language().is_some()
    }

    /// The compiler's language of a compiled family.
    pub fn compiled_language(self) -> Option<zeval_compiler::Language> {
        match self {
            Family::C => Some(zeval_compiler::Language::C),
            Family::Rust => Some(zeval_compiler::Language::Rust),
            Family::JavaScript | Family::Python => None,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::JavaScript => "javascript",
            Family::Python => "python",
            Family::C => "c",
            Family::Rust => "rust",
        })
    }
}

/// `(language string, ZID)` of every programming language the original knows
/// (`definitions/softwareLanguages.json`). Each is registered under both keys.
const SOFTWARE_LANGUAGES: &[(&str, &str)] = &[
    ("javascript", "Z600"),
    ("javascript-es5", "Z601"),
    ("javascript-es2015", "Z602"),
    ("javascript-es2016", "Z603"),
    ("javascript-es2017", "Z604"),
    ("javascript-es2018", "Z605"),
    ("javascript-es2019", "Z606"),
    ("javascript-es2020", "Z607"),
    ("javascript-es2021", "Z608"),
    ("python", "Z610"),
    ("python-3", "Z611"),
    ("python-3-5", "Z612"),
    ("python-3-6", "Z613"),
    ("python-3-8", "Z614"),
    ("python-3-9", "Z615"),
    ("lua", "Z620"),
];

/// Which executors a deployment registers, as the original's three builds do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variant {
    /// Every `javascript*` and `python*` language, and the compiled ones (`c`, `rust`).
    #[default]
    Omnibus,
    /// Only the `javascript*` languages.
    JavascriptAll,
    /// Only the `python*` languages.
    Python3All,
}

impl Variant {
    /// Every variant, in the suite's naming order.
    pub const ALL: [Variant; 3] = [
        Variant::Omnibus,
        Variant::JavascriptAll,
        Variant::Python3All,
    ];

    /// Whether this variant registers `family`.
    pub fn has(self, family: Family) -> bool {
        match self {
            Variant::Omnibus => true,
            Variant::JavascriptAll => family == Family::JavaScript,
            Variant::Python3All => family == Family::Python,
        }
    }

    /// The suite's name for the variant.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Omnibus => "omnibus",
            Variant::JavascriptAll => "javascript-all",
            Variant::Python3All => "python3-all",
        }
    }
}

impl FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Variant::ALL.into_iter().find(|v| v.name() == s).ok_or_else(|| {
            format!("unknown evaluator variant {s:?} (expected omnibus, javascript-all or python3-all)")
        })
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The family registered for a language string or ZID in `variant`, or `None` when the
/// variant has no executor for it (the caller answers Z558 "No executor found …").
pub fn family_for(language: &str, variant: Variant) -> Option<Family> {
    if let Some(compiled) = zeval_compiler::Language::from_code(language) {
        let family = match compiled {
            zeval_compiler::Language::C => Family::C,
            zeval_compiler::Language::Rust => Family::Rust,
        };
        return variant.has(family).then_some(family);
    }
    let (code, _) = SOFTWARE_LANGUAGES
        .iter()
        .find(|(code, zid)| *code == language || *zid == language)?;
    let family = if code.starts_with("javascript") {
        Family::JavaScript
    } else if code.starts_with("python") {
        Family::Python
    } else {
        return None;
    };
    variant.has(family).then_some(family)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_zids_resolve() {
        assert_eq!(
            family_for("javascript", Variant::Omnibus),
            Some(Family::JavaScript)
        );
        assert_eq!(
            family_for("Z608", Variant::Omnibus),
            Some(Family::JavaScript)
        );
        assert_eq!(
            family_for("python-3", Variant::Omnibus),
            Some(Family::Python)
        );
        assert_eq!(
            family_for("Z615", Variant::Python3All),
            Some(Family::Python)
        );
    }

    #[test]
    fn compiled_languages_resolve_by_code_and_zid() {
        assert_eq!(family_for("c", Variant::Omnibus), Some(Family::C));
        assert_eq!(family_for("Z630", Variant::Omnibus), Some(Family::C));
        assert_eq!(family_for("rust", Variant::Omnibus), Some(Family::Rust));
        assert_eq!(family_for("Z640", Variant::Omnibus), Some(Family::Rust));
        assert!(Family::Rust.is_compiled() && !Family::Python.is_compiled());
    }

    #[test]
    fn unknown_and_unregistered_languages_have_no_executor() {
        for language in ["python-1", "Java", "lua", "Z620", "python3", ""] {
            assert_eq!(family_for(language, Variant::Omnibus), None, "{language}");
        }
        assert_eq!(family_for("python", Variant::JavascriptAll), None);
        assert_eq!(family_for("c", Variant::JavascriptAll), None);
        assert_eq!(family_for("javascript", Variant::Python3All), None);
    }

    #[test]
    fn the_table_matches_the_shared_definitions() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/wikifunctions/definitions/softwareLanguages.json"
        );
        let text = std::fs::read_to_string(path).expect("the shared Wikifunctions data");
        let shared: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).unwrap();
        assert_eq!(shared.len(), SOFTWARE_LANGUAGES.len());
        for (code, zid) in SOFTWARE_LANGUAGES {
            assert_eq!(
                shared.get(*code).and_then(|v| v.as_str()),
                Some(*zid),
                "{code}"
            );
        }
    }
}
