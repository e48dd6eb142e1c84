//! The source check that runs before a compiler sees the source: it refuses constructs that
//! make a compiler read files other than the source (or otherwise reach outside the unit).
//!
//! This is the first wall, not the only one: the compiler also runs under landlock, which
//! lets it read only the toolchains and its own temp dir (see `confine.rs`). The check exists
//! so that such attempts fail early with a clear reason instead of a confusing "permission
//! denied" from deep inside a compiler, and so that a hole in the second wall is not enough.
//!
//! Both checks work on a light lexer that skips comments and string/char literals, so that
//! text there is never mistaken for code, and conversely an unterminated comment or literal
//! swallows the rest of the source (as it does for the compiler).
//!
//! # C
//! The source is first brought to the form the preprocessor sees: trigraphs replaced (C17
//! has them; clang is also given `-fno-trigraphs`), backslash-newline splices removed, and
//! comments replaced by a space (so `#/**/include` and `#include /*\n*/ "x"` are seen as the
//! preprocessor sees them). Then, refused:
//! - `#include`, `#include_next`, `#import` whose operand is not a plain `<path>` or
//!   `"path"` (a macro-expanded include could name anything), or whose path is absolute,
//!   has a `..` segment, a backslash or is empty; the digraph `%:` counts as `#`;
//! - `#embed` and `__has_embed` (C23 file embedding, which clang 19 accepts);
//! - `__has_include(...)`/`__has_include_next(...)` with an operand as above;
//! - `#pragma` and `_Pragma` that name files: `dependency` (GCC's "is this file newer"),
//!   `include_alias`, `include_instead`, `module` (clang modules load files); any `_Pragma`
//!   whose operand is not a plain string literal (so it cannot be built by a macro);
//! - `asm`/`__asm`/`__asm__`: the assembler's `.incbin` reads files;
//! - token pasting (`##`, `%:%:`): it can build the identifiers above out of pieces the
//!   check cannot see (`_Pra##gma`, `__as##m__`).
//!
//! # Rust
//! Refused (raw identifiers `r#name` count as `name`):
//! - the identifiers `include`, `include_str`, `include_bytes` anywhere (as macros, and in
//!   `use` paths that would rename them);
//! - `extern crate` (there are no crates to load, but it searches the library path);
//! - `mod name` not followed by `{` (an out-of-line module reads another file);
//! - in attributes (`#[...]`, `#![...]`, also inside `cfg_attr`): `path`, `link` (a
//!   `+verbatim` link name can be any path), `debugger_visualizer` (reads a script file), and
//!   `$` (a macro could substitute any of these); `link(` and `debugger_visualizer`
//!   anywhere, as a macro could paste them into an attribute.
//!
//! `env!` and `option_env!` stay allowed: the compiler runs with an empty environment.

/// Checks C source; `Err` is the reason for refusing it.
pub(crate) fn check_c(source: &str) -> Result<(), String> {
    let text = strip_c_comments(&remove_splices(&replace_trigraphs(source)));
    for line in text.lines() {
        let rest = line.trim_start();
        let after_hash = rest.strip_prefix('#').or_else(|| rest.strip_prefix("%:"));
        if let Some(after_hash) = after_hash {
            check_c_directive(after_hash.trim_start())?;
        }
    }
    check_c_tokens(&text)
}

fn replace_trigraphs(source: &str) -> String {
    if !source.contains("??") {
        return source.to_owned();
    }
    let mut out = String::with_capacity(source.len());
    let bytes: Vec<char> = source.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == '?' && i + 2 < bytes.len() && bytes[i + 1] == '?' {
            let replacement = match bytes[i + 2] {
                '=' => Some('#'),
                '(' => Some('['),
                '/' => Some('\\'),
                ')' => Some(']'),
                '\'' => Some('^'),
                '<' => Some('{'),
                '!' => Some('|'),
                '>' => Some('}'),
                '-' => Some('~'),
                _ => None,
            };
            if let Some(r) = replacement {
                out.push(r);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Removes backslash-newline splices (also with `\r\n`), as translation phase 2 does.
fn remove_splices(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(next) = after
            .strip_prefix("\r\n")
            .or_else(|| after.strip_prefix('\n'))
        {
            rest = next;
        } else {
            out.push('\\');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Replaces comments by a space, leaving string and character literals as they are.
fn strip_c_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                for c in chars.by_ref() {
                    if previous == '*' && c == '/' {
                        break;
                    }
                    previous = c;
                }
                out.push(' ');
            }
            '"' | '\'' => {
                out.push(c);
                copy_c_literal(c, &mut chars, &mut out);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Copies a literal up to its closing quote (or the end of the line, where an unterminated
/// literal ends).
fn copy_c_literal(
    quote: char,
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut String,
) {
    while let Some(&c) = chars.peek() {
        if c == '\n' {
            return;
        }
        chars.next();
        out.push(c);
        if c == '\\' {
            if let Some(escaped) = chars.next() {
                out.push(escaped);
            }
        } else if c == quote {
            return;
        }
    }
}

fn check_c_directive(directive: &str) -> Result<(), String> {
    let name_end = directive
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(directive.len());
    let (name, operand) = directive.split_at(name_end);
    match name {
        "include" | "include_next" | "import" => {
            let rest = check_header_operand(operand.trim_start(), &format!("#{name}"))?;
            if !rest.trim().is_empty() {
                return Err(format!(
                    "#{name} must name one plain header and nothing else"
                ));
            }
            Ok(())
        }
        "embed" => Err("#embed is not allowed: it reads a file into the program".to_owned()),
        "pragma" => check_pragma_text(operand),
        _ => Ok(()),
    }
}

/// Checks a plain `<path>`/`"path"` operand and returns what follows it.
fn check_header_operand<'a>(operand: &'a str, what: &str) -> Result<&'a str, String> {
    let close = match operand.chars().next() {
        Some('<') => '>',
        Some('"') => '"',
        _ => {
            return Err(format!(
                "{what} must name a header as <name.h> or \"name.h\" (a macro-expanded operand \
                 is not allowed)"
            ));
        }
    };
    let inner = &operand[1..];
    let end = inner
        .find(close)
        .ok_or_else(|| format!("{what} has an unterminated header name"))?;
    let path = &inner[..end];
    if path.is_empty() {
        return Err(format!("{what} has an empty header name"));
    }
    if path.starts_with('/') {
        return Err(format!("{what} may not use an absolute path ({path})"));
    }
    if path.contains('\\') {
        return Err(format!(
            "{what} may not use a backslash in a header name ({path})"
        ));
    }
    if path.split('/').any(|segment| segment == "..") {
        return Err(format!(
            "{what} may not use \"..\" in a header name ({path})"
        ));
    }
    Ok(&inner[end + 1..])
}

/// Pragmas that make the compiler open or look up files.
const FILE_PRAGMAS: [&str; 4] = ["dependency", "include_alias", "include_instead", "module"];

fn check_pragma_text(text: &str) -> Result<(), String> {
    let words = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
    for word in words {
        if FILE_PRAGMAS.contains(&word) {
            return Err(format!(
                "#pragma ... {word} is not allowed: it makes the compiler read files"
            ));
        }
    }
    Ok(())
}

/// Identifiers of the C source that the check refuses or inspects, outside literals.
fn check_c_tokens(text: &str) -> Result<(), String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut line_start = true;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line_start = true;
            i += 1;
            continue;
        }
        if line_start && !c.is_whitespace() {
            line_start = false;
            // An include line's header name may hold quotes; it was checked already.
            let line: String = chars[i..].iter().take_while(|c| **c != '\n').collect();
            let directive = line
                .strip_prefix('#')
                .or_else(|| line.strip_prefix("%:"))
                .map(str::trim_start);
            if directive.is_some_and(|d| {
                ["include", "include_next", "import"]
                    .iter()
                    .any(|name| d.starts_with(name))
            }) {
                i += line.chars().count();
                continue;
            }
        }
        match c {
            '"' | '\'' => i = skip_c_literal(&chars, i + 1, c),
            '#' if chars.get(i + 1) == Some(&'#') => {
                return Err("token pasting (##) is not allowed".to_owned());
            }
            '%' if chars[i..].starts_with(&['%', ':', '%', ':']) => {
                return Err("token pasting (%:%:) is not allowed".to_owned());
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let line_before: String = chars[..start]
                    .iter()
                    .rev()
                    .take_while(|c| **c != '\n')
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                check_c_identifier(&word, &line_before, &chars[i..])?;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Whether the text before an identifier on its line only asks whether it is defined
/// (`defined X`, `defined(X`, `#ifdef X`, `#ifndef X`).
fn tests_definition(line_before: &str) -> bool {
    let before = line_before.trim_end();
    let before = before.strip_suffix('(').unwrap_or(before).trim_end();
    let directive = before.trim_start().trim_start_matches('#').trim();
    before.ends_with("defined") || ["ifdef", "ifndef", "elifdef", "elifndef"].contains(&directive)
}

/// The index after a C literal whose body starts at `i`: after its closing `quote`, or at
/// the end of the line for an unterminated one.
fn skip_c_literal(chars: &[char], mut i: usize, quote: char) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '\n' => return i,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

fn check_c_identifier(word: &str, line_before: &str, after: &[char]) -> Result<(), String> {
    let rest: String = after.iter().take(4096).collect();
    let rest = rest.trim_start();
    match word {
        "asm" | "__asm" | "__asm__" => Err(format!(
            "inline assembly ({word}) is not allowed: it can read files"
        )),
        "__has_embed" => Err("__has_embed is not allowed".to_owned()),
        "__has_include" | "__has_include_next"
            if !rest.starts_with('(') && tests_definition(line_before) =>
        {
            Ok(())
        }
        "__has_include" | "__has_include_next" => {
            let operand = rest
                .strip_prefix('(')
                .ok_or_else(|| format!("{word} must be followed by (<name.h>)"))?;
            check_header_operand(operand.trim_start(), word).map(drop)
        }
        "_Pragma" | "__pragma" => {
            let operand = rest
                .strip_prefix('(')
                .map(str::trim_start)
                .filter(|operand| operand.starts_with('"'))
                .ok_or_else(|| format!("{word} must be given a plain string literal"))?;
            let end = operand[1..].find('"').unwrap_or(operand.len() - 1);
            check_pragma_text(&operand[1..=end])
        }
        _ => Ok(()),
    }
}

/// A token of the Rust lexer-lite: identifiers and single punctuation characters; literals,
/// lifetimes and comments are dropped.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    Ident(String),
    Punct(char),
}

/// Checks Rust source; `Err` is the reason for refusing it.
pub(crate) fn check_rust(source: &str) -> Result<(), String> {
    let tokens = lex_rust(source);
    let ident = |at: usize| match tokens.get(at) {
        Some(Token::Ident(name)) => Some(name.as_str()),
        _ => None,
    };
    let punct = |at: usize| match tokens.get(at) {
        Some(Token::Punct(c)) => Some(*c),
        _ => None,
    };
    // Open attributes: the bracket depth at which each ends.
    let mut attribute_ends: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    for (at, token) in tokens.iter().enumerate() {
        match token {
            Token::Punct('[') => {
                depth += 1;
                let opens_attribute = (at >= 1 && punct(at - 1) == Some('#'))
                    || (at >= 2 && punct(at - 1) == Some('!') && punct(at - 2) == Some('#'));
                if opens_attribute {
                    attribute_ends.push(depth);
                }
            }
            Token::Punct(']') => {
                if attribute_ends.last() == Some(&depth) {
                    attribute_ends.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Token::Punct('$') if !attribute_ends.is_empty() => {
                return Err(
                    "macro variables ($) inside attributes are not allowed: they could \
                     substitute a file-reading attribute"
                        .to_owned(),
                );
            }
            Token::Ident(name) => {
                let in_attribute = !attribute_ends.is_empty();
                match name.as_str() {
                    "include" | "include_str" | "include_bytes" => {
                        return Err(format!(
                            "{name} is not allowed: it reads a file at compile time"
                        ));
                    }
                    "extern" if ident(at + 1) == Some("crate") => {
                        return Err("extern crate is not allowed: only std is available".to_owned());
                    }
                    "mod" => {
                        let mut next = at + 1;
                        if punct(next) == Some('$') {
                            next += 1;
                        }
                        if ident(next).is_none() || punct(next + 1) != Some('{') {
                            return Err(
                                "out-of-line modules (mod name;) are not allowed: write the \
                                 module inline, mod name { ... }"
                                    .to_owned(),
                            );
                        }
                    }
                    "debugger_visualizer" => {
                        return Err(
                            "debugger_visualizer is not allowed: it reads a file".to_owned()
                        );
                    }
                    "path" if in_attribute => {
                        return Err("#[path] is not allowed: it names another file".to_owned());
                    }
                    "link" if in_attribute || punct(at + 1) == Some('(') => {
                        return Err("#[link] is not allowed: only std is available".to_owned());
                    }
                    _ => {}
                }
            }
            Token::Punct(_) => {}
        }
    }
    Ok(())
}

fn lex_rust(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let is_ident_start = |c: char| c.is_alphabetic() || c == '_';
    let is_ident_continue = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                // Block comments nest in Rust.
                let mut nesting = 1;
                i += 2;
                while i < chars.len() && nesting > 0 {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        nesting += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        nesting -= 1;
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
            }
            '"' => i = skip_quoted(&chars, i + 1, '"'),
            '\'' => {
                if next == Some('\\') {
                    i = skip_quoted(&chars, i + 1, '\'');
                } else if chars.get(i + 2) == Some(&'\'') {
                    i += 3;
                } else {
                    // A lifetime or label: skip the quote, the name is an identifier.
                    i += 1;
                    if chars.get(i) == Some(&'r') && chars.get(i + 1) == Some(&'#') {
                        i += 2;
                    }
                    while i < chars.len() && is_ident_continue(chars[i]) {
                        i += 1;
                    }
                }
            }
            c if is_ident_start(c) => {
                let start = i;
                while i < chars.len() && is_ident_continue(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let after = chars.get(i).copied();
                match (word.as_str(), after) {
                    ("b" | "c", Some('"')) => i = skip_quoted(&chars, i + 1, '"'),
                    ("b", Some('\'')) => i = skip_quoted(&chars, i + 1, '\''),
                    ("r" | "br" | "cr", Some('"' | '#')) => {
                        let mut hashes = 0;
                        let mut j = i;
                        while chars.get(j) == Some(&'#') {
                            hashes += 1;
                            j += 1;
                        }
                        if chars.get(j) == Some(&'"') {
                            i = skip_raw(&chars, j + 1, hashes);
                        } else if word == "r" && hashes == 1 {
                            // A raw identifier: r#name is name.
                            let start = j;
                            while j < chars.len() && is_ident_continue(chars[j]) {
                                j += 1;
                            }
                            tokens.push(Token::Ident(chars[start..j].iter().collect()));
                            i = j;
                        } else {
                            tokens.push(Token::Ident(word));
                        }
                    }
                    _ => tokens.push(Token::Ident(word)),
                }
            }
            c if c.is_ascii_digit() => {
                while i < chars.len() && (is_ident_continue(chars[i])) {
                    i += 1;
                }
            }
            c if c.is_whitespace() => i += 1,
            c => {
                tokens.push(Token::Punct(c));
                i += 1;
            }
        }
    }
    tokens
}

/// The index after the closing `quote` of a literal whose body starts at `i`, honouring
/// backslash escapes (an unterminated literal runs to the end).
fn skip_quoted(chars: &[char], mut i: usize, quote: char) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// The index after the `"` followed by `hashes` `#` that closes a raw string whose body starts
/// at `i`.
fn skip_raw(chars: &[char], mut i: usize, hashes: usize) -> usize {
    while i < chars.len() {
        if chars[i] == '"'
            && chars[i + 1..]
                .iter()
                .take(hashes)
                .filter(|c| **c == '#')
                .count()
                == hashes
        {
            return i + 1 + hashes;
        }
        i += 1;
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_c(source: &str) -> String {
        check_c(source).expect_err(source)
    }

    fn refused_rust(source: &str) -> String {
        check_rust(source).expect_err(source)
    }

    #[test]
    fn plain_c_passes() {
        let source = r##"
#include <stdio.h>
#include "zeval.h"
# include <string.h> // a comment "with quotes
#define STR(x) #x
/* #include "/etc/passwd" */
const char *s = "#include \"/etc/passwd\" ## asm ??= ";
char c = '"';
char d = '\'';
#if defined(__has_include) && __has_include(<stdlib.h>)
#endif
#pragma once
_Pragma("GCC diagnostic ignored \"-Wall\"")
char *Z1(const char *Z1K1) { return (char *) Z1K1; }
"##;
        check_c(source).unwrap();
    }

    #[test]
    fn c_includes_must_be_plain_and_relative_below() {
        assert!(refused_c("#include \"/etc/passwd\"").contains("absolute"));
        assert!(refused_c("#include </etc/passwd>").contains("absolute"));
        assert!(refused_c("#include \"../x\"").contains(".."));
        assert!(refused_c("#include <sys/../../etc/passwd>").contains(".."));
        assert!(refused_c("#include_next \"/etc/passwd\"").contains("absolute"));
        assert!(refused_c("#import \"/etc/passwd\"").contains("absolute"));
        assert!(refused_c("#define F \"/etc/passwd\"\n#include F").contains("macro"));
        assert!(refused_c("#include \"a.h\" extra").contains("nothing else"));
        assert!(refused_c("#include \"\"").contains("empty"));
        assert!(refused_c("#include \"a\\\\b\"").contains("backslash"));
    }

    #[test]
    fn c_evasions_are_seen_through() {
        // Digraph, splices (also inside the directive name and the path), comments, trigraphs.
        assert!(refused_c("%:include \"/etc/passwd\"").contains("absolute"));
        assert!(refused_c("#\\\ninclude \"/etc/passwd\"").contains("absolute"));
        assert!(refused_c("#inc\\\nlude \"/etc/passwd\"").contains("absolute"));
        assert!(refused_c("#include \"/etc/pa\\\r\nsswd\"").contains("absolute"));
        assert!(refused_c("#include \".\\\n./x\"").contains(".."));
        assert!(refused_c("#/* */include \"/etc/passwd\"").contains("absolute"));
        assert!(refused_c("  # /*\n*/ include \"/etc/passwd\"").contains("absolute"));
        assert!(refused_c("??=include \"/etc/passwd\"").contains("absolute"));
        assert!(refused_c("#include ??/\n\"/etc/passwd\"").contains("absolute"));
        // A spliced line comment continues on the next line, as for the compiler.
        check_c("// comment \\\n#embed \"x\"").unwrap();
        assert!(refused_c("int x; /* */ #include \"/x\"\n#embed <x>").contains("#embed"));
    }

    #[test]
    fn c_file_reading_features_are_refused() {
        assert!(refused_c("#embed \"data.bin\"").contains("#embed"));
        assert!(refused_c("%:embed <x>").contains("#embed"));
        assert!(refused_c("#if __has_embed(\"x\")\n#endif").contains("__has_embed"));
        assert!(refused_c("#if __has_include(\"/etc/passwd\")\n#endif").contains("absolute"));
        assert!(refused_c("#if __has_include(X)\n#endif").contains("__has_include"));
        assert!(
            refused_c("#define H __has_include\n#if H(\"/etc/passwd\")\n#endif")
                .contains("__has_include")
        );
        check_c("#ifdef __has_include\n#endif\n#if defined __has_include_next\n#endif").unwrap();
        assert!(refused_c("#pragma GCC dependency \"/etc/passwd\"").contains("dependency"));
        assert!(
            refused_c("_Pragma(\"GCC dependency \\\"/etc/passwd\\\"\")").contains("dependency")
        );
        assert!(
            refused_c("#define P(x) _Pragma(#x)\nP(GCC dependency \"a\")").contains("plain string")
        );
        assert!(refused_c("__asm__(\".incbin \\\"/etc/passwd\\\"\");").contains("assembly"));
        assert!(refused_c("asm(\"\");").contains("assembly"));
        assert!(refused_c("#define J(a, b) a ## b\nJ(__a, sm__)(\"\");").contains("pasting"));
        assert!(refused_c("#define J(a, b) a %:%: b").contains("pasting"));
    }

    #[test]
    fn plain_rust_passes() {
        let source = r####"
// include_str!("/etc/passwd") in a comment
/* nested /* include!("x") */ still a comment mod x; */
/// doc comment with mod y;
fn Z1<'a>(Z1K1: &'a str) -> String {
    let path = "include_str!(\"/etc/passwd\")";
    let raw = r##"extern crate x; "# mod z;"##;
    let bytes = br##"include_bytes!"##;
    let c = 'x'; let q = '"'; let e = '\''; let u = '\u{1F600}';
    let _ = (path, raw, bytes, c, q, e, u, b'"', env!("PATH_NOT_SET_IS_AN_ERROR_BUT_ALLOWED"));
    'outer: loop { break 'outer; }
    mod inline { pub fn f() {} }
    #[derive(Debug)] struct S { link: u8 }
    Z1K1.chars().rev().collect()
}
"####;
        check_rust(source).unwrap();
    }

    #[test]
    fn rust_file_reading_is_refused() {
        assert!(
            refused_rust("const S: &str = include_str!(\"/etc/passwd\");").contains("include_str")
        );
        assert!(refused_rust("const S: &[u8] = include_bytes!(\"x\");").contains("include_bytes"));
        assert!(refused_rust("include!(\"x.rs\");").contains("include"));
        assert!(
            refused_rust("const S: &str = r#include_str!(\"/etc/passwd\");")
                .contains("include_str")
        );
        assert!(refused_rust("use std::include_str as inc;").contains("include_str"));
        assert!(
            refused_rust("const S: &str = std::include_str ! (\"x\");").contains("include_str")
        );
        assert!(refused_rust("extern crate core;").contains("extern crate"));
        assert!(refused_rust("extern /* */ crate alloc;").contains("extern crate"));
        assert!(refused_rust("#[path = \"/etc/passwd\"] mod x;").contains("path"));
        assert!(refused_rust("#[path = \"/etc/passwd\"] mod x {}").contains("path"));
        assert!(refused_rust("#![path = \"x\"]").contains("path"));
        assert!(refused_rust("#[cfg_attr(all(), path = \"x\")] mod x {}").contains("path"));
        assert!(refused_rust("mod x;").contains("out-of-line"));
        assert!(refused_rust("pub mod r#x;").contains("out-of-line"));
        assert!(
            refused_rust("macro_rules! m { ($n:ident) => { mod $n; } }").contains("out-of-line")
        );
        assert!(refused_rust("m!(mod);").contains("out-of-line"));
        assert!(
            refused_rust("#[link(name = \"/etc/passwd\", kind = \"static\", modifiers = \"+verbatim\")] extern \"C\" {}")
                .contains("link")
        );
        assert!(
            refused_rust(
                "macro_rules! l { ($a:ident) => { #[$a(name = \"x\")] extern \"C\" {} } }"
            )
            .contains("macro variables")
        );
        assert!(refused_rust("m!(link(name = \"x\"));").contains("link"));
        assert!(
            refused_rust("#![debugger_visualizer(gdb_script_file = \"/etc/passwd\")]")
                .contains("debugger_visualizer")
        );
    }

    #[test]
    fn rust_literals_and_lifetimes_do_not_hide_code() {
        // A lifetime is not the start of a char literal that would swallow the include.
        assert!(
            refused_rust("fn f<'a>(x: &'a str) -> &'a str { include_str!(\"x\") }")
                .contains("include_str")
        );
        // A string ends where it ends, also after an escaped quote.
        assert!(
            refused_rust("const A: &str = \"\\\"\"; const B: &str = include_str!(\"x\");")
                .contains("include_str")
        );
        // A raw string ends at its own number of hashes.
        assert!(refused_rust("const A: &str = r##\"\"#\"##; include!(\"x\");").contains("include"));
        // A nested block comment ends only at its outer end; after it, code counts again.
        assert!(refused_rust("/* /* */ */ include!(\"x\");").contains("include"));
        // An unterminated comment or string swallows the rest, as for rustc.
        check_rust("/* include!(\"x\");").unwrap();
        check_rust("\" include!(\"x\")").unwrap();
        check_rust("\"a\" include!(x)").unwrap_err();
    }
}
