//! The code cache (`EvaluatorConfig::code_cache`, `zeval_sandbox::code_cache`): the first
//! call of a code string compiles it, the second is followed by a run that compiles it and
//! runs none of it, which hands back what it compiled (a CPython code object, QuickJS
//! bytecode), and later calls of the same code string and function name run that.

use zeval_evaluator::{Evaluator, EvaluatorConfig, ExecutorRequest, Family, Request};

use crate::{outcome, request};

/// An evaluator of the test's own (the tests run in parallel, and count its hits).
fn evaluator(code_cache: bool) -> Evaluator {
    let config = EvaluatorConfig {
        code_cache,
        ..EvaluatorConfig::default()
    };
    Evaluator::new(config).unwrap_or_else(|e| panic!("{e}"))
}

/// Calls of one evaluator: each returns the outcome and how many cache hits it added.
struct Calls(Evaluator);

impl Calls {
    fn new() -> Self {
        Self(evaluator(true))
    }

    fn call(&self, code: &str, args: &[&str]) -> (Result<String, String>, u64) {
        self.run(request(Family::Python, code, args))
    }

    fn javascript(&self, code: &str, args: &[&str]) -> (Result<String, String>, u64) {
        self.run(request(Family::JavaScript, code, args))
    }

    fn run(&self, request: Request) -> (Result<String, String>, u64) {
        let before = self.0.code_cache_hits();
        let answer = outcome(&self.0.evaluate(request));
        (answer, self.0.code_cache_hits() - before)
    }
}

#[test]
fn from_the_third_call_on_a_code_string_runs_its_compiled_code_with_its_own_arguments() {
    let calls = Calls::new();
    let code = "def Z1000(Z1000K1, Z1000K2):\n    return Z1000K1 + '/' + Z1000K2  # cache test 1";
    assert_eq!(calls.call(code, &["a", "b"]), (Ok("a/b".to_owned()), 0));
    assert_eq!(calls.call(code, &["c", "d"]), (Ok("c/d".to_owned()), 0));
    assert_eq!(calls.call(code, &["e", "f"]), (Ok("e/f".to_owned()), 1));
    assert_eq!(calls.call(code, &["g", "h"]), (Ok("g/h".to_owned()), 1));
    // One character more is another code string: compiled again.
    let other = format!("{code} ");
    assert_eq!(calls.call(&other, &["i", "j"]), (Ok("i/j".to_owned()), 0));
}

#[test]
fn code_that_does_not_compile_is_never_cached_and_says_so_every_time() {
    let calls = Calls::new();
    let code = "def Z1000(Z1000K1:\n    return Z1000K1  # cache test 2";
    let (first, hits) = calls.call(code, &["a"]);
    assert_eq!(hits, 0);
    let message = first.expect_err("a syntax error");
    assert!(!message.is_empty());
    for _ in 0..3 {
        assert_eq!(calls.call(code, &["a"]), (Err(message.clone()), 0));
    }
}

#[test]
fn code_that_raises_is_cached_and_raises_the_same_from_its_compiled_code() {
    let calls = Calls::new();
    let code = "def Z1000(Z1000K1):\n    raise ValueError('no: ' + Z1000K1)  # cache test 3";
    assert_eq!(calls.call(code, &["x"]), (Err("no: x".to_owned()), 0));
    assert_eq!(calls.call(code, &["y"]), (Err("no: y".to_owned()), 0));
    assert_eq!(calls.call(code, &["z"]), (Err("no: z".to_owned()), 1));
}

/// What later calls of a code string run is compiled in a run of its own, where none of the
/// code runs: code that a call runs cannot choose it. (Before, a call's own run handed its
/// compiled code back, and its code could replace it: approved code that evaluated its input
/// would have let one caller choose what every later call of that code string ran.)
#[test]
fn code_that_a_call_runs_cannot_choose_what_later_calls_of_it_run() {
    let calls = Calls::new();
    assert_eq!(calls.call(FORGER, &["a"]), (Ok("honest a".to_owned()), 0));
    assert_eq!(calls.call(FORGER, &["b"]), (Ok("honest b".to_owned()), 0));
    for argument in ["c", "d"] {
        assert_eq!(
            calls.call(FORGER, &[argument]),
            (Ok(format!("honest {argument}")), 1)
        );
    }
    // Bytes the call's own code writes after a NUL are neither its answer nor kept, also on
    // the second call of a code string, the one after which compiled code is kept.
    let writer = format!("{FORGER}\n# writes on its second call");
    assert_eq!(calls.call(&writer, &["a"]), (Ok("honest a".to_owned()), 0));
    let (written, _) = calls.call(&writer, &["write"]);
    assert!(written.is_err(), "{written:?}");
    assert_eq!(calls.call(&writer, &["e"]), (Ok("honest e".to_owned()), 1));
    // Another code string never gets another's entry.
    for (n, argument) in ["f", "g", "h"].into_iter().enumerate() {
        let hits = u64::from(n == 2);
        assert_eq!(
            calls.call(VICTIM, &[argument]),
            (Ok(format!("victim {argument}")), hits)
        );
    }
}

/// [`code_that_a_call_runs_cannot_choose_what_later_calls_of_it_run`] in JavaScript: code
/// that calls the runner again, asking it to hand back other bytecode (as the runner of
/// 2026-12-05 was asked, and as a compile-only run is).
#[test]
fn javascript_that_a_call_runs_cannot_choose_what_later_calls_of_it_run() {
    let calls = Calls::new();
    let forger = r#"
for (const ask of ['wantCompiled', 'compileOnly']) {
    globalThis.__zeval_run(JSON.stringify({
        [ask]: 1000000, functionName: 'Z1000',
        codeString: "function Z1000(Z1000K1) { return 'forged'; }",
        functionArguments: { Z1000K1: { Z1K1: 'Z6', Z6K1: 'x' } }
    }), false);
}
function Z1000(Z1000K1) { return 'honest ' + Z1000K1; }"#;
    for (n, argument) in ["a", "b", "c", "d"].into_iter().enumerate() {
        let hits = u64::from(n >= 2);
        assert_eq!(
            calls.javascript(forger, &[argument]),
            (Ok(format!("honest {argument}")), hits),
            "call {n}"
        );
    }
}

/// Code that tries to have other compiled code kept for later calls of its code string: it
/// replaces what the runner of 2026-12-05 would hand back, or (given "write") writes a
/// compile-only run's answer to stdout itself.
const FORGER: &str = include_str!("code_cache_forger.py");

/// An honest function of the same name as [`FORGER`]'s.
const VICTIM: &str = "def Z1000(Z1000K1):\n    return 'victim ' + Z1000K1";

#[test]
fn compiled_code_that_would_not_fit_the_output_limit_is_not_handed_back() {
    let mut config = EvaluatorConfig::default();
    // The answer fits in 1,000 bytes of output; with its compiled code, it would not.
    config.limits.max_output_bytes = 1000;
    let calls = Calls(Evaluator::new(config).unwrap_or_else(|e| panic!("{e}")));
    // A constant of 1,000 characters is in the compiled code.
    let padding = "x".repeat(1000);
    let code = format!("def Z1000(Z1000K1):\n    return Z1000K1 or '{padding}'");
    for _ in 0..4 {
        assert_eq!(calls.call(&code, &["a"]), (Ok("a".to_owned()), 0));
    }
    let code = format!("function Z1000(Z1000K1) {{ return Z1000K1 || '{padding}'; }}");
    for _ in 0..4 {
        assert_eq!(calls.javascript(&code, &["a"]), (Ok("a".to_owned()), 0));
    }
    // Small enough code is handed back, and run, under the same limit.
    let code = "function Z1000(Z1000K1) { return Z1000K1 + '!'; }";
    let hits: u64 = (0..4).map(|_| calls.javascript(code, &["a"]).1).sum();
    assert_eq!(hits, 2);
}

#[test]
fn without_the_cache_every_call_compiles() {
    let evaluator = evaluator(false);
    let code = "def Z1000(Z1000K1):\n    return Z1000K1 * 2  # cache test 5";
    for _ in 0..4 {
        let z22 = evaluator.evaluate(request(Family::Python, code, &["ab"]));
        assert_eq!(outcome(&z22), Ok("abab".to_owned()));
    }
    assert_eq!(evaluator.code_cache_hits(), 0);
}

#[test]
fn javascript_runs_its_compiled_bytecode_from_the_third_call() {
    let calls = Calls::new();
    let code =
        "function Z1000(Z1000K1, Z1000K2) { return Z1000K1 + '/' + Z1000K2; } // cache test 6";
    assert_eq!(
        calls.javascript(code, &["a", "b"]),
        (Ok("a/b".to_owned()), 0)
    );
    assert_eq!(
        calls.javascript(code, &["c", "d"]),
        (Ok("c/d".to_owned()), 0)
    );
    assert_eq!(
        calls.javascript(code, &["e", "f"]),
        (Ok("e/f".to_owned()), 1)
    );
    assert_eq!(
        calls.javascript(code, &["g", "h"]),
        (Ok("g/h".to_owned()), 1)
    );
}

#[test]
fn javascript_errors_are_the_same_from_bytecode_and_syntax_errors_are_never_cached() {
    let calls = Calls::new();
    let throws = "function Z1000(Z1000K1) { throw new Error('no: ' + Z1000K1); } // cache test 7";
    assert_eq!(
        calls.javascript(throws, &["x"]),
        (Err("no: x".to_owned()), 0)
    );
    assert_eq!(
        calls.javascript(throws, &["y"]),
        (Err("no: y".to_owned()), 0)
    );
    assert_eq!(
        calls.javascript(throws, &["z"]),
        (Err("no: z".to_owned()), 1)
    );
    let broken = "function Z1000(Z1000K1) { return Z1000K1 + ; } // cache test 7";
    let (first, hits) = calls.javascript(broken, &["a"]);
    assert_eq!(hits, 0);
    let message = first.expect_err("a syntax error");
    for _ in 0..3 {
        assert_eq!(calls.javascript(broken, &["a"]), (Err(message.clone()), 0));
    }
}

#[test]
fn javascript_tells_a_syntax_error_at_the_end_of_its_code_the_same_from_bytecode() {
    // A syntax error whose line is the code wrapper's last or later is reported as V8 words
    // it ("Unexpected end of input"). With bytecode the runner knows the code's lines only
    // from the count the host sends in place of the code string. QuickJS gives its own
    // errors no line number, so the error here names its line itself: the fifth is past the
    // end of one line of code (three in the wrapper) and before the end of twenty.
    let calls = Calls::new();
    let throw = r#"throw Object.assign(new SyntaxError("expecting '}'"), { lineNumber: 5 });"#;
    let short = format!("function Z1000(Z1000K1) {{ {throw} }} // cache test 9");
    let long = format!(
        "function Z1000(Z1000K1) {{\n{}{throw}\n}} // cache test 9",
        "// padding\n".repeat(18)
    );
    for (code, expected) in [(short, "Unexpected end of input"), (long, "expecting '}'")] {
        for hits in [0, 0, 1, 1] {
            assert_eq!(
                calls.javascript(&code, &["a"]),
                (Err(expected.to_owned()), hits),
                "{code}"
            );
        }
    }
}

#[test]
fn the_same_code_string_under_another_function_name_is_another_entry() {
    // JavaScript's compiled wrapper returns the function it names: bytecode compiled for one
    // name must never answer for another.
    let calls = Calls::new();
    let code =
        "function Z1000(x) { return 'first ' + x; }\nfunction Z1001(x) { return 'second ' + x; }";
    let named = |name: &str, argument: &str| {
        let Request::Executor(executor) = request(Family::JavaScript, code, &[argument]) else {
            unreachable!("an executor request")
        };
        let mut arguments = serde_json::Map::new();
        let value = executor.function_arguments["Z1000K1"].clone();
        arguments.insert(format!("{name}K1"), value);
        Request::Executor(ExecutorRequest {
            function_name: Some(name.to_owned()),
            function_arguments: arguments,
            ..executor
        })
    };
    for n in 0..3 {
        let hits = u64::from(n == 2);
        assert_eq!(
            calls.run(named("Z1000", "a")),
            (Ok("first a".to_owned()), hits)
        );
    }
    assert_eq!(
        calls.run(named("Z1001", "b")),
        (Ok("second b".to_owned()), 0)
    );
    assert_eq!(
        calls.run(named("Z1001", "c")),
        (Ok("second c".to_owned()), 0)
    );
    assert_eq!(
        calls.run(named("Z1001", "d")),
        (Ok("second d".to_owned()), 1)
    );
    assert_eq!(
        calls.run(named("Z1000", "e")),
        (Ok("first e".to_owned()), 1)
    );
}
