//! Integration tests of the evaluator with the real guests (build them with
//! `guests/build.sh`; `$ZEVAL_GUEST_DIR` picks another directory). One module per feature.
//!
//! The hostile-guest modules run each attack in both languages under small limits, check that
//! it ends in the right Z5 within twice the wall-time limit, and run a normal call on another
//! thread meanwhile, which must still succeed.

mod code_cache;
mod compiled;
mod hostile_env;
mod hostile_files;
mod hostile_isolation;
mod hostile_limits;
mod hostile_network;
mod hostile_processes;
mod javascript_locale;
mod javascript_strings;
mod python_stdlib;
mod reentry;
mod suite_requests;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use zeval_evaluator::{Evaluator, EvaluatorConfig, ExecutorRequest, Family, Request};
use zeval_zobject::Value;
use zeval_zobject::build::{envelope_error, z6};

/// The wall-time limit of the hostile tests.
pub(crate) const WALL_TIME: Duration = Duration::from_millis(3000);
/// The linear-memory limit of the hostile tests.
pub(crate) const MEMORY_BYTES: usize = 96 * 1024 * 1024;
/// The output limit of the hostile tests.
pub(crate) const OUTPUT_BYTES: usize = 1024 * 1024;

/// One evaluator for the whole test binary (loading compiles or reads the module cache).
pub(crate) fn evaluator() -> &'static Evaluator {
    static EVALUATOR: OnceLock<Evaluator> = OnceLock::new();
    EVALUATOR.get_or_init(|| {
        let mut config = EvaluatorConfig::default();
        config.limits.wall_time = WALL_TIME;
        config.limits.memory_bytes = MEMORY_BYTES;
        config.limits.max_output_bytes = OUTPUT_BYTES;
        let evaluator = Evaluator::new(config).unwrap_or_else(|e| panic!("{e}"));
        // Compiled languages, with artifacts in memory only.
        let toolchain =
            zeval_compiler::Toolchain::discover(&zeval_compiler::CompilerConfig::default())
                .unwrap_or_else(|e| panic!("{e}"));
        evaluator.with_artifacts(std::sync::Arc::new(zeval_evaluator::Artifacts::new(
            toolchain, None,
        )))
    })
}

/// A request calling `Z1000` defined by `code` with string arguments `Z1000K1`, `Z1000K2`, ….
pub(crate) fn request(family: Family, code: &str, args: &[&str]) -> Request {
    let function_arguments = args
        .iter()
        .enumerate()
        .map(|(i, value)| (format!("Z1000K{}", i + 1), z6(*value)))
        .collect();
    // Compiled code needs the types: every argument and the result are strings here.
    let signature = family.is_compiled().then(|| zeval_compiler::Signature {
        parameters: (1..=args.len())
            .map(|i| (format!("Z1000K{i}"), zeval_compiler::Kind::String))
            .collect(),
        result: zeval_compiler::Kind::String,
    });
    Request::Executor(ExecutorRequest {
        coding_language: Some(match family {
            Family::JavaScript => "javascript".to_owned(),
            Family::Python => "python-3".to_owned(),
            compiled => compiled.to_string(),
        }),
        code_string: Some(code.to_owned()),
        function_name: Some("Z1000".to_owned()),
        function_arguments,
        signature,
        ..ExecutorRequest::default()
    })
}

/// The string result of a Z22, or its error message as `Err`.
pub(crate) fn outcome(z22: &Value) -> Result<String, String> {
    if let Some(error) = envelope_error(z22) {
        let message = error["Z5K2"]["Z6K1"].as_str().unwrap_or_default();
        return Err(message.to_owned());
    }
    z22["Z22K1"]["Z6K1"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("not a string: {z22}"))
}

/// Runs `code` as a hostile call while a normal call runs on another thread. Returns the
/// hostile call's outcome; asserts it took less than twice the wall-time limit and that the
/// bystander succeeded.
pub(crate) fn hostile(family: Family, code: &str, args: &[&str]) -> Result<String, String> {
    let evaluator = evaluator();
    let bystander = std::thread::spawn(move || {
        let mut results = Vec::new();
        for family in [Family::JavaScript, Family::Python] {
            let code = match family {
                Family::JavaScript => {
                    "function Z1000(a, b) { return String(Number(a) + Number(b)); }"
                }
                Family::Python | Family::C | Family::Rust => {
                    "def Z1000(Z1000K1, Z1000K2):\n    return str(int(Z1000K1) + int(Z1000K2))"
                }
            };
            results.push(outcome(&evaluator.evaluate(request(
                family,
                code,
                &["5", "8"],
            ))));
        }
        results
    });
    let started = Instant::now();
    let z22 = evaluator.evaluate(request(family, code, args));
    let elapsed = started.elapsed();
    assert!(
        elapsed < 2 * WALL_TIME,
        "took {elapsed:?}, more than twice the limit"
    );
    for result in bystander.join().expect("the bystander thread") {
        assert_eq!(
            result,
            Ok("13".to_owned()),
            "the normal call beside the hostile one"
        );
    }
    outcome(&z22)
}

/// Asserts the hostile call failed with a message containing `phrase`.
#[track_caller]
pub(crate) fn assert_fails_with(result: Result<String, String>, phrase: &str) {
    match result {
        Err(message) => assert!(
            message.contains(phrase),
            "{message:?} does not contain {phrase:?}"
        ),
        Ok(value) => panic!(
            "succeeded with {:?}",
            value.chars().take(200).collect::<String>()
        ),
    }
}
