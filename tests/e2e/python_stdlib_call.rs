//! Python implementations written as Wikifunctions contributors write them, using standard
//! library modules the CPython guest used not to have (issue 15), run through `zeval call
//! --objects DIR`: the function and its implementation are files, as a user would keep them.

use std::process::Command;

use serde_json::{Value, json};

use crate::common::zeval_binary;

/// Runs the function `Z10000` (string arguments `Z10000K1`…, a string result) implemented in
/// Python by `code` (which defines `Z10000`) on `args`, and returns the canonical Z22.
fn call_python(code: &str, args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let label = |text: &str| json!({"Z1K1": "Z12", "Z12K1": ["Z11", {"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": text}]});
    let mut arguments = vec![json!("Z17")];
    for index in 1..=args.len() {
        arguments.push(
            json!({"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": format!("Z10000K{index}"),
                              "Z17K3": label(&format!("argument {index}"))}),
        );
    }
    let function = json!({"Z1K1": "Z2", "Z2K1": {"Z1K1": "Z6", "Z6K1": "Z10000"},
        "Z2K3": label("a function using the standard library"),
        "Z2K2": {"Z1K1": "Z8", "Z8K1": arguments, "Z8K2": "Z6", "Z8K3": ["Z20"],
                 "Z8K4": ["Z14", "Z10001"], "Z8K5": "Z10000"}});
    let implementation = json!({"Z1K1": "Z2", "Z2K1": {"Z1K1": "Z6", "Z6K1": "Z10001"},
        "Z2K3": label("in Python"),
        "Z2K2": {"Z1K1": "Z14", "Z14K1": "Z10000",
                 "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z610", "Z16K2": code}}});
    let mut call = json!({"Z1K1": "Z7", "Z7K1": "Z10000"});
    for (index, arg) in args.iter().enumerate() {
        call[format!("Z10000K{}", index + 1)] = json!(arg);
    }
    std::fs::write(dir.path().join("Z10000.json"), function.to_string()).unwrap();
    std::fs::write(dir.path().join("Z10001.json"), implementation.to_string()).unwrap();
    let call_file = dir.path().join("call.json");
    std::fs::write(&call_file, call.to_string()).unwrap();
    let output = Command::new(zeval_binary())
        .args(["call", "--objects"])
        .arg(dir.path())
        .arg(&call_file)
        .output()
        .expect("run zeval call");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "zeval call failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[track_caller]
fn assert_result(z22: &Value, expected: &str) {
    assert_eq!(z22["Z22K1"], json!(expected), "{z22}");
}

#[test]
fn rot13_through_codecs() {
    let code =
        "import codecs\n\ndef Z10000(Z10000K1):\n    return codecs.encode(Z10000K1, 'rot13')\n";
    assert_result(&call_python(code, &["Hello, World!"]), "Uryyb, Jbeyq!");
}

#[test]
fn weekday_with_calendar() {
    let code = "def Z10000(Z10000K1):\n    import calendar\n    year, month, day = map(int, Z10000K1.split('-'))\n    return calendar.day_name[calendar.weekday(year, month, day)]\n";
    assert_result(&call_python(code, &["2024-02-29"]), "Thursday");
}

#[test]
fn csv_parser() {
    let code = "import csv, io\n\ndef Z10000(Z10000K1):\n    rows = list(csv.reader(io.StringIO(Z10000K1)))\n    return '|'.join(rows[1])\n";
    assert_result(
        &call_python(code, &["name,city\n\"Doe, Jane\",Paris\n"]),
        "Doe, Jane|Paris",
    );
}

#[test]
fn time_zone_conversion_with_zoneinfo() {
    let code = "from datetime import datetime\nfrom zoneinfo import ZoneInfo\n\ndef Z10000(Z10000K1, Z10000K2):\n    return datetime.fromisoformat(Z10000K1).astimezone(ZoneInfo(Z10000K2)).isoformat()\n";
    assert_result(
        &call_python(code, &["2024-01-15T12:00:00+00:00", "America/New_York"]),
        "2024-01-15T07:00:00-05:00",
    );
}
