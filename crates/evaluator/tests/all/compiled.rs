//! Compiled languages through the evaluator: results, failures and every limit, with a
//! normal call running beside each hostile one (see [`crate::hostile`]).

use zeval_evaluator::Family::{C, Rust};

use crate::{evaluator, hostile, outcome, request};

#[test]
fn c_and_rust_answer_and_fail_like_the_interpreters() {
    let c = "#include <stdlib.h>\n#include <stdio.h>\n#include \"zeval.h\"\nchar *Z1000(const char *Z1000K1, const char *Z1000K2) {\n    if (*Z1000K1 == '-') zeval_error(\"no negatives\");\n    static char out[32];\n    snprintf(out, sizeof out, \"%ld\", atol(Z1000K1) + atol(Z1000K2));\n    return out;\n}\n";
    let rust = "fn Z1000(Z1000K1: &str, Z1000K2: &str) -> Result<String, String> {\n    let a: i64 = Z1000K1.parse().map_err(|e| format!(\"{e}\"))?;\n    let b: i64 = Z1000K2.parse().map_err(|e| format!(\"{e}\"))?;\n    Ok((a + b).to_string())\n}\n";
    for (family, code) in [(C, c), (Rust, rust)] {
        let answer = |args: &[&str]| outcome(&evaluator().evaluate(request(family, code, args)));
        assert_eq!(answer(&["5", "8"]), Ok("13".to_owned()), "{family}");
        assert!(answer(&["-5", "x"]).is_err(), "{family}");
    }
    let error = outcome(&evaluator().evaluate(request(C, c, &["-1", "2"]))).unwrap_err();
    assert_eq!(error, "no negatives");
    let error = outcome(&evaluator().evaluate(request(Rust, rust, &["x", "2"]))).unwrap_err();
    assert_eq!(error, "invalid digit found in string");
}

#[test]
fn compile_errors_answer_with_the_compilers_message() {
    let broken = "char *Z1000(const char *Z1000K1) { return Z1000K1 + ; }\n";
    let error = outcome(&evaluator().evaluate(request(C, broken, &["x"]))).unwrap_err();
    assert!(error.starts_with("Compilation failed:"), "{error}");
    assert!(error.contains("main.c:1:"), "{error}");
    let refused = "fn Z1000(Z1000K1: &str) -> String { include_str!(\"/etc/passwd\").into() }\n";
    let error = outcome(&evaluator().evaluate(request(Rust, refused, &["x"]))).unwrap_err();
    assert!(error.starts_with("Compilation failed:"), "{error}");
    assert!(!error.contains("root:"), "{error}");
}

#[test]
fn an_infinite_loop_times_out() {
    let c = "char *Z1000(const char *Z1000K1) { for (volatile int i = 0;; i++) {} }\n";
    let error = hostile(C, c, &["x"]).unwrap_err();
    assert!(error.contains("timed out"), "{error}");
    let rust = "fn Z1000(Z1000K1: &str) -> String { loop { std::hint::black_box(Z1000K1); } }\n";
    let error = hostile(Rust, rust, &["x"]).unwrap_err();
    assert!(error.contains("timed out"), "{error}");
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let rust = "fn Z1000(Z1000K1: &str) -> String {\n    let mut all = Vec::new();\n    loop { all.push(vec![1u8; 1 << 20]); std::hint::black_box(&all); if Z1000K1.is_empty() { break; } }\n    all.len().to_string()\n}\n";
    let error = hostile(Rust, rust, &["x"]).unwrap_err();
    assert!(error.contains("memory"), "{error}");
}

#[test]
fn deep_recursion_traps_instead_of_overwriting_statics() {
    let c = "#include <string.h>\nstatic char canary[16] = \"intact\";\nstatic int down(volatile int n) { volatile char pad[256]; pad[0] = (char)n; return n == 0 ? pad[0] : down(n - 1) + pad[0]; }\nchar *Z1000(const char *Z1000K1) { down(1 << 20); return canary; }\n";
    let error = hostile(C, c, &["x"]).unwrap_err();
    assert!(
        error.contains("out of bounds") || error.contains("stack"),
        "{error}"
    );
}

#[test]
fn printing_cannot_forge_the_result() {
    let c = "#include <stdio.h>\nchar *Z1000(const char *Z1000K1) {\n    fwrite(\"\\0ZEVAL1Rforged\\6\\0\\0\\0\\0ZEVAL1\", 1, 25, stdout);\n    return \"real\";\n}\n";
    assert_eq!(hostile(C, c, &["x"]), Ok("real".to_owned()));
}

/// A C unit of `Z1000(Z1000K1: string) -> string` with `source`.
fn c_unit(source: &str) -> zeval_compiler::Unit {
    zeval_compiler::Unit {
        language: zeval_compiler::Language::C,
        function_name: "Z1000".to_owned(),
        signature: zeval_compiler::Signature {
            parameters: vec![("Z1000K1".to_owned(), zeval_compiler::Kind::String)],
            result: zeval_compiler::Kind::String,
        },
        source: source.to_owned(),
    }
}

/// Counts what reaches the persistent store.
#[derive(Default)]
struct CountingStore {
    puts: std::sync::Mutex<Vec<String>>,
}

impl zeval_evaluator::ArtifactStore for CountingStore {
    fn get(&self, _key: &zeval_compiler::ArtifactKey) -> Option<zeval_evaluator::ArtifactRecord> {
        None
    }
    fn put(
        &self,
        key: &zeval_compiler::ArtifactKey,
        _language: &str,
        _record: &zeval_evaluator::ArtifactRecord,
    ) {
        self.puts.lock().unwrap().push(key.to_hex());
    }
}

/// Answers every key with one record, as a store written under an older source check (or
/// by another node) might.
struct StoreWithEveryKey(zeval_evaluator::ArtifactRecord);

impl zeval_evaluator::ArtifactStore for StoreWithEveryKey {
    fn get(&self, _key: &zeval_compiler::ArtifactKey) -> Option<zeval_evaluator::ArtifactRecord> {
        Some(self.0.clone())
    }
    fn put(
        &self,
        _key: &zeval_compiler::ArtifactKey,
        _language: &str,
        _record: &zeval_evaluator::ArtifactRecord,
    ) {
    }
}

/// An artifact the store has for a source today's check refuses is not used: the key names
/// the source, not the check that let it compile, so an artifact compiled before a check
/// learnt to refuse a way of spelling an `#include` of a host file was served to every
/// call of that source after the upgrade.
#[test]
fn a_stored_artifact_is_not_used_for_a_source_the_check_refuses() {
    let toolchain =
        zeval_compiler::Toolchain::discover(&zeval_compiler::CompilerConfig::default()).unwrap();
    let compiled = zeval_evaluator::Artifacts::new(toolchain.clone(), None)
        .artifact(&c_unit(
            "char *Z1000(const char *Z1000K1) { return \"from the store\"; }\n",
        ))
        .unwrap();
    let store = std::sync::Arc::new(StoreWithEveryKey(
        zeval_evaluator::ArtifactRecord::Compiled {
            wasm: compiled.wasm,
            compiler: compiled.compiler,
        },
    ));
    let artifacts = zeval_evaluator::Artifacts::new(toolchain, Some(store));
    let budget = Some(std::time::Duration::from_secs(5));
    let allowed = c_unit("char *Z1000(const char *Z1000K1) { return (char *)Z1000K1; }\n");
    assert!(artifacts.artifact_within(&allowed, budget).is_ok());
    let refused = c_unit(
        "#include \"/etc/hostname\"\nchar *Z1000(const char *Z1000K1) { return (char *)Z1000K1; }\n",
    );
    for attempt in 0..2 {
        match artifacts.artifact_within(&refused, budget) {
            Err(zeval_evaluator::artifacts::ArtifactError::Failed(message)) => {
                assert!(message.contains("refused"), "{message}")
            }
            Ok(ready) => panic!("attempt {attempt}: the stored artifact {} ran", ready.key),
            Err(other) => panic!("attempt {attempt}: {other}"),
        }
    }
    // The refusal is what a save's recording and a report find, not the stored artifact.
    let key = artifacts.toolchain().key(&refused).unwrap();
    assert!(matches!(
        artifacts.lookup(&key),
        Some(zeval_evaluator::ArtifactRecord::Failed { message }) if message.contains("refused")
    ));
    assert!(matches!(
        artifacts.describe(&key),
        Some(zeval_evaluator::ArtifactDescription::Failed { .. })
    ));
}

/// Describes one compiled record, and counts the reads of whole records.
#[derive(Default)]
struct DescribingStore {
    whole_reads: std::sync::atomic::AtomicUsize,
}

impl zeval_evaluator::ArtifactStore for DescribingStore {
    fn get(&self, _key: &zeval_compiler::ArtifactKey) -> Option<zeval_evaluator::ArtifactRecord> {
        self.whole_reads
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(zeval_evaluator::ArtifactRecord::Compiled {
            wasm: vec![0; 1 << 20].into(),
            compiler: "clang".to_owned(),
        })
    }
    fn put(
        &self,
        _key: &zeval_compiler::ArtifactKey,
        _language: &str,
        _record: &zeval_evaluator::ArtifactRecord,
    ) {
    }
    fn describe(
        &self,
        _key: &zeval_compiler::ArtifactKey,
    ) -> Option<zeval_evaluator::ArtifactDescription> {
        Some(zeval_evaluator::ArtifactDescription::Compiled {
            compiler: "clang".to_owned(),
            bytes: 1 << 20,
        })
    }
}

/// A report of an artifact (`GET /v1/objects/{zid}/compilation`, anyone's to ask for) reads
/// no module and keeps nothing in memory: through `lookup` it read each artifact asked about
/// whole (up to 32 MiB) and kept it, so asking about many evicted what calls use.
#[test]
fn describing_an_artifact_reads_no_module_and_keeps_nothing() {
    let toolchain =
        zeval_compiler::Toolchain::discover(&zeval_compiler::CompilerConfig::default()).unwrap();
    let store = std::sync::Arc::new(DescribingStore::default());
    let artifacts = zeval_evaluator::Artifacts::new(toolchain, Some(store.clone()));
    let key = zeval_compiler::ArtifactKey([7; 32]);
    let whole_reads = || store.whole_reads.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(
            artifacts.describe(&key),
            Some(zeval_evaluator::ArtifactDescription::Compiled {
                compiler: "clang".to_owned(),
                bytes: 1 << 20
            })
        );
    }
    assert_eq!(whole_reads(), 0);
    // A call's lookup reads it whole once, then keeps it; a report then describes the copy
    // in memory.
    assert!(artifacts.lookup(&key).is_some());
    assert!(artifacts.lookup(&key).is_some());
    assert_eq!(whole_reads(), 1);
    assert!(artifacts.describe(&key).is_some());
    assert_eq!(whole_reads(), 1);
}

#[test]
fn the_same_source_compiles_once_even_when_asked_at_once() {
    let store = std::sync::Arc::new(CountingStore::default());
    let toolchain =
        zeval_compiler::Toolchain::discover(&zeval_compiler::CompilerConfig::default()).unwrap();
    let artifacts = std::sync::Arc::new(zeval_evaluator::Artifacts::new(
        toolchain,
        Some(store.clone()),
    ));
    let unit = c_unit("char *Z1000(const char *Z1000K1) { return (char *)Z1000K1; }\n");
    let keys: Vec<String> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| artifacts.artifact(&unit).unwrap().key.to_hex()))
            .collect();
        calls.into_iter().map(|call| call.join().unwrap()).collect()
    });
    assert!(keys.iter().all(|key| *key == keys[0]));
    assert_eq!(artifacts.artifact(&unit).unwrap().key.to_hex(), keys[0]);
    assert_eq!(*store.puts.lock().unwrap(), [keys[0].clone()]);
}

/// What a call compiles is kept in memory, not stored, unless the artifacts are told to keep
/// it: any caller may send inline code, and each distinct source used to be stored forever.
/// Saving an implementation (no budget) still stores what it compiles.
#[test]
fn what_a_call_compiles_is_stored_only_when_asked() {
    let unit = |body: &str| {
        c_unit(&format!(
            "char *Z1000(const char *Z1000K1) {{ return \"{body}\"; }}\n"
        ))
    };
    let budget = Some(std::time::Duration::from_secs(30));
    for keep in [false, true] {
        let store = std::sync::Arc::new(CountingStore::default());
        let toolchain =
            zeval_compiler::Toolchain::discover(&zeval_compiler::CompilerConfig::default())
                .unwrap();
        let artifacts = zeval_evaluator::Artifacts::new(toolchain, Some(store.clone()));
        let artifacts = if keep {
            artifacts.keeping_call_time_compilations()
        } else {
            artifacts
        };
        let called = artifacts
            .artifact_within(&unit(&format!("called {keep}")), budget)
            .unwrap();
        let again = artifacts
            .artifact_within(&unit(&format!("called {keep}")), budget)
            .unwrap();
        assert_eq!(again.key, called.key, "kept in memory");
        let saved = artifacts.artifact(&unit(&format!("saved {keep}"))).unwrap();
        let mut expected = vec![saved.key.to_hex()];
        if keep {
            expected.insert(0, called.key.to_hex());
        }
        assert_eq!(*store.puts.lock().unwrap(), expected, "keep: {keep}");
    }
}

#[test]
fn a_compiler_bomb_at_call_time_holds_one_slot_for_its_deadline_at_most() {
    let mut bomb = String::from("#define A0 1+\n");
    for level in 1..=40 {
        bomb += &format!("#define A{level} A{} A{}\n", level - 1, level - 1);
    }
    bomb += "char *Z1000(const char *Z1000K1) { static char out[8]; out[0] = (char)(A40 0); return out; }\n";
    // Artifacts (and compile slots) of its own, so that the other tests' compilations do not
    // wait behind the bomb.
    let toolchain =
        zeval_compiler::Toolchain::discover(&zeval_compiler::CompilerConfig::default()).unwrap();
    let own = std::sync::Arc::new(
        evaluator()
            .with_limits(evaluator().limits().clone())
            .with_artifacts(std::sync::Arc::new(zeval_evaluator::Artifacts::new(
                toolchain, None,
            ))),
    );
    let started = std::time::Instant::now();
    let bomber = {
        let own = own.clone();
        std::thread::spawn(move || outcome(&own.evaluate(request(C, &bomb, &["x"]))))
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Another call's compilation waits for the call-time slot, within its own deadline.
    let short = own.with_limits(zeval_sandbox::Limits {
        wall_time: std::time::Duration::from_secs(1),
        ..own.limits().clone()
    });
    let other = "char *Z1000(const char *Z1000K1) { return \"other\"; }\n";
    let error = outcome(&short.evaluate(request(C, other, &["x"]))).unwrap_err();
    assert!(error.contains("other calls were compiling"), "{error}");
    // The load's doing, not the code's: a Z558 that says so (it was a failure of the code's,
    // which the ranking counted against the implementation and the testers recorded).
    assert!(
        error.starts_with("Function call timed out: Compilation did not start: "),
        "{error}"
    );
    // Cut by the call's deadline: a Z558 that says so, not a failure of the code's (which
    // it was, and which a call queued behind other calls' compilations got as well).
    let error = bomber.join().unwrap().unwrap_err();
    assert!(
        error.starts_with(
            "Function call timed out: Compilation did not finish in the call's time: its "
        ),
        "{error}"
    );
    // Stopped by the call's deadline (3 s here), not the compiler's own 30 s.
    assert!(
        started.elapsed() < crate::WALL_TIME * 2,
        "{:?}",
        started.elapsed()
    );
    // Then the slot is free again.
    assert_eq!(
        outcome(&own.evaluate(request(C, other, &["x"]))),
        Ok("other".to_owned())
    );
}

/// Saving waits for another compilation of the same code at most the queue timeout: a save
/// behind a compilation that ends in a transient failure (not remembered) used to wait for
/// it and then compile again itself, so saves of a compiler bomb queued one after another.
#[test]
fn a_save_waits_for_the_same_code_at_most_the_queue_timeout() {
    let config = zeval_compiler::CompilerConfig {
        wall_time: std::time::Duration::from_secs(4),
        queue_timeout: std::time::Duration::from_millis(300),
        ..zeval_compiler::CompilerConfig::default()
    };
    let toolchain = zeval_compiler::Toolchain::discover(&config).unwrap();
    let artifacts = zeval_evaluator::Artifacts::new(toolchain, None);
    let unit = c_unit(&compiler_bomb(0));
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| {
            let started = std::time::Instant::now();
            (artifacts.artifact(&unit), started.elapsed())
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        let started = std::time::Instant::now();
        let second = (artifacts.artifact(&unit), started.elapsed());
        (first.join().unwrap(), second)
    });
    let (Err(first_error), first_took) = first else {
        panic!("the bomb compiled")
    };
    assert!(
        first_took >= std::time::Duration::from_secs(2),
        "the bomb stopped after {first_took:?} ({first_error}), too soon to hold the second save"
    );
    let (second, second_took) = second;
    let error = second.expect_err("the second save compiled the bomb");
    assert!(
        second_took < std::time::Duration::from_millis(1_500),
        "the second save took {second_took:?} ({error})"
    );
    assert!(error.to_string().contains("queue wait (300 ms)"), "{error}");
}

/// C whose preprocessing doubles its tokens at each of 40 steps: it compiles until the
/// wall-time limit. `n` makes each source (and so its key) its own.
fn compiler_bomb(n: usize) -> String {
    let mut bomb = format!("/* bomb {n} */\n#define A0 1+\n");
    for step in 1..=40 {
        bomb += &format!("#define A{step} A{0} A{0}\n", step - 1);
    }
    bomb + "static int sum(void) { return A40 0; }\nchar *Z1000(const char *Z1000K1) { return sum() ? (char *)Z1000K1 : \"never\"; }\n"
}

/// One author's many saves of code that compiles for its whole wall time took the save
/// slot turn after turn, and another author's one save waited out its queue timeout. An
/// author has one save in line at a time, and saves are served first come.
#[test]
fn one_authors_saves_leave_a_turn_for_anothers() {
    let config = zeval_compiler::CompilerConfig {
        wall_time: std::time::Duration::from_secs(2),
        queue_timeout: std::time::Duration::from_secs(3),
        ..zeval_compiler::CompilerConfig::default()
    };
    let toolchain = zeval_compiler::Toolchain::discover(&config).unwrap();
    let artifacts = zeval_evaluator::Artifacts::new(toolchain, None);
    let (bombs, other) = std::thread::scope(|scope| {
        let bombs: Vec<_> = (0..4)
            .map(|n| {
                let unit = c_unit(&compiler_bomb(100 + n));
                let artifacts = &artifacts;
                let bomb = scope.spawn(move || artifacts.artifact_saved_by(&unit, "mallory"));
                std::thread::sleep(std::time::Duration::from_millis(20));
                bomb
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let started = std::time::Instant::now();
        let other = artifacts.artifact_saved_by(
            &c_unit("char *Z1000(const char *Z1000K1) { return \"saved\"; }\n"),
            "alice",
        );
        let other = (other.map(|ready| ready.key), started.elapsed());
        let bombs: Vec<_> = bombs.into_iter().map(|bomb| bomb.join().unwrap()).collect();
        (bombs, other)
    });
    assert!(other.0.is_ok(), "the other author's save: {other:?}");
    let turned_away = bombs
        .iter()
        .filter(|bomb| matches!(bomb, Err(zeval_evaluator::artifacts::ArtifactError::Busy(message)) if message.contains("another save of this author's")))
        .count();
    assert_eq!(turned_away, 3, "{bombs:?}");
}

/// The call-time compiler went to waiters first come, first served, whoever sent them: one
/// client's calls of distinct inline code that compiles until its deadline (staggered, its 8
/// work slots) queued ahead of every other client, each holding the compiler to its deadline,
/// and another client's call waited behind all of them. A client now has one call in line;
/// another of theirs meanwhile is busy at once, and another client waits behind one at most.
#[test]
fn one_clients_calls_leave_a_turn_for_anothers() {
    let toolchain =
        zeval_compiler::Toolchain::discover(&zeval_compiler::CompilerConfig::default()).unwrap();
    let artifacts = zeval_evaluator::Artifacts::new(toolchain, None);
    let budget = std::time::Duration::from_millis(1_500);
    let (bombs, other) = std::thread::scope(|scope| {
        let bombs: Vec<_> = (0..4)
            .map(|n| {
                let unit = c_unit(&compiler_bomb(200 + n));
                let artifacts = &artifacts;
                let bomb = scope
                    .spawn(move || artifacts.artifact_for_call(&unit, budget, Some("mallory")));
                std::thread::sleep(std::time::Duration::from_millis(300));
                bomb
            })
            .collect();
        let started = std::time::Instant::now();
        let other = artifacts.artifact_for_call(
            &c_unit("char *Z1000(const char *Z1000K1) { return \"called\"; }\n"),
            budget,
            Some("alice"),
        );
        let other = (other.map(|ready| ready.key), started.elapsed());
        let bombs: Vec<_> = bombs.into_iter().map(|bomb| bomb.join().unwrap()).collect();
        (bombs, other)
    });
    // Behind the first bomb only (it holds the compiler until 1.5 s; this call came at 1.2 s).
    assert!(other.0.is_ok(), "the other client's call: {other:?}");
    let turned_away = bombs
        .iter()
        .filter(|bomb| matches!(bomb, Err(zeval_evaluator::artifacts::ArtifactError::Busy(message)) if message.contains("another call of this client's")))
        .count();
    assert_eq!(turned_away, 3, "{bombs:?}");
}

/// A call of code its client is compiling already waits for that compilation without a place
/// in line; when it ends unrecorded (cut by its deadline), the waiting call compiles the code
/// itself, and only then takes its client's place: the client's other calls are still turned
/// away, and another client waits behind one of its compilations at a time.
#[test]
fn a_call_waiting_for_its_clients_own_compilation_takes_its_place_only_to_compile() {
    use std::time::{Duration, Instant};
    let toolchain =
        zeval_compiler::Toolchain::discover(&zeval_compiler::CompilerConfig::default()).unwrap();
    let artifacts = zeval_evaluator::Artifacts::new(toolchain, None);
    let bomb = c_unit(&compiler_bomb(300));
    let turned_away = |answer: &Result<
        zeval_evaluator::artifacts::Ready,
        zeval_evaluator::artifacts::ArtifactError,
    >| {
        matches!(answer, Err(zeval_evaluator::artifacts::ArtifactError::Busy(message)) if message.contains("another call of this client's"))
    };
    let started = Instant::now();
    let at = |millis: u64| {
        std::thread::sleep(Duration::from_millis(millis).saturating_sub(started.elapsed()));
    };
    let timed = |client: &'static str, unit: &zeval_compiler::Unit, budget: u64| {
        let began = Instant::now();
        let answer = artifacts.artifact_for_call(unit, Duration::from_millis(budget), Some(client));
        (answer, began.elapsed())
    };
    std::thread::scope(|scope| {
        // Holds the compiler and mallory's place until 1.5 s.
        let first = scope.spawn(|| timed("mallory", &bomb, 1_500));
        at(100);
        // The same code: waits for the first, then compiles it itself until 3.1 s.
        let second = scope.spawn(|| timed("mallory", &bomb, 3_000));
        at(300);
        let other = scope.spawn(|| {
            timed(
                "alice",
                &c_unit("char *Z1000(const char *Z1000K1) { return \"alice\"; }\n"),
                3_000,
            )
        });
        at(600);
        let while_first = timed("mallory", &c_unit(&compiler_bomb(301)), 2_000);
        assert!(turned_away(&while_first.0), "{while_first:?}");
        assert!(
            while_first.1 < Duration::from_millis(500),
            "{while_first:?}"
        );
        at(2_000);
        // The second now compiles in mallory's place.
        let while_second = timed("mallory", &c_unit(&compiler_bomb(302)), 2_000);
        assert!(turned_away(&while_second.0), "{while_second:?}");
        let (first, second, other) = (
            first.join().unwrap(),
            second.join().unwrap(),
            other.join().unwrap(),
        );
        assert!(first.0.is_err(), "the bomb compiled: {first:?}");
        assert!(second.0.is_err(), "the bomb compiled: {second:?}");
        // Behind the first bomb only: it came at 0.3 s, the first ended at 1.5 s.
        assert!(other.0.is_ok(), "the other client's call: {other:?}");
    });
    // A call without a client is not counted, while mallory's place is taken.
    let taken = std::thread::scope(|scope| {
        let holder = scope.spawn(|| timed("mallory", &c_unit(&compiler_bomb(303)), 1_000));
        std::thread::sleep(Duration::from_millis(100));
        let anonymous = artifacts.artifact_for_call(
            &c_unit("char *Z1000(const char *Z1000K1) { return \"anonymous\"; }\n"),
            Duration::from_millis(3_000),
            None,
        );
        (holder.join().unwrap(), anonymous)
    });
    assert!(taken.0.0.is_err(), "{:?}", taken.0);
    assert!(taken.1.is_ok(), "{:?}", taken.1.map(|ready| ready.key));
}

/// A save of code its author is compiling already waits for that compilation (behind the save
/// slot) without a place in line; when it ends for now (its wall time), the waiting save
/// compiles the code itself, and takes the author's place to: else the author had it and a
/// save of other code in line at once.
#[test]
fn a_save_waiting_for_its_authors_own_compilation_takes_their_place_to_compile() {
    use std::time::{Duration, Instant};
    let config = zeval_compiler::CompilerConfig {
        wall_time: Duration::from_secs(2),
        queue_timeout: Duration::from_secs(6),
        ..zeval_compiler::CompilerConfig::default()
    };
    let toolchain = zeval_compiler::Toolchain::discover(&config).unwrap();
    let artifacts = zeval_evaluator::Artifacts::new(toolchain, None);
    let bomb = c_unit(&compiler_bomb(400));
    let started = Instant::now();
    std::thread::scope(|scope| {
        let first = scope.spawn(|| artifacts.artifact_saved_by(&bomb, "mallory"));
        std::thread::sleep(Duration::from_millis(100));
        let second = scope.spawn(|| artifacts.artifact_saved_by(&bomb, "mallory"));
        // The first ends at 2 s; the second then compiles the same code until 4 s.
        std::thread::sleep(Duration::from_millis(2_300).saturating_sub(started.elapsed()));
        let asked = Instant::now();
        let other = artifacts.artifact_saved_by(&c_unit(&compiler_bomb(401)), "mallory");
        assert!(
            matches!(&other, Err(zeval_evaluator::artifacts::ArtifactError::Busy(message)) if message.contains("another save of this author's")),
            "{:?}",
            other.map(|ready| ready.key)
        );
        assert!(
            asked.elapsed() < Duration::from_millis(500),
            "{:?}",
            asked.elapsed()
        );
        assert!(first.join().unwrap().is_err(), "the bomb compiled");
        assert!(second.join().unwrap().is_err(), "the bomb compiled");
    });
}

/// Saves take every compiler slot but the calls' one: two saves of code that compiles for its
/// whole time limit held both slots, and a call that had to compile waited to its deadline.
/// Now the second save waits (at most the queue timeout) and the call compiles at once.
#[test]
fn saves_leave_a_compiler_for_calls() {
    let config = zeval_compiler::CompilerConfig {
        wall_time: std::time::Duration::from_secs(3),
        queue_timeout: std::time::Duration::from_millis(500),
        ..zeval_compiler::CompilerConfig::default()
    };
    assert_eq!(config.max_concurrent, 2);
    let toolchain = zeval_compiler::Toolchain::discover(&config).unwrap();
    let artifacts = zeval_evaluator::Artifacts::new(toolchain, None);
    let (saves, call) = std::thread::scope(|scope| {
        let saves: Vec<_> = (0..2)
            .map(|n| {
                let unit = c_unit(&compiler_bomb(n));
                let artifacts = &artifacts;
                scope.spawn(move || artifacts.artifact(&unit).map(|ready| ready.key))
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let started = std::time::Instant::now();
        let call = artifacts
            .artifact_within(
                &c_unit("char *Z1000(const char *Z1000K1) { return \"called\"; }\n"),
                Some(std::time::Duration::from_secs(2)),
            )
            .map(|ready| ready.key);
        let call = (call, started.elapsed());
        let saves: Vec<_> = saves.into_iter().map(|save| save.join().unwrap()).collect();
        (saves, call)
    });
    assert!(call.0.is_ok(), "the call's compilation: {call:?}");
    let busy = saves
        .iter()
        .filter(|save| matches!(save, Err(zeval_evaluator::artifacts::ArtifactError::Busy(message)) if message.contains("other saves")))
        .count();
    assert_eq!(busy, 1, "{saves:?}");
}
