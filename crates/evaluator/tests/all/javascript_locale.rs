//! JavaScript has no `Intl` (QuickJS-ng is built without it, and zeval offers no substitute):
//! what the locale-sensitive methods give instead, exactly as `docs/deviations.md` lists it.

use zeval_evaluator::Family;

use crate::{evaluator, outcome, request};

/// Runs `expression` in a JavaScript implementation and returns its value as a string.
fn js(expression: &str) -> String {
    let code = format!("function Z1000() {{ return String( {expression} ); }}");
    outcome(&evaluator().evaluate(request(Family::JavaScript, &code, &[])))
        .unwrap_or_else(|error| panic!("{expression}: {error}"))
}

#[track_caller]
fn assert_js(cases: &[(&str, &str)]) {
    for (expression, expected) in cases {
        assert_eq!(js(expression), *expected, "{expression}");
    }
}

#[test]
fn there_is_no_intl() {
    assert_js(&[
        ("typeof Intl", "undefined"),
        (
            "(() => { try { return new Intl.NumberFormat('en').format(1); } \
             catch (e) { return e.name + ': ' + e.message; } })()",
            "ReferenceError: Intl is not defined",
        ),
    ]);
}

/// Numbers and BigInts: `toLocaleString` ignores its locales and options and gives
/// `toString()` (no grouping separators).
#[test]
fn numbers_format_as_to_string() {
    assert_js(&[
        ("(1234567.891).toLocaleString()", "1234567.891"),
        ("(1234567.891).toLocaleString('de-DE')", "1234567.891"),
        ("(-1234.5).toLocaleString()", "-1234.5"),
        (
            "(1234.5).toLocaleString(undefined, { minimumFractionDigits: 2 })",
            "1234.5",
        ),
        ("(0.5).toLocaleString('en-US', { style: 'percent' })", "0.5"),
        ("(1e21).toLocaleString()", "1e+21"),
        ("NaN.toLocaleString()", "NaN"),
        (
            "(12345678901234567890n).toLocaleString()",
            "12345678901234567890",
        ),
    ]);
}

/// Dates: the `toLocale…String` methods ignore their arguments and give a fixed US English
/// form, zero-padded, in UTC (the guest's time zone).
#[test]
fn dates_format_in_one_fixed_form() {
    let date = "new Date(Date.UTC(2024, 0, 15, 13, 45, 30))";
    assert_js(&[
        (
            &format!("{date}.toLocaleString()"),
            "01/15/2024, 01:45:30 PM",
        ),
        (&format!("{date}.toLocaleDateString()"), "01/15/2024"),
        (&format!("{date}.toLocaleTimeString()"), "01:45:30 PM"),
        (
            &format!("{date}.toLocaleString('de-DE', {{ timeZone: 'Europe/Berlin' }})"),
            "01/15/2024, 01:45:30 PM",
        ),
        (
            "new Date(Date.UTC(2024, 6, 4, 0, 5, 9)).toLocaleString()",
            "07/04/2024, 12:05:09 AM",
        ),
        (&format!("{date}.getTimezoneOffset()"), "0"),
        (
            "[1234.5, new Date(0), 'x'].toLocaleString()",
            "1234.5,01/01/1970, 12:00:00 AM,x",
        ),
    ]);
}

/// Strings: `localeCompare` ignores locales and options and compares the NFC forms by code
/// unit (-1, 0 or 1); the locale case mappings are the plain Unicode ones.
#[test]
fn strings_compare_by_code_unit() {
    assert_js(&[
        ("'a'.localeCompare('b')", "-1"),
        ("'a'.localeCompare('B')", "1"),
        ("'ä'.localeCompare('z')", "1"),
        ("'é'.localeCompare('e\\u0301')", "0"),
        (
            "'résumé'.localeCompare('resume', 'en', { sensitivity: 'base' })",
            "1",
        ),
        (
            "['b', 'a', 'C', 'ä'].sort((x, y) => x.localeCompare(y)).join()",
            "C,a,b,ä",
        ),
        ("'istanbul'.toLocaleUpperCase('tr-TR')", "ISTANBUL"),
        ("'straße'.toLocaleUpperCase()", "STRASSE"),
        ("'e\\u0301'.normalize('NFC').length", "1"),
    ]);
}
