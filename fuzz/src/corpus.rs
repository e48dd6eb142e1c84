//! Seed inputs: the Wikifunctions JSON test bodies under `../shared/wikifunctions` (read at
//! run time, never copied), their Avro encodings, and a few hand-written edge cases.

use std::path::{Path, PathBuf};

use zeval_evaluator::wire::{self, Encoding};

use crate::targets::Target;

/// Seed files larger than this are skipped: mutations of huge seeds are slow and find
/// nothing the small ones do not.
pub const MAX_SEED_FILE_BYTES: u64 = 64 * 1024;

/// At most this many seed files are read per run.
pub const MAX_SEED_FILES: usize = 400;

/// Where the shared Wikifunctions data is by default: `../shared/wikifunctions` beside the
/// repository.
pub fn default_seed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/wikifunctions")
}

/// The seeds for `target`. `dir` missing or unreadable leaves the built-in seeds only.
pub fn seeds(target: Target, dir: &Path) -> Vec<Vec<u8>> {
    let json_files = json_files(dir);
    let mut seeds: Vec<Vec<u8>> = built_in_seeds(target);
    match target {
        Target::Zobject | Target::HttpBody => seeds.extend(json_files),
        Target::GuestOutput => {
            for file in json_files.iter().take(100) {
                let mut answer = b"{\"result\": ".to_vec();
                answer.extend_from_slice(file);
                answer.push(b'}');
                seeds.push(answer);
            }
        }
        Target::Wire => {
            for file in &json_files {
                seeds.push(file.clone());
                let Ok((request, remaining)) =
                    wire::decode_with_remaining_time(file, Some("application/json"))
                else {
                    continue;
                };
                for encoding in [Encoding::Avro002, Encoding::Avro004] {
                    if let Some(body) =
                        wire::encode_with_remaining_time(&request, encoding, remaining)
                    {
                        seeds.push(body);
                    }
                }
            }
        }
        Target::WorkerResponse => seeds.extend(worker_response_seeds()),
        Target::CompiledAnswer => seeds.extend(compiled_answer_seeds()),
        // Its input is a recipe of choices, not a document: random bytes are the right seeds.
        Target::Orchestrator => {
            let mut rng = crate::rng::Rng::new(0x5eed);
            for len in [4usize, 16, 32, 64, 128] {
                seeds.push((0..len).map(|_| rng.next_u64() as u8).collect());
            }
        }
    }
    seeds
}

fn built_in_seeds(target: Target) -> Vec<Vec<u8>> {
    let texts: &[&str] = match target {
        Target::GuestOutput => &[
            "",
            "   \n",
            r#"{"result": {"Z1K1": "Z6", "Z6K1": "13"}}"#,
            r#"{"result": "13"}"#,
            r#"{"error": "ReferenceError: x is not defined"}"#,
            r#"{"error": {"Z1K1": "Z5"}}"#,
            "[1, 2, 3]",
            "nonsense",
        ],
        Target::Orchestrator | Target::WorkerResponse | Target::CompiledAnswer => &[],
        _ => &[
            r#"{"zobject": {"Z1K1": "Z7", "Z7K1": "Z802", "Z802K1": {"Z1K1": "Z40", "Z40K1": "Z41"}, "Z802K2": "a", "Z802K3": "b"}, "doValidate": true}"#,
            r#"{"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z6"}"#,
            r#"["Z6", "a", "b"]"#,
            r#"{"Z1K1": "Z2", "Z2K1": {"Z1K1": "Z6", "Z6K1": "Z0"}, "Z2K2": "x", "Z2K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}"#,
            r#"{"reentrant": false, "remainingTime": 15, "zobject": {"Z1K1": "Z7", "Z7K1": "Z802"}}"#,
            r#"{"functionName": "Z10001", "codingLanguage": "javascript", "codeString": "function Z10001(a) { return a; }", "functionArguments": {"Z10001K1": {"Z1K1": "Z6", "Z6K1": "x"}}}"#,
        ],
    };
    texts.iter().map(|t| t.as_bytes().to_vec()).collect()
}

/// Records of every kind a compiled implementation writes, after some output of its own.
fn compiled_answer_seeds() -> Vec<Vec<u8>> {
    use zeval_compiler::{TAG_FAILURE, TAG_RESULT, encode_record};
    let mut seeds = vec![
        encode_record(TAG_RESULT, "cba".as_bytes()),
        encode_record(TAG_RESULT, &[1]),
        encode_record(TAG_RESULT, br#"{"Z1K1":"Z6","Z6K1":"x"}"#),
        encode_record(TAG_FAILURE, b"no negatives"),
        b"printed by the user\n".to_vec(),
    ];
    let mut printed_first = b"hello\0ZEVAL1".to_vec();
    printed_first.extend(encode_record(TAG_RESULT, "héllo".as_bytes()));
    seeds.push(printed_first);
    seeds
}

/// Framed responses of every kind a worker sends.
fn worker_response_seeds() -> Vec<Vec<u8>> {
    use std::time::Duration;
    use zeval_sandbox::{RunOutput, SandboxError};
    use zeval_worker::protocol::Response;
    let responses = [
        Response::Ran(RunOutput {
            stdout: br#"{"result": "x"}"#.to_vec(),
            stderr: b"warning".to_vec(),
            fuel_consumed: Some(1234),
            peak_memory_bytes: 1 << 20,
            duration: Duration::from_micros(80),
            cpu_time: Duration::from_micros(70),
            ended: None,
        }),
        Response::Failed(SandboxError::Timeout {
            limit: Duration::from_secs(1),
        }),
        Response::Failed(SandboxError::MemoryLimit { limit: 1 << 27 }),
        Response::Failed(SandboxError::Trap("unreachable; stderr: boom".to_owned())),
        Response::Failed(SandboxError::InvalidLimits("no".to_owned())),
        Response::ModuleNotLoaded,
    ];
    responses.iter().map(Response::to_frame).collect()
}

/// The JSON files under `dir`, in path order, up to the limits above.
fn json_files(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json")
                && meta.len() <= MAX_SEED_FILE_BYTES
            {
                paths.push(path);
            }
        }
    }
    paths.sort();
    // Spread the chosen files over the whole tree rather than the first directories.
    let step = paths.len().div_ceil(MAX_SEED_FILES).max(1);
    paths
        .iter()
        .step_by(step)
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}
