//! The pre-scan that counts a JSON text's structural tokens before anything is parsed
//! (`zeval_zobject::json::structural_tokens`; the depth scan walks the same way), against the
//! byte loop it replaced, in the same run: a trivial evaluator request, a request with a
//! 1 MiB string argument, and 8 MiB of guest output (a string with an escape every 64 bytes).
//!
//! `cargo bench -p zeval-zobject --bench prescan`

use criterion::{Criterion, criterion_group, criterion_main};

/// The scan as it was before strings were skipped with `memchr2`.
fn byte_loop(bytes: &[u8], limit: usize) -> usize {
    let mut tokens = 1;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in bytes {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' | b',' | b':' => {
                tokens += 1;
                if tokens > limit {
                    break;
                }
            }
            _ => {}
        }
    }
    tokens
}

fn request(argument: &str) -> Vec<u8> {
    serde_json::json!({
        "reentrant": false,
        "codingLanguage": "javascript",
        "codeString": "function Z14071(Z14071K1, Z14071K2) { const sum = Number(Z14071K2) + Number(Z14071K1); return String(sum); }",
        "functionName": "Z14071",
        "functionArguments": {
            "Z14071K1": {"Z1K1": "Z6", "Z6K1": argument},
            "Z14071K2": {"Z1K1": "Z6", "Z6K1": "8"}
        }
    })
    .to_string()
    .into_bytes()
}

fn prescan(c: &mut Criterion) {
    let output = format!(
        "{{\"result\": {{\"Z1K1\": \"Z6\", \"Z6K1\": \"{}\"}}}}",
        format!("{}\\n", "x".repeat(62)).repeat(8 * 1024 * 1024 / 64)
    )
    .into_bytes();
    let texts = [
        ("trivial request", request("5")),
        ("1 MiB argument", request(&"y".repeat(1 << 20))),
        ("8 MiB output", output),
    ];
    let mut group = c.benchmark_group("prescan");
    for (name, text) in &texts {
        assert_eq!(
            zeval_zobject::json::structural_tokens(text, usize::MAX - 1),
            byte_loop(text, usize::MAX - 1)
        );
        group.bench_function(format!("{name}: byte loop"), |b| {
            b.iter(|| byte_loop(std::hint::black_box(text), usize::MAX - 1))
        });
        group.bench_function(format!("{name}: memchr2"), |b| {
            b.iter(|| {
                zeval_zobject::json::structural_tokens(std::hint::black_box(text), usize::MAX - 1)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, prescan);
criterion_main!(benches);
