//! Compilers that run away are stopped by a limit, with a clear failure.

use std::time::{Duration, Instant};

use zeval_compiler::{CompileFailure, Kind, Language, STALE_TEMP_DIR_AGE, sweep_stale_temp_dirs};

use crate::common::{signature, small_toolchain, unit};

fn limit_of(result: Result<zeval_compiler::Compiled, CompileFailure>) -> &'static str {
    match result {
        Err(CompileFailure::Limit { what, .. }) => what,
        Err(other) => panic!("expected a limit, got {other}"),
        Ok(_) => panic!("expected a limit, but it compiled"),
    }
}

#[test]
fn rust_const_eval_loop_hits_cpu_time() {
    let toolchain = small_toolchain(|_| {});
    let sig = signature(&[], Kind::String, "Z10040");
    let source = "#![allow(long_running_const_eval)]\n\
        const X: u64 = { let mut i = 0u64; loop { i = i.wrapping_add(1); if i == 0 { break i; } } };\n\
        fn Z10040() -> String { X.to_string() }";
    let started = Instant::now();
    let what = limit_of(toolchain.compile(&unit(Language::Rust, "Z10040", &sig, source)));
    assert_eq!(what, "CPU time");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

/// A message line of the compiler's may carry the user's words: `#error` and
/// `compile_error!` do not make a CPU-time limit of a failure that used next to no CPU (at
/// call time such a limit is the load's, which the ranking does not count against the code).
#[test]
fn the_users_words_do_not_pass_for_a_cpu_time_limit() {
    let toolchain = small_toolchain(|_| {});
    let sig = signature(&[], Kind::String, "Z10043");
    for (language, source) in [
        (
            Language::C,
            "#error CPU time limit exceeded (SIGXCPU)\nconst char *Z10043(void) { return \"x\"; }\n",
        ),
        (
            Language::Rust,
            "compile_error!(concat!(\"CPU time lim\", \"it exceeded (SIGXCPU)\"));\nfn Z10043() -> String { String::new() }",
        ),
    ] {
        match toolchain.compile(&unit(language, "Z10043", &sig, source)) {
            Err(CompileFailure::Diagnostics(text)) => {
                assert!(text.contains("CPU time limit exceeded"), "{text}")
            }
            Err(other) => panic!("{language:?}: {other}"),
            Ok(_) => panic!("{language:?}: it compiled"),
        }
    }
}

#[test]
fn c_macro_bomb_hits_a_limit() {
    let toolchain = small_toolchain(|config| config.address_space = 1 << 30);
    let sig = signature(&[], Kind::String, "Z10041");
    let mut source = String::from("#define A0 x\n");
    for i in 1..40 {
        source.push_str(&format!("#define A{i} A{} A{}\n", i - 1, i - 1));
    }
    // 2^39 tokens of expansion.
    source.push_str("int z[] = { A39 };\nconst char *Z10041(void) { return \"x\"; }\n");
    let started = Instant::now();
    let what = limit_of(toolchain.compile(&unit(Language::C, "Z10041", &sig, &source)));
    // The expansion grows the token buffer as fast as it burns CPU: which limit comes first
    // depends on the machine's load.
    assert!(["CPU time", "memory"].contains(&what), "{what}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn rust_huge_static_hits_memory() {
    let toolchain = small_toolchain(|config| config.address_space = 2 << 30);
    let sig = signature(&[], Kind::String, "Z10042");
    let source = "static BIG: [u8; 1 << 30] = [1; 1 << 30];\n\
        fn Z10042() -> String { BIG[12345].to_string() }";
    assert_eq!(
        limit_of(toolchain.compile(&unit(Language::Rust, "Z10042", &sig, source))),
        "memory"
    );
}

#[test]
fn big_artifacts_hit_output_size() {
    // Writing a 32 MiB static takes rustc 2–3 s of CPU here, and more under load (it once
    // hit the 3 s of `small_toolchain` in CI): this test is about the output limit, so the
    // CPU limit is set well past that.
    let toolchain = small_toolchain(|config| {
        config.max_output_bytes = 8 << 20;
        config.cpu_time = Duration::from_secs(15);
        config.wall_time = Duration::from_secs(30);
    });
    // The data is read at an index the optimiser cannot know, so it must be in the module.
    let sig = signature(&[Kind::String], Kind::String, "Z10042");
    let rust = "static BIG: [u8; 1 << 25] = [1; 1 << 25];\n\
        fn Z10042(Z10042K1: &str) -> String { BIG[Z10042K1.len()].to_string() }";
    assert_eq!(
        limit_of(toolchain.compile(&unit(Language::Rust, "Z10042", &sig, rust))),
        "output size"
    );
    // 64 bytes doubled 18 times by string concatenation: 16 MiB of data, compiled in 0.3 s.
    let mut c = String::from("#include <string.h>\n#define S0 \"");
    c.push_str(&"x".repeat(64));
    c.push_str("\"\n");
    for i in 1..19 {
        c.push_str(&format!("#define S{i} S{} S{}\n", i - 1, i - 1));
    }
    c.push_str(
        "static const char big[] = S18;\n\
         const char *Z10042(const char *Z10042K1) { return big[strlen(Z10042K1)] ? \"a\" : \"b\"; }",
    );
    assert_eq!(
        limit_of(toolchain.compile(&unit(Language::C, "Z10042", &sig, &c))),
        "output size"
    );
}

/// A dir whose last change was `ago`.
fn dir_changed(path: &std::path::Path, ago: Duration) {
    std::fs::create_dir(path).unwrap();
    std::fs::write(path.join("main.o"), [0u8; 4096]).unwrap();
    let then = std::time::SystemTime::now() - ago;
    std::fs::File::open(path)
        .unwrap()
        .set_modified(then)
        .unwrap();
}

/// A compilation's temp dir is removed when it ends; until 2026-12-06 the dir of a process
/// killed mid-compilation stayed for good.
#[test]
fn a_new_toolchain_sweeps_the_temp_dirs_a_killed_process_left() {
    let root = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let old = STALE_TEMP_DIR_AGE + Duration::from_secs(60);
    let stale = root.path().join("zeval-compile-stale");
    dir_changed(&stale, old);
    // Still in use, perhaps by another process's compilation.
    let recent = root.path().join("zeval-compile-recent");
    dir_changed(&recent, Duration::from_secs(60));
    let unrelated = root.path().join("someone-else");
    dir_changed(&unrelated, old);
    let target = elsewhere.path().join("kept");
    dir_changed(&target, old);
    std::os::unix::fs::symlink(&target, root.path().join("zeval-compile-link")).unwrap();
    small_toolchain(|config| config.temp_root = Some(root.path().to_owned()));
    assert!(!stale.exists());
    assert!(recent.join("main.o").exists());
    assert!(unrelated.join("main.o").exists());
    assert!(target.join("main.o").exists());
    assert_eq!(sweep_stale_temp_dirs(root.path(), old), 0);
}

#[test]
fn wall_time_kills_the_process_group() {
    let toolchain = small_toolchain(|config| {
        config.cpu_time = Duration::from_secs(20);
        config.wall_time = Duration::from_secs(2);
    });
    let sig = signature(&[], Kind::String, "Z10043");
    let source = "#![allow(long_running_const_eval)]\n\
        const X: u64 = { let mut i = 0u64; loop { i = i.wrapping_add(1); if i == 0 { break i; } } };\n\
        fn Z10043() -> String { X.to_string() }";
    let started = Instant::now();
    let failure = toolchain
        .compile(&unit(Language::Rust, "Z10043", &sig, source))
        .unwrap_err();
    assert!(
        matches!(
            failure,
            CompileFailure::Limit {
                what: "wall time",
                ..
            }
        ),
        "{failure}"
    );
    assert!(failure.is_transient());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_full_queue_fails_as_busy() {
    let toolchain = small_toolchain(|config| {
        config.max_concurrent = 1;
        config.queue_timeout = Duration::from_millis(200);
        config.wall_time = Duration::from_secs(3);
        config.cpu_time = Duration::from_secs(20);
    });
    let sig = signature(&[], Kind::String, "Z10044");
    let slow = "#![allow(long_running_const_eval)]\n\
        const X: u64 = { let mut i = 0u64; loop { i = i.wrapping_add(1); if i == 0 { break i; } } };\n\
        fn Z10044() -> String { X.to_string() }";
    let busy = toolchain.clone();
    let slow_unit = unit(Language::Rust, "Z10044", &sig, slow);
    let holder = std::thread::spawn(move || busy.compile(&slow_unit));
    std::thread::sleep(Duration::from_millis(300));
    let quick = unit(
        Language::Rust,
        "Z10044",
        &sig,
        "fn Z10044() -> String { String::new() }",
    );
    let failure = toolchain.compile(&quick).unwrap_err();
    assert!(
        matches!(
            failure,
            CompileFailure::Limit {
                what: "queue wait",
                ..
            }
        ),
        "{failure}"
    );
    assert!(failure.is_transient());
    assert!(holder.join().unwrap().is_err());
}
