//! The regular expressions of the ZObject schemas, as hand-written matchers.
//!
//! Ajv compiles schema patterns as JavaScript `RegExp`s with the `u` flag: `\d` is ASCII
//! only and `.` is one code point other than a line terminator. Unanchored patterns match
//! anywhere in the string.

use crate::ident::{is_key, is_zid};

/// A pattern used by a schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// `^Z[1-9]\d*$`
    Zid,
    /// `^Z[1-9]\d*(K[1-9]\d*)?$`
    ZidOrGlobalKey,
    /// `^K[1-9]\d*$`
    LocalKey,
    /// `^(Z[1-9]\d*)?K[1-9]\d*$`
    Key,
    /// `^(Z[1-9]\d*)K[1-9]\d*?$`: a global key.
    GlobalKey,
    /// `K[1-9]\d*$` (unanchored at the start): the string ends in a key suffix.
    EndsInKey,
    /// `.*K2` (unanchored): the string contains `K2`.
    ContainsK2,
    /// `^(Z(([2-9])|([1-9]\d+)))?K1$`: `K1` or `Z<n>K1` other than `Z1K1`.
    K1NotZ1K1,
    /// `^[a-zA-Z\d][a-zA-Z\d-]+[a-zA-Z\d]$`: a programming-language code.
    LanguageCode,
    /// `^[0-9a-fA-F]{2}$`: a byte.
    HexByte,
    /// `^.$`: exactly one code point that is not a line terminator.
    OneCharacter,
}

impl Pattern {
    /// Whether `s` matches, with JavaScript `RegExp` (`u` flag) semantics.
    pub(crate) fn is_match(self, s: &str) -> bool {
        match self {
            Pattern::Zid => is_zid(s),
            Pattern::ZidOrGlobalKey => is_zid(s) || (is_key(s) && !s.starts_with('K')),
            Pattern::LocalKey => is_key(s) && s.starts_with('K'),
            Pattern::Key => is_key(s),
            Pattern::GlobalKey => is_key(s) && !s.starts_with('K'),
            Pattern::EndsInKey => ends_in_key(s),
            Pattern::ContainsK2 => s.contains("K2"),
            Pattern::K1NotZ1K1 => {
                s == "K1" || (s.ends_with("K1") && is_zid(&s[..s.len() - 2]) && s != "Z1K1")
            }
            Pattern::LanguageCode => {
                let b = s.as_bytes();
                let edge = |c: u8| c.is_ascii_alphanumeric();
                b.len() >= 3
                    && edge(b[0])
                    && edge(b[b.len() - 1])
                    && b[1..b.len() - 1].iter().all(|&c| edge(c) || c == b'-')
            }
            Pattern::HexByte => s.len() == 2 && s.bytes().all(|b| b.is_ascii_hexdigit()),
            Pattern::OneCharacter => {
                let mut chars = s.chars();
                matches!((chars.next(), chars.next()), (Some(c), None)
                    if !matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}'))
            }
        }
    }
}

/// `K[1-9]\d*$`: the string ends in `K`, a non-zero digit, then digits. `K` is not a digit,
/// so it must sit just before the maximal trailing digit run.
fn ends_in_key(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = b.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    let run_start = b.len() - digits;
    digits > 0 && run_start > 0 && b[run_start - 1] == b'K' && b[run_start] != b'0'
}

#[cfg(test)]
mod tests {
    use super::Pattern::*;

    #[test]
    fn patterns() {
        assert!(Zid.is_match("Z1") && !Zid.is_match("Z01") && !Zid.is_match("Z1K1"));
        assert!(ZidOrGlobalKey.is_match("Z1K1") && ZidOrGlobalKey.is_match("Z10"));
        assert!(!ZidOrGlobalKey.is_match("K1"));
        assert!(LocalKey.is_match("K12") && !LocalKey.is_match("Z1K1"));
        assert!(
            EndsInKey.is_match("K1") && EndsInKey.is_match("Z4K2") && EndsInKey.is_match("xK3")
        );
        assert!(!EndsInKey.is_match("K0") && !EndsInKey.is_match("Z4"));
        assert!(
            K1NotZ1K1.is_match("K1") && K1NotZ1K1.is_match("Z2K1") && K1NotZ1K1.is_match("Z11K1")
        );
        assert!(!K1NotZ1K1.is_match("Z1K1") && !K1NotZ1K1.is_match("K2"));
        assert!(LanguageCode.is_match("python-3") && !LanguageCode.is_match("-js"));
        assert!(HexByte.is_match("fF") && !HexByte.is_match("g0"));
        assert!(
            OneCharacter.is_match("𝄞")
                && !OneCharacter.is_match("ab")
                && !OneCharacter.is_match("\n")
        );
    }
}
