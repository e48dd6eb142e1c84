//! Finding the compilers ([`Toolchain::discover`]) and compiling a [`Unit`] with them
//! ([`Toolchain::compile`]): the source check, the bound on concurrent compilations, the
//! generated files, the confined compiler process and the mapping of how it ended.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::check;
use crate::confine::{self, Limits, Walls};
use crate::convention::is_identifier;
use crate::glue;
use crate::language::{ArtifactKey, Language, Unit};

/// Diagnostics kept in a [`CompileFailure::Diagnostics`] (and in [`Compiled::warnings`]):
/// 8 KiB, cut at a character boundary.
pub const MAX_DIAGNOSTICS_BYTES: usize = 8 << 10;

/// How to find and run the compilers.
#[derive(Debug, Clone)]
pub struct CompilerConfig {
    /// The directory whose `rust-toolchain.toml` picks the Rust toolchain: `rustc --print
    /// sysroot` runs there. `None`: the current directory.
    pub rust_toolchain_dir: Option<PathBuf>,
    /// The Rust sysroot to use, instead of asking `rustc`.
    pub rust_sysroot: Option<PathBuf>,
    /// The clang to use, instead of `clang-19` or `clang` from `PATH`.
    pub clang: Option<PathBuf>,
    /// Largest source accepted (default 256 KiB).
    pub max_source_bytes: usize,
    /// CPU time per compiler process (default 20 s; a small function takes 0.1–0.3 s).
    pub cpu_time: Duration,
    /// Address space per compiler process (default 2 GiB, so two compilations cannot take
    /// more than 4 GiB of the machine; a small function peaks at about 105 MiB resident;
    /// rustc needs more than 384 MiB
    /// just to map its libraries and std's metadata, and fails with odd errors below that).
    pub address_space: u64,
    /// Largest file the compiler may write, hence largest artifact (default 32 MiB).
    pub max_output_bytes: u64,
    /// Bytes of all the files in a compilation's temp dir together (default 128 MiB: the
    /// linked module and the objects it is linked from, each at most `max_output_bytes`,
    /// with room for the compiler's own temporaries). Two compilations at once hold at most
    /// twice that on the temp dir's file system.
    pub max_temp_bytes: u64,
    /// Wall-clock time per compilation (default 30 s).
    pub wall_time: Duration,
    /// Bytes of the compiler's stdout and stderr kept (default 64 KiB each).
    pub captured_bytes: usize,
    /// Compilations running at once, per [`Toolchain`] and its clones (default 2).
    pub max_concurrent: usize,
    /// How long a compilation waits for a slot before failing as busy (default 60 s).
    pub queue_timeout: Duration,
    /// Where the per-compilation temp dirs are made (`None`: the system temp dir).
    pub temp_root: Option<PathBuf>,
}

impl Default for CompilerConfig {
    fn default() -> Self {
        CompilerConfig {
            rust_toolchain_dir: None,
            rust_sysroot: None,
            clang: None,
            max_source_bytes: 256 << 10,
            cpu_time: Duration::from_secs(20),
            address_space: 2 << 30,
            max_output_bytes: 32 << 20,
            max_temp_bytes: 128 << 20,
            wall_time: Duration::from_secs(30),
            captured_bytes: 64 << 10,
            max_concurrent: 2,
            queue_timeout: Duration::from_secs(60),
            temp_root: None,
        }
    }
}

/// Why the toolchain could not be set up (a missing compiler is not an error: see
/// [`Toolchain::has`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum CompilerError {
    /// A path given in the configuration is unusable.
    #[error("compiler configuration: {0}")]
    Config(String),
}

/// Why a unit did not compile. The `Display` text is meant for the implementation's author.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileFailure {
    /// The source check refused the source (see the check's rules in the crate docs).
    #[error("the source was refused: {0}")]
    Refused(String),
    /// The compiler rejected the source; the text is its diagnostics (at most
    /// [`MAX_DIAGNOSTICS_BYTES`], with no host paths).
    #[error("the compiler reported errors:\n{0}")]
    Diagnostics(String),
    /// A limit stopped the compilation. `what` is "CPU time", "memory", "wall time",
    /// "output size", "temporary files", "queue wait", or [`CALLS_CPU_TIME`] (the CPU time a
    /// call's time left lowered the limit to).
    #[error("compilation stopped: the {what} limit was exceeded ({detail})")]
    Limit { what: &'static str, detail: String },
    /// This server has no compiler for the language.
    #[error("no {0} compiler is available on this server")]
    Unavailable(Language),
    /// Something went wrong on the server's side.
    #[error("internal error while compiling: {0}")]
    Internal(String),
}

/// `CompileFailure::Limit::what` of a CPU-time limit that a call's time left lowered below
/// [`CompilerConfig::cpu_time`] (see [`Toolchain::compile_queued`]).
pub const CALLS_CPU_TIME: &str = "call's CPU time";

impl CompileFailure {
    /// Whether trying again later may succeed: a wall-time limit or a full queue (the
    /// machine was busy) and internal errors.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CompileFailure::Limit {
                what: "wall time" | "queue wait",
                ..
            } | CompileFailure::Internal(_)
        )
    }
}

/// A compiled artifact.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub key: ArtifactKey,
    /// A wasm32-wasip1 command module.
    pub wasm: Vec<u8>,
    /// The compiler's identity, as in [`Toolchain::identity`].
    pub compiler: String,
    /// Wall time of the compiler process.
    pub duration: Duration,
    /// The compiler's warnings, if any (capped and cleaned as diagnostics are).
    pub warnings: String,
}

#[derive(Debug)]
struct Clang {
    path: PathBuf,
    identity: String,
}

#[derive(Debug)]
struct Rustc {
    path: PathBuf,
    sysroot: PathBuf,
    identity: String,
}

/// The compilers found on this machine, and the bound on concurrent compilations (shared by
/// clones).
#[derive(Debug, Clone)]
pub struct Toolchain {
    config: CompilerConfig,
    clang: Option<Arc<Clang>>,
    rustc: Option<Arc<Rustc>>,
    missing: Vec<(Language, String)>,
    gate: Arc<Gate>,
}

/// The flags of every C compilation (hashed into the key; the file names are fixed).
const C_FLAGS: &[&str] = &[
    "--target=wasm32-wasi",
    "-std=c17",
    "-O2",
    "-fno-trigraphs",
    "-fno-crash-diagnostics",
    "-Wall",
    "-Iinclude",
    "-s",
    "-Wl,--fatal-warnings",
    // The stack below the static data (as Rust links it), so that an overflow traps at
    // address 0 instead of silently overwriting statics; 1 MiB, as Rust's.
    "-Wl,--stack-first",
    "-Wl,-z,stack-size=1048576",
    "-o",
    "out.wasm",
    "main.c",
    "glue.c",
];

/// What every compilation's temp dir is named after ([`sweep_stale_temp_dirs`]).
const TEMP_DIR_PREFIX: &str = "zeval-compile-";

/// The flags of every Rust compilation.
const RUST_FLAGS: &[&str] = &[
    "--edition=2021",
    "--crate-type=bin",
    "--crate-name=zeval_function",
    "--target=wasm32-wasip1",
    "-O",
    // No `-Ccodegen-units`: rustc run alone (not by cargo) writes one object for this target
    // (measured with 1.95: eight modules of 6 MiB statics, one `.o`; with
    // `-Ccodegen-units=16`, sixteen of them and 50 MiB in the temp dir). The flags are part
    // of every artifact's key, so naming it would only compile every stored artifact again;
    // `CompilerConfig::max_temp_bytes` bounds the files together whatever rustc does.
    "-Cpanic=abort",
    "-Cstrip=symbols",
    "-Anon_snake_case",
    "--color=never",
    "-o",
    "out.wasm",
    "main.rs",
];

impl Toolchain {
    /// Finds clang (`config.clang`, else `clang-19` then `clang` on `PATH`) with the wasi-libc
    /// headers and libraries (Debian's layout, target `wasm32-wasi`), and rustc (the real
    /// binary of the sysroot `rustc --print sysroot` reports in `config.rust_toolchain_dir`,
    /// or `config.rust_sysroot`) with the `wasm32-wasip1` standard library. A compiler that
    /// is missing is logged and reported by [`Toolchain::has`]; only unusable configured
    /// paths are errors. Removes the temp dirs that killed compilations left
    /// ([`sweep_stale_temp_dirs`]).
    pub fn discover(config: &CompilerConfig) -> Result<Toolchain, CompilerError> {
        let mut missing = Vec::new();
        let clang = match find_clang(config) {
            Ok(clang) => Some(Arc::new(clang)),
            Err(why) if config.clang.is_some() => return Err(CompilerError::Config(why)),
            Err(why) => {
                missing.push((Language::C, why));
                None
            }
        };
        let rustc = match find_rustc(config) {
            Ok(rustc) => Some(Arc::new(rustc)),
            Err(why) if config.rust_sysroot.is_some() => return Err(CompilerError::Config(why)),
            Err(why) => {
                missing.push((Language::Rust, why));
                None
            }
        };
        for (language, why) in &missing {
            tracing::warn!(
                language = language.code(),
                "{language} implementations cannot be compiled: {why}"
            );
        }
        let temp_root = config.temp_root.clone().unwrap_or_else(std::env::temp_dir);
        let swept = sweep_stale_temp_dirs(&temp_root, STALE_TEMP_DIR_AGE);
        if swept > 0 {
            tracing::info!(
                swept,
                root = %temp_root.display(),
                "removed compilation temp dirs that a process killed mid-compilation left"
            );
        }
        Ok(Toolchain {
            config: config.clone(),
            clang,
            rustc,
            missing,
            gate: Arc::new(Gate::new(config.max_concurrent.max(1))),
        })
    }

    /// Whether `language` can be compiled here.
    pub fn has(&self, language: Language) -> bool {
        self.identity(language).is_some()
    }

    /// The compiler's identity (`clang --version`'s first line; `rustc <release>
    /// (<commit hash>)`), which is part of every artifact key.
    pub fn identity(&self, language: Language) -> Option<&str> {
        match language {
            Language::C => self.clang.as_ref().map(|c| c.identity.as_str()),
            Language::Rust => self.rustc.as_ref().map(|r| r.identity.as_str()),
        }
    }

    /// Why `language` is missing, if it is.
    pub fn unavailable_reason(&self, language: Language) -> Option<&str> {
        self.missing
            .iter()
            .find(|(missing, _)| *missing == language)
            .map(|(_, why)| why.as_str())
    }

    /// The configuration in use.
    pub fn config(&self) -> &CompilerConfig {
        &self.config
    }

    /// The key `unit`'s artifact will have, if its compiler is here.
    pub fn key(&self, unit: &Unit) -> Option<ArtifactKey> {
        let identity = self.identity(unit.language)?;
        Some(ArtifactKey::compute(unit, identity, flags(unit.language)))
    }

    /// What the confinement of a compiler process achieves on this machine.
    pub fn confinement(&self) -> Result<confine::Confinement, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        Walls::prepare(dir.path(), &self.read_only_paths(), self.limits())
            .map(|w| w.confinement().clone())
    }

    /// Checks and compiles `unit`, waiting for a slot if [`CompilerConfig::max_concurrent`]
    /// compilations are running. Blocks the calling thread (up to the queue timeout plus the
    /// wall-time limit): call it from a blocking context.
    pub fn compile(&self, unit: &Unit) -> Result<Compiled, CompileFailure> {
        self.compile_within(unit, None)
    }

    /// [`Toolchain::compile`] within `budget` when one is given: the queue wait and the
    /// compilation share it (the compilation gets the wall and CPU time the wait left). For
    /// compilations a function call waits for (inline code, or code saved before its
    /// function's signature changed), so that a compiler bomb sent anonymously holds a slot
    /// and the machine no longer than the call's own deadline, and the call answers by then.
    pub fn compile_within(
        &self,
        unit: &Unit,
        budget: Option<Duration>,
    ) -> Result<Compiled, CompileFailure> {
        self.compile_queued(unit, budget, self.config.queue_timeout)
    }

    /// [`Toolchain::compile_within`], waiting at most `queue_wait` (instead of
    /// [`CompilerConfig::queue_timeout`]) for a slot: for a caller that already waited part
    /// of its queue time elsewhere (for another compilation of the same code).
    pub fn compile_queued(
        &self,
        unit: &Unit,
        budget: Option<Duration>,
        queue_wait: Duration,
    ) -> Result<Compiled, CompileFailure> {
        let deadline = budget.map(|budget| Instant::now() + budget);
        let mut limits = self.limits();
        let mut queue_timeout = queue_wait;
        if let Some(budget) = budget {
            queue_timeout = queue_timeout.min(budget);
        }
        self.check(unit)?;
        let identity = self
            .identity(unit.language)
            .ok_or(CompileFailure::Unavailable(unit.language))?
            .to_owned();
        let key = ArtifactKey::compute(unit, &identity, flags(unit.language));
        let _slot = self
            .gate
            .acquire(queue_timeout)
            .ok_or_else(|| CompileFailure::Limit {
                what: "queue wait",
                detail: format!(
                    "{} compilations were running for {} ms",
                    self.config.max_concurrent,
                    queue_timeout.as_millis()
                ),
            })?;
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // Spent waiting for a compiler: the queue's doing, not the source's.
                return Err(CompileFailure::Limit {
                    what: "queue wait",
                    detail: format!(
                        "the call's {} ms passed while it waited for a compiler",
                        budget.unwrap_or_default().as_millis()
                    ),
                });
            }
            limits.wall = limits.wall.min(left);
            // RLIMIT_CPU counts whole seconds: the second the time left ends in, so that the
            // compilation gets the CPU time the wait left, and the wall time ends it on time.
            // Truncated, 1.9 s left gave 1 s of CPU, and a Rust compilation of about a second
            // failed now and then within a 2 s call (the hostile corpus's `thread_spawn.rs`).
            let whole_seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            limits.cpu = limits.cpu.min(Duration::from_secs(whole_seconds.max(1)));
        }
        let dir = match &self.config.temp_root {
            Some(root) => tempfile::Builder::new()
                .prefix(TEMP_DIR_PREFIX)
                .tempdir_in(root),
            None => tempfile::Builder::new().prefix(TEMP_DIR_PREFIX).tempdir(),
        }
        .map_err(|e| CompileFailure::Internal(format!("temp dir: {e}")))?;
        let program = self.write_files(unit, dir.path())?;
        // The clang driver finds wasm-ld through PATH; temporary files stay in the temp dir.
        let env = [
            ("PATH", "/usr/bin:/bin".to_owned()),
            ("TMPDIR", dir.path().display().to_string()),
        ];
        let walls = Walls::prepare(dir.path(), &self.read_only_paths(), limits)
            .map_err(CompileFailure::Internal)?;
        let args: Vec<String> = flags(unit.language)
            .iter()
            .map(|f| (*f).to_owned())
            .collect();
        let outcome = confine::run(&program, &args, dir.path(), &env, &walls)
            .map_err(|e| CompileFailure::Internal(format!("could not run the compiler: {e}")))?;
        let clean = |bytes: &[u8]| self.clean_diagnostics(bytes, dir.path());
        let mut text = clean(&outcome.stderr);
        if !outcome.stdout.is_empty() {
            text = format!("{}\n{text}", clean(&outcome.stdout))
                .trim()
                .to_owned();
        }
        tracing::debug!(
            language = unit.language.code(),
            key = %key,
            elapsed_ms = outcome.elapsed.as_millis() as u64,
            status = %outcome.status,
            "compiler finished"
        );
        if let Some(limit) = self.limit_hit(&outcome, &text, &limits) {
            return Err(match limit {
                // Lowered to the call's time left: the call's limit, not the compiler's own.
                // A compiler's threads (rustc's) spend CPU time faster than the clock, so it
                // may end before the call's deadline.
                CompileFailure::Limit {
                    what: "CPU time",
                    detail,
                } if limits.cpu < self.config.cpu_time => CompileFailure::Limit {
                    what: CALLS_CPU_TIME,
                    detail,
                },
                limit => limit,
            });
        }
        if !outcome.status.success() {
            return Err(CompileFailure::Diagnostics(if text.is_empty() {
                format!(
                    "the compiler failed ({}) without saying why",
                    outcome.status
                )
            } else {
                text
            }));
        }
        let wasm = read_artifact(&dir.path().join("out.wasm"), self.config.max_output_bytes)?;
        Ok(Compiled {
            key,
            wasm,
            compiler: identity,
            duration: outcome.elapsed,
            warnings: text,
        })
    }

    /// Runs the source check alone (also part of [`Toolchain::compile`]).
    pub fn check(&self, unit: &Unit) -> Result<(), CompileFailure> {
        check_unit(unit, self.config.max_source_bytes).map_err(CompileFailure::Refused)
    }

    fn limits(&self) -> Limits {
        Limits {
            cpu: self.config.cpu_time,
            address_space: self.config.address_space,
            output_bytes: self.config.max_output_bytes,
            wall: self.config.wall_time,
            temp_bytes: self.config.max_temp_bytes,
            captured_bytes: self.config.captured_bytes,
        }
    }

    fn read_only_paths(&self) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        if let Some(rustc) = &self.rustc {
            paths.push(rustc.sysroot.clone());
        }
        if let Some(clang) = &self.clang
            && let Ok(real) = clang.path.canonicalize()
            && let Some(dir) = real.parent()
        {
            paths.push(dir.to_owned());
        }
        paths
    }

    /// Writes the unit's files into `dir`; returns the compiler to run.
    fn write_files(&self, unit: &Unit, dir: &Path) -> Result<PathBuf, CompileFailure> {
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text)
                .map_err(|e| CompileFailure::Internal(format!("writing {name}: {e}")))
        };
        match unit.language {
            Language::C => {
                let clang = self
                    .clang
                    .as_ref()
                    .ok_or(CompileFailure::Unavailable(Language::C))?;
                std::fs::create_dir(dir.join("include"))
                    .map_err(|e| CompileFailure::Internal(format!("include dir: {e}")))?;
                write("include/zeval.h", glue::ZEVAL_H)?;
                write("main.c", &unit.source)?;
                write(
                    "glue.c",
                    &glue::c_glue(&unit.function_name, &unit.signature),
                )?;
                Ok(clang.path.clone())
            }
            Language::Rust => {
                let rustc = self
                    .rustc
                    .as_ref()
                    .ok_or(CompileFailure::Unavailable(Language::Rust))?;
                let mut source = unit.source.clone();
                source.push_str(&glue::rust_glue(&unit.function_name, &unit.signature));
                write("main.rs", &source)?;
                Ok(rustc.path.clone())
            }
        }
    }

    /// Diagnostics without host paths, capped at [`MAX_DIAGNOSTICS_BYTES`].
    fn clean_diagnostics(&self, bytes: &[u8], dir: &Path) -> String {
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        let dir = dir.display().to_string();
        text = text.replace(&format!("{dir}/"), "").replace(&dir, "");
        if let Some(rustc) = &self.rustc {
            text = text.replace(&rustc.sysroot.display().to_string(), "<sysroot>");
        }
        let text = text.trim();
        if text.len() <= MAX_DIAGNOSTICS_BYTES {
            return text.to_owned();
        }
        let mut cut = MAX_DIAGNOSTICS_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!(
            "{}\n... (diagnostics cut at {MAX_DIAGNOSTICS_BYTES} bytes)",
            &text[..cut]
        )
    }

    /// The limit that ended the compiler, if one did.
    fn limit_hit(
        &self,
        outcome: &confine::Outcome,
        text: &str,
        limits: &Limits,
    ) -> Option<CompileFailure> {
        let limit =
            |what: &'static str, detail: String| Some(CompileFailure::Limit { what, detail });
        if outcome.timed_out {
            return limit("wall time", format!("{} ms", limits.wall.as_millis()));
        }
        if outcome.temp_full {
            return limit(
                "temporary files",
                format!("{} MiB in all", limits.temp_bytes >> 20),
            );
        }
        let cpu = format!("{} s", limits.cpu.as_secs().max(1));
        // A compiler that reached RLIMIT_CPU got SIGXCPU, but LLVM catches it and may exit
        // with an unrelated error; the CPU time it used tells the truth.
        if !outcome.status.success() && outcome.cpu_time >= limits.cpu.max(Duration::from_secs(1)) {
            return limit("CPU time", cpu);
        }
        let memory = format!("{} MiB", limits.address_space >> 20);
        let output = format!("{} MiB", limits.output_bytes >> 20);
        match confine::signal_of(&outcome.status) {
            Some(libc::SIGXCPU) => return limit("CPU time", cpu),
            Some(libc::SIGXFSZ) => return limit("output size", output),
            // Not from the parent (that is `timed_out`): the CPU hard limit, or the kernel's
            // OOM killer.
            Some(libc::SIGKILL) => {
                return if outcome.elapsed >= limits.cpu {
                    limit("CPU time", cpu)
                } else {
                    limit("memory", memory)
                };
            }
            _ => {}
        }
        // A helper process (the linker) hit a limit and the driver reported it, or the
        // compiler caught an allocation failure. Only the tools' own message lines count
        // (they start with a letter: "error…", "clang: error…", "LLVM ERROR…"); the quoted
        // source lines of a diagnostic start with a space or a line number. Every pattern has
        // spaces, which no identifier has. But a message line may carry the user's words
        // (`#error`, `compile_error!`, a static assertion's text, built by concatenation where
        // no check of the source would see it): a CPU-time line counts only when the CPU time
        // used bears it out, since a limit of the call's time is answered as the load's, not
        // the code's (`ArtifactError::Unfinished`), and the ranking would not count it.
        let used_the_cpu = outcome.cpu_time >= limits.cpu.max(Duration::from_secs(1)).mul_f64(0.9);
        for line in text
            .lines()
            .filter(|line| line.starts_with(|c: char| c.is_ascii_alphabetic()))
        {
            let lower = line.to_ascii_lowercase();
            let has = |patterns: &[&str]| patterns.iter().any(|p| lower.contains(p));
            if used_the_cpu && has(&["(sigxcpu)", "cpu time limit exceeded"]) {
                return limit("CPU time", cpu);
            }
            if has(&["(sigxfsz)", "file size limit exceeded", "file too large"]) {
                return limit("output size", output);
            }
            if has(&[
                "memory allocation of ",
                "llvm error: out of memory",
                "cannot allocate memory",
                "more memory than available to compiler",
                "std::bad_alloc",
            ]) {
                return limit("memory", memory);
            }
        }
        None
    }
}

fn flags(language: Language) -> &'static [&'static str] {
    match language {
        Language::C => C_FLAGS,
        Language::Rust => RUST_FLAGS,
    }
}

/// The checks before compiling: size, names, and the language's source rules.
fn check_unit(unit: &Unit, max_source_bytes: usize) -> Result<(), String> {
    if unit.source.len() > max_source_bytes {
        return Err(format!(
            "the source has {} bytes, more than the {max_source_bytes} allowed",
            unit.source.len()
        ));
    }
    if unit.source.contains('\0') {
        return Err("the source contains a NUL character".to_owned());
    }
    if !is_identifier(&unit.function_name) {
        return Err(format!(
            "{:?} is not a usable function name",
            unit.function_name
        ));
    }
    for (key, _) in &unit.signature.parameters {
        if !is_identifier(key) {
            return Err(format!("{key:?} is not a usable argument name"));
        }
    }
    match unit.language {
        Language::C => check::check_c(&unit.source),
        Language::Rust => check::check_rust(&unit.source),
    }
}

/// How old a compilation's temp dir must be (its last change) before a new toolchain takes
/// it for one that a killed process left: a dir is made once a compilation has its slot,
/// and the compilation lasts at most its wall time (30 s by default).
pub const STALE_TEMP_DIR_AGE: Duration = Duration::from_secs(60 * 60);

/// Removes the `zeval-compile-*` dirs under `root` that this user owns and that nothing has
/// changed for `age`; returns how many. A compilation's dir is removed when it ends, but a
/// process killed mid-compilation (a crash, an OOM kill, a deploy) left its dir, up to
/// `max_temp_bytes`, for good. Symbolic links and others' dirs are left alone, and dirs are
/// removed without following links inside them.
pub fn sweep_stale_temp_dirs(root: &Path, age: Duration) -> usize {
    use std::os::unix::fs::MetadataExt;
    let Ok(listing) = std::fs::read_dir(root) else {
        return 0;
    };
    let uid = rustix::process::geteuid().as_raw();
    let mut swept = 0;
    for entry in listing.flatten() {
        if !entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(TEMP_DIR_PREFIX))
        {
            continue;
        }
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        let stale = metadata
            .modified()
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|elapsed| elapsed >= age);
        if metadata.is_dir()
            && metadata.uid() == uid
            && stale
            && std::fs::remove_dir_all(entry.path()).is_ok()
        {
            swept += 1;
        }
    }
    swept
}

fn read_artifact(path: &Path, max: u64) -> Result<Vec<u8>, CompileFailure> {
    let size = std::fs::metadata(path)
        .map_err(|e| CompileFailure::Internal(format!("the compiler wrote no artifact: {e}")))?
        .len();
    if size > max {
        return Err(CompileFailure::Limit {
            what: "output size",
            detail: format!("{} MiB", max >> 20),
        });
    }
    std::fs::read(path).map_err(|e| CompileFailure::Internal(format!("reading the artifact: {e}")))
}

fn find_clang(config: &CompilerConfig) -> Result<Clang, String> {
    let path = match &config.clang {
        Some(path) => path.clone(),
        None => ["clang-19", "clang"]
            .iter()
            .find_map(|name| search_path(name))
            .ok_or("neither clang-19 nor clang is on PATH")?,
    };
    for needed in [
        "/usr/include/wasm32-wasi/stdio.h",
        "/usr/lib/wasm32-wasi/libc.a",
    ] {
        if !Path::new(needed).exists() {
            return Err(format!("wasi-libc is not installed ({needed} is missing)"));
        }
    }
    let output = Command::new(&path)
        .arg("--version")
        .output()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let identity = text
        .lines()
        .next()
        .filter(|line| output.status.success() && !line.is_empty())
        .ok_or_else(|| format!("{} --version said nothing", path.display()))?
        .trim()
        .to_owned();
    Ok(Clang { path, identity })
}

fn search_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn find_rustc(config: &CompilerConfig) -> Result<Rustc, String> {
    let sysroot = match &config.rust_sysroot {
        Some(sysroot) => sysroot.clone(),
        None => {
            let mut command = Command::new("rustc");
            command.args(["--print", "sysroot"]);
            if let Some(dir) = &config.rust_toolchain_dir {
                command.current_dir(dir);
            }
            let output = command.output().map_err(|e| format!("rustc: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "rustc --print sysroot failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
            PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
        }
    };
    let path = sysroot.join("bin/rustc");
    if !path.is_file() {
        return Err(format!("{} does not exist", path.display()));
    }
    let target = sysroot.join("lib/rustlib/wasm32-wasip1");
    if !target.is_dir() {
        return Err(format!(
            "the wasm32-wasip1 standard library is not installed ({} is missing)",
            target.display()
        ));
    }
    let output = Command::new(&path)
        .arg("-vV")
        .output()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
    };
    let release = field("release:").ok_or("rustc -vV names no release")?;
    let commit = field("commit-hash:").unwrap_or("unknown");
    Ok(Rustc {
        path,
        sysroot,
        identity: format!("rustc {release} ({commit})"),
    })
}

/// A counting semaphore whose waits end at a deadline: the toolchain's compilation slots, and
/// (in `zeval_evaluator`) the call-time and save-time slots and the one compilation per key.
///
/// Slots go to waiters in the order they came (a ticket each): with the first free slot
/// going to whichever thread took the lock first, one editor's many saves, each waiting up
/// to the queue timeout, could take every slot that came free before another editor's one
/// save, which then timed out.
#[derive(Debug)]
pub struct Gate {
    state: Mutex<GateState>,
    freed: Condvar,
    capacity: usize,
}

#[derive(Debug, Default)]
struct GateState {
    running: usize,
    /// Tickets of the waiters, first come first.
    waiting: std::collections::VecDeque<u64>,
    next_ticket: u64,
}

/// A taken slot of a [`Gate`], given back when dropped.
pub struct Slot<'a>(&'a Gate);

impl Gate {
    /// A gate of `capacity` slots.
    pub fn new(capacity: usize) -> Gate {
        Gate {
            state: Mutex::new(GateState::default()),
            freed: Condvar::new(),
            capacity,
        }
    }

    fn acquire(&self, timeout: Duration) -> Option<Slot<'_>> {
        self.acquire_until(Some(Instant::now() + timeout))
    }

    /// A slot, waiting for one (after those who came first) until `deadline` (`None`: for as
    /// long as it takes); `None` when the deadline passes first.
    pub fn acquire_until(&self, deadline: Option<Instant>) -> Option<Slot<'_>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.running < self.capacity && state.waiting.is_empty() {
            state.running += 1;
            return Some(Slot(self));
        }
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push_back(ticket);
        loop {
            if state.running < self.capacity && state.waiting.front() == Some(&ticket) {
                state.waiting.pop_front();
                state.running += 1;
                // The next in line may take a slot still free.
                self.freed.notify_all();
                return Some(Slot(self));
            }
            state = match deadline {
                None => self.freed.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        state.waiting.retain(|waiting| *waiting != ticket);
                        // Who was behind this ticket may be first now.
                        self.freed.notify_all();
                        return None;
                    }
                    self.freed
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        state.running -= 1;
        // Every waiter looks: only the first in line takes the slot.
        self.0.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_bounds_and_times_out() {
        let gate = Gate::new(2);
        let a = gate.acquire(Duration::ZERO).unwrap();
        let _b = gate.acquire(Duration::ZERO).unwrap();
        let started = Instant::now();
        assert!(gate.acquire(Duration::from_millis(50)).is_none());
        assert!(started.elapsed() >= Duration::from_millis(50));
        drop(a);
        assert!(gate.acquire(Duration::ZERO).is_some());
    }

    #[test]
    fn a_wait_for_a_slot_ends_at_the_deadline_and_a_freed_slot_goes_to_a_waiter() {
        let gate = std::sync::Arc::new(Gate::new(1));
        let first = gate.acquire_until(None).expect("a free gate");
        let started = Instant::now();
        let wait = Duration::from_millis(50);
        assert!(gate.acquire_until(Some(started + wait)).is_none());
        assert!(started.elapsed() >= wait);
        // Once the first is done, the next caller gets its turn at once.
        let waiter = {
            let gate = std::sync::Arc::clone(&gate);
            std::thread::spawn(move || {
                gate.acquire_until(Some(Instant::now() + Duration::from_secs(10)))
                    .is_some()
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        drop(first);
        assert!(waiter.join().unwrap());
    }

    /// Slots go to waiters first come, first served: a thread that gives its slot back and
    /// asks again at once (an editor's next save) waits behind those already waiting. It
    /// took the slot again before the waiter woke.
    #[test]
    fn slots_go_to_waiters_in_the_order_they_came() {
        let gate = std::sync::Arc::new(Gate::new(1));
        let slot = gate.acquire_until(None).unwrap();
        let waiter = {
            let gate = std::sync::Arc::clone(&gate);
            std::thread::spawn(move || {
                let slot = gate.acquire_until(Some(Instant::now() + Duration::from_secs(10)));
                let served = Instant::now();
                std::thread::sleep(Duration::from_millis(20));
                drop(slot);
                served
            })
        };
        // In line before the slot is given back, however slowly its thread starts.
        while gate.state.lock().unwrap().waiting.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(slot);
        let slot = gate.acquire_until(None).unwrap();
        let asked_again = Instant::now();
        drop(slot);
        let served = waiter.join().unwrap();
        assert!(
            served <= asked_again,
            "the thread that asked again was served {:?} before the one waiting",
            served - asked_again
        );
        // A waiter that gave up leaves the line: the one behind it is served.
        let held = gate.acquire_until(None).unwrap();
        let quitter = {
            let gate = std::sync::Arc::clone(&gate);
            std::thread::spawn(move || {
                gate.acquire_until(Some(Instant::now() + Duration::from_millis(50)))
                    .is_some()
            })
        };
        std::thread::sleep(Duration::from_millis(10));
        let patient = {
            let gate = std::sync::Arc::clone(&gate);
            std::thread::spawn(move || {
                gate.acquire_until(Some(Instant::now() + Duration::from_secs(10)))
                    .is_some()
            })
        };
        assert!(!quitter.join().unwrap());
        drop(held);
        assert!(patient.join().unwrap());
    }

    #[test]
    fn transient_failures_are_the_ones_worth_retrying() {
        let limit = |what| CompileFailure::Limit {
            what,
            detail: String::new(),
        };
        assert!(limit("wall time").is_transient());
        assert!(limit("queue wait").is_transient());
        assert!(!limit("CPU time").is_transient());
        assert!(!limit("memory").is_transient());
        assert!(CompileFailure::Internal("x".to_owned()).is_transient());
        assert!(!CompileFailure::Refused("x".to_owned()).is_transient());
        assert!(!CompileFailure::Diagnostics("x".to_owned()).is_transient());
    }
}
