//! Resource attacks: CPU, memory, stack, output. Each ends in the Z5 naming its limit.

use zeval_evaluator::Family::{JavaScript, Python};

use crate::{assert_fails_with, hostile};

#[test]
fn an_infinite_loop_times_out() {
    assert_fails_with(
        hostile(JavaScript, "function Z1000() { while (true) {} }", &[]),
        "Function call timed out",
    );
    assert_fails_with(
        hostile(Python, "def Z1000():\n    while True:\n        pass", &[]),
        "Function call timed out",
    );
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let js = "function Z1000() { const a = []; while (true) { a.push(new Array(1e6).fill(7)); } }";
    assert_fails_with(hostile(JavaScript, js, &[]), "memory limit of 96 MiB");
    let py = "def Z1000():\n    a = []\n    while True:\n        a.append(bytearray(10**6))";
    assert_fails_with(hostile(Python, py, &[]), "memory limit of 96 MiB");
}

#[test]
fn deep_recursion_is_a_stack_error() {
    let js = "function Z1000() { function f(n) { return f(n + 1) + 1; } return String(f(0)); }";
    // QuickJS checks its own stack, but the wasm stack (8 MiB) may run out first; either
    // way the call ends in a Z5 that says so.
    let result = hostile(JavaScript, js, &[]);
    assert!(
        matches!(&result, Err(m) if m == "Maximum call stack size exceeded"
            || m == "Function call exceeded the stack limit of 8 MiB"),
        "{result:?}"
    );
    let py = "def Z1000():\n    def f(n):\n        return f(n + 1) + 1\n    return str(f(0))";
    assert_fails_with(hostile(Python, py, &[]), "maximum recursion depth exceeded");
}

#[test]
fn a_hundred_megabytes_of_output_hit_a_limit() {
    // The result itself: 100 MB cannot even be built under the memory limit, or is cut at
    // the output limit, whichever the interpreter reaches first.
    let js = "function Z1000() { return 'x'.repeat(100 * 1000 * 1000); }";
    let result = hostile(JavaScript, js, &[]);
    assert!(
        matches!(&result, Err(m) if m.contains("output limit") || m.contains("memory limit")),
        "{result:?}"
    );
    // Printing: Python's print goes to stderr, which has the same cap.
    let py = "def Z1000():\n    line = 'x' * 1000\n    for _ in range(100000):\n        print(line)\n    return 'done'";
    assert_fails_with(hostile(Python, py, &[]), "output limit of 1 MiB");
    let py = "def Z1000():\n    return 'x' * (100 * 1000 * 1000)";
    let result = hostile(Python, py, &[]);
    assert!(
        matches!(&result, Err(m) if m.contains("output limit") || m.contains("memory limit")),
        "{result:?}"
    );
}

#[test]
fn a_one_megabyte_argument_is_fine() {
    let big = "é".repeat(512 * 1024);
    let js = "function Z1000(Z1000K1) { return String(Z1000K1.length); }";
    assert_eq!(
        hostile(JavaScript, js, &[&big]),
        Ok((512 * 1024).to_string())
    );
    let py = "def Z1000(Z1000K1):\n    return str(len(Z1000K1.encode('utf-8')))";
    assert_eq!(hostile(Python, py, &[&big]), Ok((1024 * 1024).to_string()));
}
