use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use zeval_compiler::{
    Answer, CompileFailure, Compiled, CompilerConfig, Kind, Language, Signature, Toolchain, Unit,
    decode_result, encode_arguments,
};
use zeval_sandbox::{Limits, Sandbox, SandboxConfig};

/// The toolchain with the default configuration, run from the workspace so its
/// rust-toolchain.toml picks the pinned Rust.
pub(crate) fn toolchain() -> &'static Toolchain {
    static TOOLCHAIN: OnceLock<Toolchain> = OnceLock::new();
    TOOLCHAIN.get_or_init(|| {
        let toolchain = Toolchain::discover(&config()).expect("discover");
        for language in Language::ALL {
            assert!(
                toolchain.has(language),
                "{language} is missing: {:?}",
                toolchain.unavailable_reason(language)
            );
        }
        toolchain
    })
}

pub(crate) fn config() -> CompilerConfig {
    CompilerConfig {
        rust_toolchain_dir: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../..").into()),
        ..CompilerConfig::default()
    }
}

/// A toolchain with small limits, for the tests that hit them.
pub(crate) fn small_toolchain(adjust: impl FnOnce(&mut CompilerConfig)) -> Toolchain {
    let mut config = config();
    config.cpu_time = Duration::from_secs(3);
    config.wall_time = Duration::from_secs(10);
    adjust(&mut config);
    Toolchain::discover(&config).expect("discover")
}

pub(crate) fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<(tempfile::TempDir, Sandbox)> = OnceLock::new();
    &SANDBOX
        .get_or_init(|| {
            let cache = tempfile::tempdir().expect("temporary cache dir");
            let sandbox = Sandbox::new(SandboxConfig::new(cache.path())).expect("sandbox");
            (cache, sandbox)
        })
        .1
}

pub(crate) fn signature(parameters: &[Kind], result: Kind, name: &str) -> Signature {
    Signature {
        parameters: parameters
            .iter()
            .enumerate()
            .map(|(i, kind)| (format!("{name}K{}", i + 1), *kind))
            .collect(),
        result,
    }
}

pub(crate) fn unit(language: Language, name: &str, signature: &Signature, source: &str) -> Unit {
    Unit {
        language,
        function_name: name.to_owned(),
        signature: signature.clone(),
        source: source.to_owned(),
    }
}

pub(crate) fn compile(unit: &Unit) -> Compiled {
    match toolchain().compile(unit) {
        Ok(compiled) => compiled,
        Err(failure) => panic!("{failure}"),
    }
}

pub(crate) fn try_compile(unit: &Unit) -> Result<Compiled, CompileFailure> {
    toolchain().compile(unit)
}

/// Runs an artifact with arguments (normal form, keyed `<name>K<n>` in order).
pub(crate) fn call(compiled: &Compiled, unit: &Unit, arguments: &[Value]) -> Answer {
    let keyed: Vec<(String, Value)> = unit
        .signature
        .parameters
        .iter()
        .zip(arguments)
        .map(|((key, _), value)| (key.clone(), value.clone()))
        .collect();
    let stdin = encode_arguments(&unit.signature, &keyed).expect("encode");
    let guest = sandbox()
        .load_guest(&unit.function_name, &compiled.wasm)
        .expect("load artifact");
    let output = guest.run(&stdin, &Limits::default()).expect("run artifact");
    decode_result(&unit.signature, &output.stdout).expect("decode")
}

pub(crate) fn z6(text: &str) -> Value {
    json!({"Z1K1": "Z6", "Z6K1": text})
}

pub(crate) fn z40(value: bool) -> Value {
    json!({"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z40"},
        "Z40K1": {"Z1K1": "Z9", "Z9K1": if value { "Z41" } else { "Z42" }}})
}

/// A normal-form Z881 list of Z6 strings.
pub(crate) fn string_list(items: &[&str]) -> Value {
    let list_type = json!({"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z7"},
        "Z7K1": {"Z1K1": "Z9", "Z9K1": "Z881"}, "Z881K1": {"Z1K1": "Z9", "Z9K1": "Z6"}});
    let mut list = json!({"Z1K1": list_type.clone()});
    for item in items.iter().rev() {
        list = json!({"Z1K1": list_type.clone(), "K1": z6(item), "K2": list});
    }
    list
}
