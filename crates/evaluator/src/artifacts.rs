//! Compiled implementations' artifacts: found in memory, then in a persistent store, else
//! compiled once (concurrent requests for the same key wait for one compilation).
//!
//! [`Artifacts`] is what both the write path (an implementation is saved: compile now) and
//! the call path (an artifact is needed: it is almost always there already) go through, so
//! the same key always means the same bytes and identical code is compiled once.

use std::collections::{HashMap, HashSet};
use std::fs::{DirBuilder, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zeval_compiler::{ArtifactKey, CALLS_CPU_TIME, CompileFailure, Gate, Toolchain, Unit};

/// Compilations a function call may run at once, across all callers: calls are anonymous,
/// so they get one of the toolchain's slots (`CompilerConfig::max_concurrent`, 2 by
/// default) and never the others, which saving an implementation (which needs a token)
/// uses. Saves in turn take every slot but these ([`Artifacts::saves_at_once`]): two saves
/// of code that compiles for the whole 30 s held both slots, again and again, and every
/// call that had to compile waited to its deadline.
pub const MAX_CALL_TIME_COMPILATIONS: usize = 1;

/// Bytes of artifacts kept in memory (least recently used dropped first): 256 MiB. A C
/// artifact is tens of KiB, a Rust one a few hundred.
pub const MEMORY_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// What compiling a unit gave, as stored.
#[derive(Debug, Clone)]
pub enum ArtifactRecord {
    /// The module, and the compiler that made it.
    Compiled { wasm: Arc<[u8]>, compiler: String },
    /// The compiler's (or the source check's) refusal, shown to callers as it is.
    Failed { message: String },
}

impl ArtifactRecord {
    fn bytes(&self) -> usize {
        match self {
            ArtifactRecord::Compiled { wasm, compiler } => wasm.len() + compiler.len(),
            ArtifactRecord::Failed { message } => message.len(),
        }
    }
}

/// Where artifacts persist (the server's database, a cache directory). Implementations log
/// their own failures: a store that cannot be read is a miss, one that cannot be written
/// only costs a compilation later.
pub trait ArtifactStore: Send + Sync {
    /// The record stored under `key`.
    fn get(&self, key: &ArtifactKey) -> Option<ArtifactRecord>;
    /// [`Self::get`] for a call that must be answered by `deadline`: a store that waits (for
    /// a connection, say) waits no later. By default [`Self::get`].
    fn get_until(&self, key: &ArtifactKey, deadline: Instant) -> Option<ArtifactRecord> {
        let _ = deadline;
        self.get(key)
    }
    /// Stores `record` under `key` (for a `language`), keeping any record already there.
    fn put(&self, key: &ArtifactKey, language: &str, record: &ArtifactRecord);
    /// What the record under `key` says, without its module when the store can leave it
    /// unread ([`Artifacts::describe`]). By default from [`Self::get`].
    fn describe(&self, key: &ArtifactKey) -> Option<ArtifactDescription> {
        self.get(key).map(|record| ArtifactDescription::of(&record))
    }
}

/// An [`ArtifactRecord`] without its module: what a report of it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactDescription {
    /// Compiled, by `compiler`, to a module of `bytes`.
    Compiled { compiler: String, bytes: u64 },
    /// The compiler's (or the source check's) refusal.
    Failed { message: String },
}

impl ArtifactDescription {
    /// The description of `record`.
    pub fn of(record: &ArtifactRecord) -> Self {
        match record {
            ArtifactRecord::Compiled { wasm, compiler } => Self::Compiled {
                compiler: compiler.clone(),
                bytes: wasm.len() as u64,
            },
            ArtifactRecord::Failed { message } => Self::Failed {
                message: message.clone(),
            },
        }
    }
}

/// A compiled unit, ready to run.
#[derive(Debug, Clone)]
pub struct Ready {
    pub key: ArtifactKey,
    pub wasm: Arc<[u8]>,
    pub compiler: String,
}

/// Why a unit has no artifact.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ArtifactError {
    /// No compiler for the language on this machine.
    #[error("no compiler for {0} is installed on this server")]
    NoCompiler(&'static str),
    /// The compiler (or the source check) refused the code; stored, so it is not retried.
    #[error("{0}")]
    Failed(String),
    /// No compiler could start within the time given, because other compilations held them
    /// (the same code's, the one call-time slot, the toolchain's queue). Never stored: it
    /// says nothing about the code, and a call answers it as a Z558 that names the load.
    #[error("Compilation did not start: {0}")]
    Busy(String),
    /// A compilation at call time that the call's deadline cut (the compiler's wall or CPU
    /// time, lowered to what the call had left, ran out): never stored, as it says nothing
    /// about the code that a compilation with the compiler's own limits (saving the
    /// implementation) would not say better, and a call answers it as a Z558 that names it.
    /// Reported as a failure of the code, a call queued behind other calls' compilations
    /// (one call-time compiler in all) was held against the implementation.
    #[error("Compilation did not finish in the call's time: {0}")]
    Unfinished(String),
}

/// The toolchain, the memory cache, the persistent store and the compilations in flight.
pub struct Artifacts {
    toolchain: Toolchain,
    store: Option<Arc<dyn ArtifactStore>>,
    memory: Mutex<MemoryCache>,
    /// One gate per key being compiled, so concurrent callers wait for one compilation.
    building: Mutex<HashMap<ArtifactKey, Arc<Gate>>>,
    /// Call-time compilations running ([`MAX_CALL_TIME_COMPILATIONS`]).
    call_time: Gate,
    /// Compilations of saves running ([`Artifacts::saves_at_once`]).
    save_time: Gate,
    /// Whether what a call compiles is stored too ([`Artifacts::keeping_call_time_compilations`]).
    keep_call_time: bool,
    /// Whether what a save compiles is stored here ([`Artifacts::leaving_saves_to_the_caller`]).
    store_saves: bool,
    /// Authors with a save waiting for a compiler or compiling ([`Artifacts::artifact_saved_by`]).
    saving: Mutex<HashSet<String>>,
    /// Clients with a call's compilation waiting for the call-time compiler or compiling
    /// ([`Artifacts::artifact_for_call`]): one each. The slot goes to waiters first come,
    /// first served, so without this one client's calls of distinct inline code that compiles
    /// until its deadline (8 at once, its work slots) queued ahead of every other client,
    /// again and again, and no other client's inline code compiled at all.
    calling: Mutex<HashSet<String>>,
}

impl Artifacts {
    /// Artifacts compiled by `toolchain`, persisted in `store` when there is one.
    pub fn new(toolchain: Toolchain, store: Option<Arc<dyn ArtifactStore>>) -> Self {
        let saves = Self::saves_at_once(toolchain.config().max_concurrent);
        Self {
            toolchain,
            store,
            memory: Mutex::new(MemoryCache::default()),
            building: Mutex::new(HashMap::new()),
            call_time: Gate::new(MAX_CALL_TIME_COMPILATIONS),
            save_time: Gate::new(saves),
            keep_call_time: false,
            store_saves: true,
            saving: Mutex::new(HashSet::new()),
            calling: Mutex::new(HashSet::new()),
        }
    }

    /// Compilations of saves that may run at once with `max_concurrent` compilations in
    /// all: every slot but the calls' ([`MAX_CALL_TIME_COMPILATIONS`]), and at least one.
    pub fn saves_at_once(max_concurrent: usize) -> usize {
        max_concurrent
            .saturating_sub(MAX_CALL_TIME_COMPILATIONS)
            .max(1)
    }

    /// Also store what calls compile ([`Artifacts::artifact_within`] with a budget), not
    /// only what saving an implementation compiles ([`Artifacts::artifact`]). Off by
    /// default: anyone who may call may send inline code, and every distinct source would
    /// be kept forever (up to 32 MiB each, a compilation a second or so): a disk filled by
    /// anonymous calls. Without it, a call's artifact is kept in memory only
    /// ([`MEMORY_CACHE_BYTES`]). For a command that runs alone, such as `zeval call`, whose
    /// next run would otherwise compile again.
    pub fn keeping_call_time_compilations(self) -> Self {
        Self {
            keep_call_time: true,
            ..self
        }
    }

    /// Do not store what saves compile ([`Artifacts::artifact`]): the caller stores it with
    /// the revision it belongs to, from [`Artifacts::lookup`], in one step. A server's object
    /// store keeps an artifact only while a revision names it; one stored here first and
    /// never named (the recording failed, or the author was over their budget) stayed.
    pub fn leaving_saves_to_the_caller(self) -> Self {
        Self {
            store_saves: false,
            ..self
        }
    }

    /// The compilers.
    pub fn toolchain(&self) -> &Toolchain {
        &self.toolchain
    }

    /// The artifact of `unit`: from memory, the store, or compiled now (and stored, unless
    /// [`Artifacts::leaving_saves_to_the_caller`]). Waits
    /// for a compiler (another compilation of the same code, then a slot) at most the
    /// toolchain's queue timeout in all (`CompilerConfig::queue_timeout`, 60 s), then
    /// compiles within the compiler's own limits (30 s of wall time by default).
    pub fn artifact(&self, unit: &Unit) -> Result<Ready, ArtifactError> {
        self.artifact_within(unit, None)
    }

    /// [`Artifacts::artifact`] for a save by `author`, who has at most one save waiting for
    /// a compiler or compiling at a time: another of theirs meanwhile is
    /// [`ArtifactError::Busy`] at once (an artifact already compiled is found all the same).
    /// Saves take their compilers first come, first served, and each author is in line once:
    /// one editor's many saves of code that compiles for its whole wall time took the save
    /// slot turn after turn, and another editor's one save waited out its queue timeout.
    pub fn artifact_saved_by(&self, unit: &Unit, author: &str) -> Result<Ready, ArtifactError> {
        self.find_or_compile(unit, None, Some(author))
    }

    /// [`Artifacts::artifact`], compiling (when it must) within `budget`: a call that needs
    /// a compilation gives it only the time the call has left (see
    /// `zeval_compiler::Toolchain::compile_within`), and every wait on the way (for another
    /// call compiling the same code, for a call-time slot, for the toolchain's queue) comes
    /// out of that same budget, so the call answers by its deadline. A compilation stopped
    /// by the budget rather than by the compiler's own limits is not remembered: it says
    /// nothing about the code.
    pub fn artifact_within(
        &self,
        unit: &Unit,
        budget: Option<Duration>,
    ) -> Result<Ready, ArtifactError> {
        self.find_or_compile(unit, budget, None)
    }

    /// [`Artifacts::artifact_within`] `budget` for a call of `client` (the server's
    /// per-client key; `None`: not counted), who has at most one compilation waiting for the
    /// call-time compiler or compiling: another of theirs that must compile meanwhile is
    /// [`ArtifactError::Busy`] at once (an artifact already compiled is found all the same,
    /// and a call of code being compiled already waits for that compilation, taking no place
    /// until it must compile the code itself). So another client's call waits behind at most
    /// one compilation of each client.
    pub fn artifact_for_call(
        &self,
        unit: &Unit,
        budget: Duration,
        client: Option<&str>,
    ) -> Result<Ready, ArtifactError> {
        self.find_or_compile(unit, Some(budget), client)
    }

    fn find_or_compile(
        &self,
        unit: &Unit,
        budget: Option<Duration>,
        in_line_for: Option<&str>,
    ) -> Result<Ready, ArtifactError> {
        let started = Instant::now();
        let deadline = budget.map(|budget| started + budget);
        // A save has no call deadline, but its waits (for another compilation of the same
        // code, then for a compiler slot) share the toolchain's queue timeout: without it
        // each save behind a compilation that failed for now (and so was not remembered)
        // would wait for that one and then compile again itself, one after another.
        let queue_timeout = self.toolchain.config().queue_timeout;
        let waits_until = deadline.unwrap_or(started + queue_timeout);
        let key = self
            .toolchain
            .key(unit)
            .ok_or(ArtifactError::NoCompiler(unit.language.label()))?;
        // Memory holds only what this process compiled, or found and checked below.
        let remembered = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key);
        if let Some(record) = remembered {
            return ready(key, record);
        }
        // The source check, before an artifact from the store is used: the key names the
        // source, not the check that let it compile, and a record in the store (or a
        // directory, written by an older zeval or another node) may have been compiled under
        // an older check that let through what this one refuses (an `#include` of a host
        // file spelled past it). Remembered, so that it runs once per key and process (it is
        // linear in the source: about 12 ms for 256 KiB of C), and so that the save's
        // recording and reports find the refusal, not the old artifact.
        if let Err(failure) = self.toolchain.check(unit) {
            let record = ArtifactRecord::Failed {
                message: failure_message(&failure),
            };
            self.remember(key, record.clone());
            return ready(key, record);
        }
        if let Some(record) = self.lookup_until(&key, waits_until) {
            return ready(key, record);
        }
        // The same code being compiled already (the author's own save from another tab, a
        // double submit): wait for it on its gate below rather than be turned away.
        let compiling_already = || {
            self.building
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&key)
        };
        // A save's author is in line once (a call's client, below, once it must compile).
        let authors_turn = match in_line_for {
            Some(_) if deadline.is_some() || compiling_already() => None,
            Some(author) => match Turn::take(&self.saving, author) {
                Some(turn) => Some(turn),
                None => return Err(in_line_already(false)),
            },
            None => None,
        };
        // A save takes its compiler slot before the code's gate: waiting for the slot behind
        // the gate held every call of that code behind it, with a call slot free.
        let save_time_slot = match deadline {
            Some(_) => None,
            None => match self.save_time.acquire_until(Some(waits_until)) {
                Some(slot) => Some(slot),
                None => {
                    return Err(ArtifactError::Busy(format!(
                        "the compilers stayed busy with other saves for the whole queue wait ({} ms); try again",
                        queue_timeout.as_millis()
                    )));
                }
            },
        };
        let lock = {
            let mut building = self.building.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(
                building
                    .entry(key)
                    .or_insert_with(|| Arc::new(Gate::new(1))),
            )
        };
        let result = match lock.acquire_until(Some(waits_until)) {
            Some(_compiling) => match self.lookup_until(&key, waits_until) {
                Some(record) => ready(key, record),
                None => {
                    // A call's client is in line once, taken only here, where this call is
                    // to compile: a call that waited on the gate for the same code, whose
                    // compilation ended unrecorded (cut by its deadline), compiles it itself,
                    // and took no place while it waited. So does a save that waited for its
                    // author's own compilation of the same code, ended for now (its wall
                    // time), or the author had a place and another save in line at once.
                    let in_line = match (deadline, in_line_for) {
                        (Some(_), Some(client)) => Some((&self.calling, client)),
                        (None, Some(author)) if authors_turn.is_none() => {
                            Some((&self.saving, author))
                        }
                        _ => None,
                    };
                    let turn = in_line.map(|(holders, who)| Turn::take(holders, who));
                    if matches!(turn, Some(None)) {
                        Err(in_line_already(deadline.is_some()))
                    } else {
                        self.compile(key, unit, deadline, waits_until)
                    }
                }
            },
            None if deadline.is_some() => Err(ArtifactError::Busy(
                "another call was compiling the same code until this call's deadline; try again"
                    .to_owned(),
            )),
            None => Err(ArtifactError::Busy(format!(
                "another compilation of the same code ran for the whole queue wait ({} ms); try again",
                queue_timeout.as_millis()
            ))),
        };
        let mut building = self.building.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(&lock) <= 2 {
            building.remove(&key);
        }
        drop(building);
        // The author's place before the save slot: a save of the same code waiting for the
        // slot takes the place next, and found it still taken when it came second.
        drop(authors_turn);
        drop(save_time_slot);
        result
    }

    /// What the record of `key` says, from memory, else from the store, which reads no
    /// module and keeps nothing in memory: a report is anyone's to ask for, and reading it
    /// through [`Self::lookup`] read (up to 32 MiB) and kept each artifact asked about, so a
    /// client asking about many evicted the artifacts calls use.
    pub fn describe(&self, key: &ArtifactKey) -> Option<ArtifactDescription> {
        let remembered = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .peek(key)
            .map(ArtifactDescription::of);
        remembered.or_else(|| self.store.as_deref()?.describe(key))
    }

    /// The record of `key` from memory, else from the store (then kept in memory).
    pub fn lookup(&self, key: &ArtifactKey) -> Option<ArtifactRecord> {
        self.lookup_from(key, |store| store.get(key))
    }

    /// [`Self::lookup`], the store's waits ending by `deadline` (a call's, or a save's queue
    /// wait): a store read that waited for a connection, up to the store's own bound (5 s,
    /// 10 s), held the call past its deadline, and held everyone else calling the same code
    /// behind the key's gate too.
    fn lookup_until(&self, key: &ArtifactKey, deadline: Instant) -> Option<ArtifactRecord> {
        self.lookup_from(key, |store| store.get_until(key, deadline))
    }

    fn lookup_from(
        &self,
        key: &ArtifactKey,
        read: impl FnOnce(&dyn ArtifactStore) -> Option<ArtifactRecord>,
    ) -> Option<ArtifactRecord> {
        if let Some(record) = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
        {
            return Some(record);
        }
        let record = read(self.store.as_deref()?)?;
        self.remember(*key, record.clone());
        Some(record)
    }

    /// Compiles `unit` now, within the call's `deadline` if there is one, waiting for a
    /// compiler slot at most until `waits_until`.
    fn compile(
        &self,
        key: ArtifactKey,
        unit: &Unit,
        deadline: Option<Instant>,
        waits_until: Instant,
    ) -> Result<Ready, ArtifactError> {
        let _call_time_slot = match deadline {
            Some(deadline) => match self.call_time.acquire_until(Some(deadline)) {
                Some(slot) => Some(slot),
                None => {
                    return Err(ArtifactError::Busy(
                        "other calls were compiling code until this call's deadline; try again, or save the implementation so that it is compiled ahead of calls".to_owned(),
                    ));
                }
            },
            None => None,
        };
        // What the waits above left of the call's time.
        let budget = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        if budget.is_some_and(|budget| budget.is_zero()) {
            return Err(ArtifactError::Busy(
                "the call's deadline passed before a compiler could start; try again, or save the implementation so that it is compiled ahead of calls".to_owned(),
            ));
        }
        let queue_wait = waits_until.saturating_duration_since(Instant::now());
        let record = match self.toolchain.compile_queued(unit, budget, queue_wait) {
            Ok(compiled) => {
                tracing::info!(
                    language = unit.language.code(),
                    key = %key,
                    bytes = compiled.wasm.len(),
                    elapsed = ?compiled.duration,
                    "compiled an implementation"
                );
                ArtifactRecord::Compiled {
                    wasm: compiled.wasm.into(),
                    compiler: compiled.compiler,
                }
            }
            Err(failure)
                if failure.is_transient()
                    || (budget.is_some() && matches!(failure, CompileFailure::Limit { .. })) =>
            {
                // Not remembered: the next attempt may succeed.
                tracing::warn!(key = %key, %failure, "a compilation failed for now");
                return Err(match &failure {
                    CompileFailure::Limit {
                        what: "queue wait",
                        detail,
                    } => ArtifactError::Busy(format!("the compilers stayed busy: {detail}")),
                    CompileFailure::Limit {
                        what: what @ ("wall time" | "CPU time" | CALLS_CPU_TIME),
                        detail,
                    } if deadline.is_some_and(came) || *what == CALLS_CPU_TIME => {
                        ArtifactError::Unfinished(format!(
                            "its {what} ran out at {detail}; saving the implementation compiles \
                         it ahead of calls, within the compiler's own limits"
                        ))
                    }
                    _ => ArtifactError::Failed(failure_message(&failure)),
                });
            }
            Err(failure) => ArtifactRecord::Failed {
                message: failure_message(&failure),
            },
        };
        let stored_here = match deadline {
            None => self.store_saves,
            Some(_) => self.keep_call_time,
        };
        if let Some(store) = &self.store
            && stored_here
        {
            store.put(&key, unit.language.code(), &record);
        }
        self.remember(key, record.clone());
        ready(key, record)
    }

    fn remember(&self, key: ArtifactKey, record: ArtifactRecord) {
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, record);
    }
}

/// An author's one save, or a client's one call, in line for a compiler, given back when
/// dropped.
struct Turn<'a> {
    in_line: &'a Mutex<HashSet<String>>,
    who: String,
}

impl<'a> Turn<'a> {
    /// `who`'s turn, unless they hold one already.
    fn take(in_line: &'a Mutex<HashSet<String>>, who: &str) -> Option<Self> {
        let mut holders = in_line.lock().unwrap_or_else(|p| p.into_inner());
        holders.insert(who.to_owned()).then(|| Turn {
            in_line,
            who: who.to_owned(),
        })
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.in_line
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.who);
    }
}

/// Why a call (`call`), or a save, was turned away: its client, or its author, is in line
/// for a compiler already.
fn in_line_already(call: bool) -> ArtifactError {
    ArtifactError::Busy(if call {
        "another call of this client's is waiting for the call-time compiler or compiling; try again, or save the implementation so that it is compiled ahead of calls".to_owned()
    } else {
        "another save of this author's is compiling; calls compile this one, and so does saving it again".to_owned()
    })
}

fn ready(key: ArtifactKey, record: ArtifactRecord) -> Result<Ready, ArtifactError> {
    match record {
        ArtifactRecord::Compiled { wasm, compiler } => Ok(Ready {
            key,
            wasm,
            compiler,
        }),
        ArtifactRecord::Failed { message } => Err(ArtifactError::Failed(message)),
    }
}

/// Whether a compilation that ended now was stopped by `deadline` (the call's), not by the
/// compiler's own wall or CPU time: the limits a call gets are lowered to what it has left
/// after its waits, so a limit that came with the deadline was the deadline's. A CPU limit
/// lowered to the time left may end before it (a compiler's threads, rustc's among them,
/// spend CPU time faster than the clock): the toolchain names it
/// [`zeval_compiler::CALLS_CPU_TIME`], and `compile` counts it as the call's whatever the
/// clock says (until 2026-12-07 that was a failure of the code).
fn came(deadline: Instant) -> bool {
    deadline.saturating_duration_since(Instant::now()) < DEADLINE_MARGIN
}

/// How near a call's deadline a compilation's limit must end to count as the deadline's.
const DEADLINE_MARGIN: Duration = Duration::from_millis(100);

/// The text callers see for a failed compilation.
fn failure_message(failure: &CompileFailure) -> String {
    format!("Compilation failed: {failure}")
}

/// Records by key, least recently used dropped first, bounded by [`MEMORY_CACHE_BYTES`]
/// counting [`MEMORY_ENTRY_OVERHEAD`] per entry. A lookup and an insertion cost O(log n):
/// small records (a refusal's message) could be a million entries, which a list scanned on
/// every call of compiled code, under the lock, made a cost every caller paid.
#[derive(Default)]
struct MemoryCache {
    entries: HashMap<ArtifactKey, (ArtifactRecord, u64)>,
    /// Last-use tick → key, least recently used first.
    by_use: std::collections::BTreeMap<u64, ArtifactKey>,
    tick: u64,
    bytes: usize,
}

/// What an entry costs beside its record's bytes: the key, twice, and the maps' slots.
const MEMORY_ENTRY_OVERHEAD: usize = 128;

impl MemoryCache {
    /// The record of `key`, leaving its place in the order of use as it is.
    fn peek(&self, key: &ArtifactKey) -> Option<&ArtifactRecord> {
        self.entries.get(key).map(|(record, _)| record)
    }

    fn get(&mut self, key: &ArtifactKey) -> Option<ArtifactRecord> {
        self.tick += 1;
        let tick = self.tick;
        let (record, used) = self.entries.get_mut(key)?;
        self.by_use.remove(used);
        *used = tick;
        self.by_use.insert(tick, *key);
        Some(record.clone())
    }

    fn insert(&mut self, key: ArtifactKey, record: ArtifactRecord) {
        if let Some((old, used)) = self.entries.remove(&key) {
            self.by_use.remove(&used);
            self.bytes -= old.bytes() + MEMORY_ENTRY_OVERHEAD;
        }
        self.tick += 1;
        self.bytes += record.bytes() + MEMORY_ENTRY_OVERHEAD;
        self.entries.insert(key, (record, self.tick));
        self.by_use.insert(self.tick, key);
        while self.bytes > MEMORY_CACHE_BYTES && self.entries.len() > 1 {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            if let Some((old, _)) = self.entries.remove(&oldest) {
                self.bytes -= old.bytes() + MEMORY_ENTRY_OVERHEAD;
            }
        }
    }
}

/// Artifacts in a directory (`zeval call --objects DIR`): `<key>.wasm` or `<key>.error`,
/// beside `<key>.compiler`.
///
/// The directory is a cache that other local users must not be able to poison: it is used
/// only when it and each file are owned by this process's effective uid and writable by
/// nobody else (files are opened without following symlinks). A module from it runs in the
/// sandbox like any user code, and its precompiled native form is the sandbox's own verified
/// cache, so a file that passed these checks can at worst be wrong code for its key, which
/// only its owner could have written. Anything else is ignored (and compiled again).
pub struct DirArtifactStore {
    dir: PathBuf,
}

/// Largest file read from a [`DirArtifactStore`] (the store's own artifact limit).
const MAX_DIR_FILE_BYTES: u64 = 64 * 1024 * 1024;

impl DirArtifactStore {
    /// A store in `dir`, created (mode 0700) when missing.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        check_private(&dir)?;
        Ok(Self { dir })
    }

    fn path(&self, key: &ArtifactKey, extension: &str) -> PathBuf {
        self.dir.join(format!("{key}.{extension}"))
    }
}

/// Owned by the effective uid, writable by nobody else.
fn check_private(path: &Path) -> std::io::Result<()> {
    let metadata = std::fs::symlink_metadata(path)?;
    let euid = rustix::process::geteuid().as_raw();
    if metadata.uid() != euid || metadata.mode() & 0o022 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is not owned by uid {euid} or is writable by others",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// The file at `path`, opened when this user owns it, no one else may write it, and it is a
/// plain file (not a link, a FIFO or a device); and its size. Opened without blocking: a
/// FIFO in its place held the opening thread until someone wrote to it; now it is refused as
/// not a regular file.
fn open_private(path: &Path) -> Option<(std::fs::File, u64)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let metadata = file.metadata().ok()?;
    let euid = rustix::process::geteuid().as_raw();
    if metadata.uid() != euid || metadata.mode() & 0o022 != 0 || !metadata.is_file() {
        tracing::warn!(path = %path.display(), "ignoring an artifact file others could have written");
        return None;
    }
    Some((file, metadata.len()))
}

/// The bytes of the regular file at `path` ([`open_private`]), at most [`MAX_DIR_FILE_BYTES`].
fn read_private(path: &Path) -> Option<Vec<u8>> {
    let (file, _) = open_private(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_DIR_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    // Cut short, it would be a module that never loads, kept as if it were the artifact: a
    // miss instead, so it is compiled (and written) again.
    if bytes.len() as u64 > MAX_DIR_FILE_BYTES {
        tracing::warn!(path = %path.display(), "ignoring an artifact file over the size limit");
        return None;
    }
    Some(bytes)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temporary)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        // Left behind, it would take the name the next write of this process needs
        // (`create_new`), and the disk space.
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

impl ArtifactStore for DirArtifactStore {
    fn get(&self, key: &ArtifactKey) -> Option<ArtifactRecord> {
        if check_private(&self.dir).is_err() {
            return None;
        }
        let compiler = String::from_utf8(read_private(&self.path(key, "compiler"))?).ok()?;
        if let Some(wasm) = read_private(&self.path(key, "wasm")) {
            return Some(ArtifactRecord::Compiled {
                wasm: wasm.into(),
                compiler,
            });
        }
        let message = String::from_utf8(read_private(&self.path(key, "error"))?).ok()?;
        Some(ArtifactRecord::Failed { message })
    }

    fn describe(&self, key: &ArtifactKey) -> Option<ArtifactDescription> {
        if check_private(&self.dir).is_err() {
            return None;
        }
        let compiler = String::from_utf8(read_private(&self.path(key, "compiler"))?).ok()?;
        if let Some((_, bytes)) = open_private(&self.path(key, "wasm")) {
            // As `get` would: a file over the limit is no artifact.
            return (bytes <= MAX_DIR_FILE_BYTES)
                .then_some(ArtifactDescription::Compiled { compiler, bytes });
        }
        let message = String::from_utf8(read_private(&self.path(key, "error"))?).ok()?;
        Some(ArtifactDescription::Failed { message })
    }

    fn put(&self, key: &ArtifactKey, _language: &str, record: &ArtifactRecord) {
        let written = match record {
            ArtifactRecord::Compiled { wasm, compiler } => {
                write_private(&self.path(key, "wasm"), wasm)
                    .and_then(|()| write_private(&self.path(key, "compiler"), compiler.as_bytes()))
            }
            ArtifactRecord::Failed { message } => {
                write_private(&self.path(key, "error"), message.as_bytes())
                    .and_then(|()| write_private(&self.path(key, "compiler"), b""))
            }
        };
        if let Err(error) = written {
            tracing::warn!(dir = %self.dir.display(), %error, "could not keep an artifact");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> ArtifactKey {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&n.to_le_bytes());
        ArtifactKey(bytes)
    }

    fn failed(message: &str) -> ArtifactRecord {
        ArtifactRecord::Failed {
            message: message.to_owned(),
        }
    }

    #[test]
    fn the_least_recently_used_record_goes_first_and_the_bytes_stay_bounded() {
        let mut cache = MemoryCache::default();
        let big = "x".repeat(MEMORY_CACHE_BYTES / 3);
        cache.insert(key(1), failed(&big));
        cache.insert(key(2), failed(&big));
        assert!(cache.get(&key(1)).is_some());
        cache.insert(key(3), failed(&big));
        assert!(
            cache.get(&key(2)).is_none(),
            "the least recently used stayed"
        );
        assert!(cache.get(&key(1)).is_some() && cache.get(&key(3)).is_some());
        assert!(cache.bytes <= MEMORY_CACHE_BYTES);
        assert_eq!(cache.entries.len(), cache.by_use.len());
    }

    /// A report reads a directory's artifact's size, not its module.
    #[test]
    fn a_directorys_artifact_is_described_from_its_files_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirArtifactStore::open(dir.path().join("artifacts")).unwrap();
        let record = ArtifactRecord::Compiled {
            wasm: vec![1; 5_000].into(),
            compiler: "clang".to_owned(),
        };
        store.put(&key(1), "c", &record);
        store.put(
            &key(2),
            "c",
            &ArtifactRecord::Failed {
                message: "no".to_owned(),
            },
        );
        assert_eq!(
            store.describe(&key(1)),
            Some(ArtifactDescription::of(&record))
        );
        assert_eq!(
            store.describe(&key(2)),
            Some(ArtifactDescription::Failed {
                message: "no".to_owned()
            })
        );
        assert_eq!(store.describe(&key(3)), None);
    }

    /// A file over the size limit is a miss, not the limit's first bytes taken for the
    /// artifact (which never loads, and was kept as if it were).
    #[test]
    fn an_artifact_file_over_the_limit_is_not_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("artifact.wasm");
        let file = std::fs::File::create(&path).unwrap();
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .unwrap();
        file.set_len(MAX_DIR_FILE_BYTES + 1).unwrap();
        assert!(read_private(&path).is_none());
        file.set_len(8).unwrap();
        assert_eq!(read_private(&path).map(|bytes| bytes.len()), Some(8));
    }

    #[test]
    fn a_fifo_in_place_of_an_artifact_file_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("artifact.wasm");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || sender.send(read_private(&path)));
        let read = receiver
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("opening the FIFO blocked");
        assert!(read.is_none());
    }

    /// Small records (a refused source's message) can be a million entries: each lookup
    /// and insertion must not walk them all, as a list did under the lock every compiled
    /// call takes.
    #[test]
    fn many_small_records_cost_no_walk_per_lookup() {
        let mut cache = MemoryCache::default();
        let started = std::time::Instant::now();
        for n in 0..200_000 {
            cache.insert(key(n), failed("Compilation failed: refused"));
            assert!(cache.get(&key(n / 2)).is_some());
        }
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
        assert_eq!(cache.entries.len(), 200_000);
    }
}
