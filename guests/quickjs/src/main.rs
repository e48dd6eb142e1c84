//! QuickJS as a WASI command for the zeval sandbox.
//!
//! Two entry points share one interpreter:
//! - `wizer.initialize` (run once at build time by `zeval-wizer`) creates the runtime and
//!   context and evaluates `runner.js`, so the snapshot starts with everything booted;
//! - `_start` (`main`) reads the request from stdin, reseeds what the snapshot froze, calls
//!   `globalThis.__zeval_run(request)` and writes the returned string to stdout.
//!
//! Without a snapshot (`quickjs.raw.wasm`) `main` does the initialisation itself.
//! Exit codes: 0 success; 1 the runner threw or returned a non-string; 2 stdin was not UTF-8.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};

use rquickjs::{CatchResultExt, Context, Function, Object, Runtime};

/// The runner script, whose contract is documented at its top.
const RUNNER_JS: &str = include_str!("../runner.js");

/// QuickJS's own recursion limit, checked against the C shadow stack (4 MiB, see
/// `.cargo/config.toml`); it guards the shadow stack against JS frames with many locals.
/// Ordinary deep recursion exhausts the host's wasm stack first (a QuickJS call frame
/// uses far more of it than of the shadow stack; measured: 256 KiB here still lets the
/// 8 MiB wasm stack run out), which the host reports as a stack-limit error.
const MAX_JS_STACK: usize = 3 * 1024 * 1024;

thread_local! {
    static INTERPRETER: RefCell<Option<(Runtime, Context)>> = const { RefCell::new(None) };
    /// xorshift64* state behind `Math.random`, reseeded from WASI random at every call.
    static RANDOM_STATE: Cell<u64> = const { Cell::new(1) };
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    /// WASI preview 1 `random_get(buf, len) -> errno`.
    #[link_name = "random_get"]
    fn wasi_random_get(buf: *mut u8, len: usize) -> i32;
}

// The sandbox's host-call imports (crates/sandbox/src/host_call.rs).
#[link(wasm_import_module = "zeval")]
unsafe extern "C" {
    // Hands the host a request; the answer's length, -1 when the call has no host to call,
    // -2 when the request is over the input limit.
    #[link_name = "call"]
    fn zeval_call(request: *const u8, request_len: usize) -> i32;
    // Copies the last answer into `buffer` (at most `buffer_len` bytes); how many it copied.
    #[link_name = "answer"]
    fn zeval_answer(buffer: *mut u8, buffer_len: usize) -> i32;
}

/// `__zeval_host_call(request)`, runner.js's way to the host (`W.Call`): the answer text,
/// `null` when this call has no host to call.
fn host_call(request: String) -> rquickjs::Result<Option<String>> {
    // SAFETY: the request is valid for reads of its length.
    let answer_len = unsafe { zeval_call(request.as_ptr(), request.len()) };
    if answer_len == -1 {
        return Ok(None);
    }
    let Ok(answer_len) = usize::try_from(answer_len) else {
        return Err(rquickjs::Error::new_from_js_message(
            "string",
            "W.Call",
            "the request is over the input limit",
        ));
    };
    let mut answer = vec![0u8; answer_len];
    // SAFETY: the buffer is valid for writes of its length.
    let copied = unsafe { zeval_answer(answer.as_mut_ptr(), answer.len()) };
    answer.truncate(usize::try_from(copied).unwrap_or(0));
    String::from_utf8(answer)
        .map(Some)
        .map_err(|_| rquickjs::Error::new_from_js_message("bytes", "string", "the answer is not UTF-8"))
}

fn wasi_random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: the buffer is valid for writes of its length.
    let errno = unsafe { wasi_random_get(bytes.as_mut_ptr(), bytes.len()) };
    if errno != 0 {
        // No randomness available: a non-repeating fallback is better than a fixed seed.
        return 0x9E37_79B9_7F4A_7C15;
    }
    u64::from_le_bytes(bytes)
}

fn next_random() -> f64 {
    RANDOM_STATE.with(|state| {
        // The same generator QuickJS uses (xorshift64*), but with our per-call state.
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        // 52 random mantissa bits give a double in [1, 2); shift to [0, 1).
        f64::from_bits((0x3ff << 52) | (v >> 12)) - 1.0
    })
}

fn create_interpreter() -> (Runtime, Context) {
    let runtime = Runtime::new().expect("QuickJS runtime");
    // No QuickJS memory limit: the host's linear-memory cap is the one limit, and it is
    // reported as such instead of as a JS "out of memory" exception.
    runtime.set_max_stack_size(MAX_JS_STACK);
    let context = Context::full(&runtime).expect("QuickJS context");
    context.with(|ctx| {
        // QuickJS seeds Math.random from the clock when the context is created, which a
        // snapshot would freeze: every call would see the same sequence.
        let math: Object<'_> = ctx.globals().get("Math").expect("Math");
        let random = Function::new(ctx.clone(), next_random)
            .and_then(|f| f.with_name("random"))
            .expect("Math.random");
        math.set("random", random).expect("set Math.random");
        let host = Function::new(ctx.clone(), host_call)
            .and_then(|f| f.with_name("__zeval_host_call"))
            .expect("__zeval_host_call");
        ctx.globals()
            .set("__zeval_host_call", host)
            .expect("set __zeval_host_call");
        ctx.eval::<(), _>(RUNNER_JS)
            .catch(&ctx)
            .unwrap_or_else(|e| panic!("runner.js failed: {e}"));
    });
    (runtime, context)
}

fn ensure_interpreter() {
    INTERPRETER.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            *slot = Some(create_interpreter());
        }
    });
}

#[unsafe(export_name = "wizer.initialize")]
pub extern "C" fn wizer_initialize() {
    ensure_interpreter();
}

fn run(input: &str) -> Result<String, String> {
    INTERPRETER.with(|slot| {
        let slot = slot.borrow();
        let (_, context) = slot.as_ref().expect("interpreter initialised");
        context.with(|ctx| {
            let run: Function<'_> = ctx
                .globals()
                .get("__zeval_run")
                .map_err(|e| format!("runner.js defines no __zeval_run: {e}"))?;
            run.call::<_, String>((input,))
                .catch(&ctx)
                .map_err(|e| format!("__zeval_run failed: {e}"))
        })
    })
}

fn main() {
    ensure_interpreter();
    RANDOM_STATE.with(|state| state.set(wasi_random_u64() | 1));

    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("reading stdin: {e}");
        std::process::exit(2);
    }
    let Ok(input) = String::from_utf8(input) else {
        eprintln!("the request is not UTF-8");
        std::process::exit(2);
    };
    match run(&input) {
        Ok(output) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(output.as_bytes())
                .and_then(|()| stdout.flush())
                .is_err()
            {
                std::process::exit(1);
            }
        }
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(1);
        }
    }
}
