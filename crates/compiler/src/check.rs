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
//! clang compiles the source exactly as given, so the check must find the lines, comments
//! and literals where clang (19, `-std=c17 -fno-trigraphs`) finds them; where copying clang
//! would be intricate, the source is refused instead. So first: a byte order mark is skipped
//! at the start (as clang does) and refused elsewhere; a NUL, a carriage return not followed by
//! a line feed (clang ends a line there) and a line starting with a version-control conflict
//! marker (clang skips the conflicting text unread) are refused; `\r\n` is read as `\n`.
//! White space is clang's: Rust's plus U+180E.
//!
//! The source is then brought to the form the preprocessor sees: backslash-newline splices
//! removed (also with blanks between, as clang allows), and comments replaced by a space (so
//! `#/**/include` and `#include /*\n*/ "x"` are seen as the preprocessor sees them). clang
//! reads trigraphs as written; the check reads the source both so and with trigraphs replaced,
//! and refuses what either reading refuses. Then, refused:
//! - `#include`, `#include_next`, `#import` whose operand is not a plain `<path>` or
//!   `"path"` (a macro-expanded include could name anything), or whose path is absolute,
//!   has a `..` segment, a backslash, white space (where a comment was) or is empty or
//!   overlong; the digraph `%:` counts as `#`;
//! - `#embed` and `__has_embed` (C23 file embedding, which clang 19 accepts);
//! - `__has_include(...)`/`__has_include_next(...)` with an operand as above, and both
//!   without `(` other than after `defined` or `#ifdef` and the like;
//! - `#pragma` and `_Pragma` that name files: `dependency` (GCC's "is this file newer"),
//!   `include_alias`, `include_instead`, `module` (clang modules load files); any `_Pragma`
//!   whose operand is not a plain string literal (so it cannot be built by a macro);
//! - a comment that starts in an `#error` or `#warning` message and ends on a later line:
//!   clang reads the message as plain text, but lexes it in a skipped `#if` group;
//! - `asm`/`__asm`/`__asm__`: the assembler's `.incbin` reads files;
//! - token pasting (`##`, `%:%:`): it can build the identifiers above out of pieces the
//!   check cannot see (`_Pra##gma`, `__as##m__`).
//!
//! The C check takes time linear in the source: it runs before any compile budget applies.
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

use std::borrow::Cow;

/// Checks C source; `Err` is the reason for refusing it.
pub(crate) fn check_c(source: &str) -> Result<(), String> {
    let source = clang_line_ends(source)?;
    // clang is given -fno-trigraphs, so the reading as written is the one it compiles; the
    // reading with trigraphs keeps the check sound should that flag go.
    if let Some(replaced) = replace_trigraphs(&source) {
        check_c_reading(&replaced)?;
    }
    check_c_reading(&source)
}

/// The source with its line ends as clang finds them, each written `\n`; `Err` where that
/// cannot be done simply.
fn clang_line_ends(source: &str) -> Result<Cow<'_, str>, String> {
    // clang skips one byte order mark at the very start of a file, and only there.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    if source.contains('\u{feff}') {
        return Err(
            "a byte order mark (U+FEFF) is only allowed at the start of the source".to_owned(),
        );
    }
    // clang reads a NUL as white space; the check would not.
    if source.contains('\0') {
        return Err("the source contains a NUL character".to_owned());
    }
    // clang also ends a line at a lone "\r", and a splice at "\n\r". With every "\r" in a
    // "\r\n", reading that as "\n" is exact: where clang splices "\\\n\r" and keeps the "\n"
    // of "\\\n\r\n", the check splices "\\\n" and keeps the "\n" from "\r\n".
    let source = if source.contains('\r') {
        Cow::Owned(source.replace("\r\n", "\n"))
    } else {
        Cow::Borrowed(source)
    };
    if source.contains('\r') {
        return Err(
            "a carriage return (\\r) not followed by a line feed is not allowed: clang ends a \
             line there"
                .to_owned(),
        );
    }
    // From such a marker's "=======" line to its ">>>>>>>" line, clang skips the text without
    // reading comments or literals, so a comment opened there would hide from the check what
    // clang reads after it.
    if source
        .split('\n')
        .any(|line| line.starts_with("<<<<<<<") || line.starts_with(">>>> "))
    {
        return Err(
            "a line may not start with a version-control conflict marker (<<<<<<< or >>>> )"
                .to_owned(),
        );
    }
    Ok(source)
}

/// The source with trigraphs replaced, if it has any.
fn replace_trigraphs(source: &str) -> Option<String> {
    if !source.contains("??") {
        return None;
    }
    let mut out = String::with_capacity(source.len());
    let mut replaced = false;
    let chars: Vec<char> = source.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '?' && i + 2 < chars.len() && chars[i + 1] == '?' {
            let replacement = match chars[i + 2] {
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
                replaced = true;
                i += 3;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    replaced.then_some(out)
}

/// Whether clang reads `c` as white space (the Unicode ones with a warning). Rust's
/// `is_whitespace` lacks only U+180E, which Unicode 6.3 dropped from White_Space.
fn is_c_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{180e}'
}

fn is_c_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

const INCLUDE_DIRECTIVES: [&str; 3] = ["include", "include_next", "import"];

/// Checks one reading of the source (see [`check_c`]).
fn check_c_reading(source: &str) -> Result<(), String> {
    let (text, line_spanning_comments) = strip_c_comments(&remove_splices(source));
    let mut line_spanning_comments = line_spanning_comments.into_iter().peekable();
    let mut line_start = 0;
    for line in text.split('\n') {
        let line_end = line_start + line.len();
        let mut message = None;
        if let Some((name, operand)) = c_directive(line) {
            check_c_directive(name, operand)?;
            if matches!(name, "error" | "warning") {
                message = Some((name, line_end - operand.len()));
            }
        }
        while let Some(at) = line_spanning_comments.next_if(|at| *at < line_end) {
            if let Some((name, message_start)) = message
                && at >= message_start
            {
                return Err(format!(
                    "a comment in an #{name} message must end on its line (clang reads the \
                     message as plain text)"
                ));
            }
        }
        line_start = line_end + 1;
    }
    check_c_tokens(&text)
}

/// Removes backslash-newline splices, as translation phase 2 does; like clang, also when
/// blanks stand between the backslash and the newline.
fn remove_splices(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        // Only ASCII blanks here: clang reads a backslash before U+00A0 as a backslash.
        if let Some(next) = after
            .trim_start_matches([' ', '\t', '\x0b', '\x0c'])
            .strip_prefix('\n')
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

/// Replaces comments by a space, leaving string and character literals as they are. Also
/// returns where in the result the spaces are that replaced a comment spanning a line end.
fn strip_c_comments(source: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(source.len());
    let mut line_spanning = Vec::new();
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
                let mut spans_lines = false;
                for c in chars.by_ref() {
                    if previous == '*' && c == '/' {
                        break;
                    }
                    spans_lines |= c == '\n';
                    previous = c;
                }
                if spans_lines {
                    line_spanning.push(out.len());
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
    (out, line_spanning)
}

/// Copies a literal up to its closing quote (or the end of the line, where an unterminated
/// literal ends; a backslash does not carry it over, clang ends it there too).
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
            if let Some(escaped) = chars.next_if(|escaped| *escaped != '\n') {
                out.push(escaped);
            }
        } else if c == quote {
            return;
        }
    }
}

/// The name and the rest of a directive line, one whose first token is `#` or `%:`.
fn c_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start_matches(is_c_space);
    let rest = rest.strip_prefix('#').or_else(|| rest.strip_prefix("%:"))?;
    let directive = rest.trim_start_matches(is_c_space);
    let name_end = directive
        .find(|c: char| !is_c_identifier_char(c))
        .unwrap_or(directive.len());
    Some(directive.split_at(name_end))
}

fn check_c_directive(name: &str, operand: &str) -> Result<(), String> {
    match name {
        "include" | "include_next" | "import" => {
            let rest =
                check_header_operand(operand.trim_start_matches(is_c_space), &format!("#{name}"))?;
            if !rest.trim_matches(is_c_space).is_empty() {
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

/// The longest header name accepted, in bytes: far more than a real header needs. It bounds
/// the work for each `__has_include`, so that many of them before one far `>` cannot make the
/// check quadratic.
const MAX_HEADER_NAME: usize = 256;

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
    let mut window = inner.len().min(MAX_HEADER_NAME + 1);
    while !inner.is_char_boundary(window) {
        window -= 1;
    }
    let window = &inner[..window];
    let line = &window[..window.find('\n').unwrap_or(window.len())];
    let end = match line.find(close) {
        Some(end) => end,
        None if line.len() == window.len() && window.len() < inner.len() => {
            return Err(format!(
                "{what} has a header name longer than {MAX_HEADER_NAME} bytes"
            ));
        }
        None => return Err(format!("{what} has an unterminated header name")),
    };
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
    // clang reads <a/*b*/c> as the path "a/*b*/c", the check as "a c" (comments are gone by
    // now): refusing white space in header names refuses such comments too.
    if path.contains(is_c_space) {
        return Err(format!(
            "{what} may not use white space or comments in a header name ({path})"
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
    let words = text.split(|c: char| !is_c_identifier_char(c));
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
///
/// All work per token is bounded by the token, the blanks next to it, or (for the few words
/// that are inspected) the operand that follows, so that the whole is linear in the text.
fn check_c_tokens(text: &str) -> Result<(), String> {
    // Bytes: everything the lexer looks for is ASCII, and a UTF-8 sequence has no ASCII byte.
    let bytes = text.as_bytes();
    let mut line_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if i == line_start {
            let line_end = text[i..].find('\n').map_or(text.len(), |at| i + at);
            // An include line's header name may hold quotes or `asm/`; the line was checked
            // whole, and holds nothing else.
            if c_directive(&text[i..line_end])
                .is_some_and(|(name, _)| INCLUDE_DIRECTIVES.contains(&name))
            {
                i = line_end;
                continue;
            }
        }
        match bytes[i] {
            b'\n' => {
                i += 1;
                line_start = i;
            }
            quote @ (b'"' | b'\'') => i = c_literal_end(bytes, i + 1, quote).1,
            b'#' if bytes.get(i + 1) == Some(&b'#') => {
                return Err("token pasting (##) is not allowed".to_owned());
            }
            b'%' if bytes[i..].starts_with(b"%:%:") => {
                return Err("token pasting (%:%:) is not allowed".to_owned());
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && is_c_identifier_char(char::from(bytes[i])) {
                    i += 1;
                }
                check_c_identifier(text, line_start, start, i)?;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// For a C literal whose body starts at `i`: where the body ends, and the index after the
/// literal (after its closing `quote`, or at the end of the line for an unterminated one). A
/// backslash escapes the next character but not a line end: clang ends the literal there.
fn c_literal_end(bytes: &[u8], mut i: usize, quote: u8) -> (usize, usize) {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if bytes.get(i + 1).is_some_and(|next| *next != b'\n') => i += 2,
            b'\n' => return (i, i),
            c if c == quote => return (i, i + 1),
            _ => i += 1,
        }
    }
    (bytes.len(), bytes.len())
}

/// Checks the identifier `text[start..end]`, which is on the line starting at `line_start`.
fn check_c_identifier(
    text: &str,
    line_start: usize,
    start: usize,
    end: usize,
) -> Result<(), String> {
    let word = &text[start..end];
    // What follows, also on later lines; only looked at for the words below.
    let rest = || text[end..].trim_start_matches(is_c_space);
    match word {
        "asm" | "__asm" | "__asm__" => Err(format!(
            "inline assembly ({word}) is not allowed: it can read files"
        )),
        "__has_embed" => Err("__has_embed is not allowed".to_owned()),
        "__has_include" | "__has_include_next" => match rest().strip_prefix('(') {
            Some(operand) => {
                check_header_operand(operand.trim_start_matches(is_c_space), word).map(drop)
            }
            None if tests_definition(&text[line_start..start]) => Ok(()),
            None => Err(format!("{word} must be followed by (<name.h>)")),
        },
        "_Pragma" | "__pragma" => {
            let body = rest()
                .strip_prefix('(')
                .map(|operand| operand.trim_start_matches(is_c_space))
                .and_then(|operand| operand.strip_prefix('"'))
                .ok_or_else(|| format!("{word} must be given a plain string literal"))?;
            let body_start = text.len() - body.len();
            let (body_end, _) = c_literal_end(text.as_bytes(), body_start, b'"');
            check_pragma_text(&text[body_start..body_end])
        }
        _ => Ok(()),
    }
}

/// Whether the text before an identifier on its line only asks whether it is defined
/// (`defined X`, `defined(X`, `#ifdef X`, `#ifndef X`).
///
/// It runs for identifiers on long lines too, so it reads the line backwards from the
/// identifier: blanks, one `(`, the word before, and only after `ifdef` and the like further.
fn tests_definition(line_before: &str) -> bool {
    let before = line_before.trim_end_matches(is_c_space);
    let before = before
        .strip_suffix('(')
        .unwrap_or(before)
        .trim_end_matches(is_c_space);
    let head = before.trim_end_matches(is_c_identifier_char);
    match &before[head.len()..] {
        // Only the whole word: `xdefined` can be a macro that expands to nothing. clang's
        // identifiers also take `$` and most non-ASCII letters.
        "defined" => head
            .chars()
            .next_back()
            .is_none_or(|c| is_c_space(c) || (c.is_ascii() && c != '$')),
        "ifdef" | "ifndef" | "elifdef" | "elifndef" => {
            let head = head.trim_end_matches(is_c_space);
            head.strip_suffix('#')
                .or_else(|| head.strip_suffix("%:"))
                .is_some_and(|head| head.trim_end_matches(is_c_space).is_empty())
        }
        _ => false,
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
/// at `i`. Each `"` looks at the `#`s right after it only: counting `hashes` characters after
/// every `"` was quadratic (`r` and 87k `#`, then 175k `"`: 10^10 steps in a 256 KiB source).
fn skip_raw(chars: &[char], mut i: usize, hashes: usize) -> usize {
    while i < chars.len() {
        if chars[i] == '"'
            && chars[i + 1..]
                .iter()
                .take(hashes)
                .take_while(|c| **c == '#')
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

    // Each source below (bar the ones that must pass) passed the check before, while clang
    // 19 (-std=c17 -fno-trigraphs) read the file it names.

    #[test]
    fn c_line_ends_are_clangs() {
        // clang also ends a line, and a // comment, at a lone "\r".
        assert!(refused_c("int a;\r#include \"/etc/passwd\"\r").contains("carriage return"));
        assert!(
            refused_c("static const char d[]={\r#embed \"/etc/shadow\"\r,0};")
                .contains("carriage return")
        );
        assert!(refused_c("// comment\r#include \"/etc/passwd\"\n").contains("carriage return"));
        assert!(refused_c("int a;\r\n\r#include <stdio.h>").contains("carriage return"));
        // "\r\n" ends a line like "\n", also a // comment and a splice.
        check_c(
            "#include <stdio.h>\r\n#include \"zeval.h\"\r\n// comment\r\nint x; /* a\r\n b */\r\n\
             #define A 1 \\\r\n  + 2\r\nconst char *s = \"\\\r\n\";\r\n",
        )
        .unwrap();
        assert!(refused_c("// comment\r\n#include \"/etc/passwd\"\r\n").contains("absolute"));
        assert!(refused_c("int a;\r\n  #embed <x>\r\n").contains("#embed"));
        // clang splices "\\\n\r" whole; the "\n" of "\r\n" after it still ends the line.
        assert!(refused_c("#define A \\\n\r\n#include \"/etc/passwd\"").contains("absolute"));
    }

    #[test]
    fn c_byte_order_mark_is_skipped_only_at_the_start() {
        assert!(refused_c("\u{feff}#include \"/etc/passwd\"").contains("absolute"));
        assert!(refused_c("\u{feff}  #embed \"x\"").contains("#embed"));
        check_c("\u{feff}#include <stdio.h>\r\nint x;\r\n").unwrap();
        assert!(refused_c("int x;\n\u{feff}#include <stdio.h>").contains("byte order mark"));
        assert!(refused_c("\u{feff}\u{feff}#include <stdio.h>").contains("byte order mark"));
    }

    #[test]
    fn c_white_space_is_clangs() {
        // clang reads U+180E as white space, Rust's is_whitespace does not.
        assert!(refused_c("int a;\n\u{180e}#include \"/etc/passwd\"").contains("absolute"));
        assert!(refused_c("#\u{180e}include \"/etc/passwd\"").contains("absolute"));
        assert!(refused_c("\u{a0}\u{3000}#include \"/etc/passwd\"").contains("absolute"));
        assert!(refused_c("\x0b\x0c #\x0binclude\x0c\"/etc/passwd\"").contains("absolute"));
        // clang splices a backslash and a newline with ASCII blanks between.
        assert!(refused_c("#inc\\ \nlude \"/etc/passwd\"").contains("absolute"));
        assert!(refused_c("#inc\\\t\x0b\x0c \r\nlude \"/etc/passwd\"").contains("absolute"));
        check_c("// comment \\ \n#embed \"x\"").unwrap();
        // ... but not with U+00A0 between.
        assert!(refused_c("// comment \\\u{a0}\n#embed \"x\"").contains("#embed"));
    }

    #[test]
    fn c_literals_end_at_line_ends() {
        // After the splice, `"\` ends at the line end for clang, not in the next line.
        assert!(
            refused_c("char *s = \"\\\\\n\n\" /*\n#include \"/etc/passwd\"\n*/")
                .contains("absolute")
        );
        assert!(
            refused_c("char c = '\\\\\n\n' /*\n#include \"/etc/passwd\"\n*/").contains("absolute")
        );
        assert!(refused_c("char *s = \"\\\\\n\nasm(\"\");").contains("assembly"));
    }

    #[test]
    fn c_trigraphs_are_read_both_ways() {
        // With -fno-trigraphs, clang does not read "??/" as a backslash.
        assert!(refused_c("// comment ??/\n#include \"/etc/passwd\"").contains("absolute"));
        assert!(
            refused_c("const char *s = \"??/\"; __asm__(\".incbin \\\"/etc/passwd\\\"\");")
                .contains("assembly")
        );
        check_c("const char *s = \"??! ??' ??/??/\";\n").unwrap();
        // An include line is passed over only for the exact directive names.
        assert!(
            check_c_reading("#include_x, __asm__(\"\");")
                .unwrap_err()
                .contains("assembly")
        );
        assert!(
            refused_c("#define ID(x, ...) __VA_ARGS__\nID(\n??=include_x, __asm__(\"\");\n)")
                .contains("assembly")
        );
    }

    #[test]
    fn c_pragma_operand_is_read_to_its_end() {
        assert!(
            refused_c("_Pragma(\"GCC /*\\\"*/ dependency \\\"/etc/passwd\\\"\")")
                .contains("dependency")
        );
        let padded = format!(
            "_Pragma(\"{}GCC dependency \\\"/etc/passwd\\\"\")",
            " ".repeat(5000)
        );
        assert!(refused_c(&padded).contains("dependency"));
        assert!(
            refused_c("_Pragma\n(\n\"GCC dependency \\\"/etc/passwd\\\"\")").contains("dependency")
        );
        check_c("_Pragma(\"GCC diagnostic push\") _Pragma(\"once\")").unwrap();
    }

    #[test]
    fn c_error_messages_cannot_hide_lines() {
        // clang reads the rest of an #error or #warning line as plain text, so the comment the
        // check sees there is not one for clang.
        assert!(refused_c("#warning /*\n#include \"/etc/passwd\"\n*/").contains("#warning"));
        assert!(refused_c("  %: error x /*\n*/").contains("#error"));
        assert!(refused_c("#error /*\nasm(\"\");").contains("#error"));
        check_c("#warning don't /* here */ \"x\" // y\n#error \"x\"\n").unwrap();
        // A comment before the name is a comment for clang too.
        check_c("# /*\n*/ error /* x */\n").unwrap();
        check_c("#if 0\n#else /*\n*/\n#endif\n").unwrap();
    }

    #[test]
    fn c_conflict_markers_are_refused() {
        // clang skips from "=======" to ">>>>>>>" unread: the check saw a comment there.
        assert!(
            refused_c("<<<<<<< x\n=======\n/*\n>>>>>>> y\n#include \"/etc/passwd\"\n*/")
                .contains("conflict")
        );
        assert!(refused_c("int a;\r\n>>>> x\r\n==== /*\r\n<<<<\r\n").contains("conflict"));
        check_c("int a = 1 << 2; /*\n<<<<<< six is not a marker */\n").unwrap();
    }

    #[test]
    fn c_has_include_is_allowed_only_after_the_word_defined() {
        // An empty macro named xdefined lets `__has_include L "x")` probe for files.
        let probe =
            "#define xdefined\n#define L (\n#if xdefined __has_include L \"/etc/passwd\")\n";
        assert!(refused_c(probe).contains("__has_include"));
        assert!(
            refused_c("#if $defined __has_include L \"/etc/passwd\")").contains("__has_include")
        );
        check_c(
            "#if defined __has_include\n#elif defined ( __has_include_next )\n#endif\n\
             #ifndef __has_include\n#endif\n  %:ifdef\t__has_include\n#endif",
        )
        .unwrap();
        assert!(refused_c("#iffy __has_include L \"/etc/passwd\")").contains("__has_include"));
        assert!(refused_c("x #ifdef __has_include L \"/etc/passwd\")").contains("__has_include"));
    }

    #[test]
    fn c_header_names_are_seen_as_clang_sees_them() {
        // clang reads a comment in <...> as part of the path; the check read a space.
        assert!(refused_c("#include </**/../etc/passwd>").contains("white space"));
        assert!(
            refused_c("#if __has_include(<a/*b>)\n#endif\n#include \"/etc/passwd\"\n*/ x>)")
                .contains("white space")
        );
        assert!(refused_c("#include <a//b.h>").contains("unterminated"));
        check_c("#include \"a/*b*/c.h\"").unwrap();
        let long = format!("#include <{}.h>", "a".repeat(MAX_HEADER_NAME));
        assert!(refused_c(&long).contains("longer"));
        check_c(&format!("#include <{}>", "a".repeat(MAX_HEADER_NAME))).unwrap();
    }

    /// The check runs before any compile budget applies, so it must stay linear. The old
    /// check took 12 s (debug build) for "a " on a 32 KiB line, growing with the square.
    #[test]
    fn c_check_is_linear() {
        let size = 256 << 10;
        let fill = |unit: &str| unit.repeat(size / unit.len());
        // Each `__has_include` reads its operand up to the one `>`, as far as the bound allows.
        let has_includes = format!("{}x>) ", "__has_include(<".repeat(16));
        let sources = [
            fill("a "),
            fill("a\n"),
            format!("#if {}1", fill("defined __has_include || ")),
            format!(
                "#if {}1",
                fill(&format!("defined{}__has_include || ", " ".repeat(100)))
            ),
            fill(&format!("{}#ifdef __has_include\n", " ".repeat(1000))),
            fill(&has_includes),
            fill("_Pragma(\"x\") \"a\" 'b' "),
            fill("/* */ /*\n*/ // x\n"),
            fill("#error x /* */\n"),
            fill("??! \\\n\\ "),
            fill("\u{a0}\u{180e} "),
        ];
        for source in &sources {
            let started = std::time::Instant::now();
            let _ = check_c(source);
            let took = started.elapsed();
            assert!(
                took < std::time::Duration::from_secs(2),
                "{took:?} for {:?}...",
                &source[..40]
            );
        }
    }

    #[test]
    fn rust_check_is_linear() {
        let size = 256 << 10;
        let sources = [
            // A raw string of many `#`s, then quotes that each almost close it.
            format!("r{}\"{}", "#".repeat(size / 3), "\"".repeat(size * 2 / 3)),
            format!("r{}\"{}", "#".repeat(1_000), "\"#".repeat(size / 2)),
            "r\"a\" ".repeat(size / 6),
            "b'a' \"x\" // c\n".repeat(size / 14),
            "/* /* */ */ ".repeat(size / 12),
        ];
        for source in &sources {
            let started = std::time::Instant::now();
            let _ = check_rust(source);
            let took = started.elapsed();
            assert!(
                took < std::time::Duration::from_secs(2),
                "{took:?} for {:?}...",
                &source[..40]
            );
        }
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
