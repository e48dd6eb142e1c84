//! Measures compile time and artifact size of a small function in each language (the
//! numbers in the crate docs): `cargo run --release -p zeval-compiler --example measure`
//! from the workspace root.

use std::time::Instant;

use zeval_compiler::{CompilerConfig, Kind, Language, Signature, Toolchain, Unit};

fn main() {
    let toolchain = Toolchain::discover(&CompilerConfig::default()).expect("discover");
    let signature = Signature {
        parameters: vec![("Z10000K1".to_owned(), Kind::String)],
        result: Kind::String,
    };
    let sources = [
        (
            Language::C,
            "#include <stdlib.h>\n#include <string.h>\n\
             char *Z10000(const char *Z10000K1) {\n\
             size_t n = strlen(Z10000K1); char *out = malloc(n + 1);\n\
             for (size_t i = 0; i < n; i++) out[i] = Z10000K1[n - 1 - i];\n\
             out[n] = 0; return out; }\n",
        ),
        (
            Language::Rust,
            "fn Z10000(Z10000K1: &str) -> String { Z10000K1.chars().rev().collect() }\n",
        ),
    ];
    println!("{:?}", toolchain.confinement());
    for (language, source) in sources {
        let mut times = Vec::new();
        let mut size = 0;
        for round in 0..5 {
            let unit = Unit {
                language,
                function_name: "Z10000".to_owned(),
                signature: signature.clone(),
                // A different source each round, as a cache would see.
                source: format!("{source}// {round}\n"),
            };
            let started = Instant::now();
            let compiled = toolchain.compile(&unit).expect("compile");
            times.push(started.elapsed());
            size = compiled.wasm.len();
        }
        times.sort();
        println!(
            "{language}: {} (median {:?}, min {:?}, max {:?}), artifact {size} bytes",
            toolchain.identity(language).unwrap_or("?"),
            times[2],
            times[0],
            times[4]
        );
    }
}
