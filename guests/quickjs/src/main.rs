//! QuickJS as a WASI command for the zeval sandbox.
//!
//! Two entry points share one interpreter:
//! - `wizer.initialize` (run once at build time by `zeval-wizer`) creates the runtime and
//!   context and evaluates `runner.js`, so the snapshot starts with everything booted;
//! - `_start` (`main`) reads the request from stdin, reseeds what the snapshot froze, calls
//!   `globalThis.__zeval_run(request, withBytecode)` and writes the returned string to stdout.
//!
//! Bytecode of the code cache travels as raw bytes after a NUL: after the request's JSON in
//! stdin (then `withBytecode` is true, and `__zeval_run_bytecode()` runs it), and after the
//! answer in stdout (what `__zeval_bytecode(source, limit)` kept, when the two fit `limit`).
//!
//! A request whose arguments are all strings, the usual shape, is read here instead of by
//! runner.js ([`string_call`]), and its string answer written here: QuickJS's JSON is most of
//! a trivial call's cost otherwise.
//!
//! Without a snapshot (`quickjs.raw.wasm`) `main` does the initialisation itself.
//! Exit codes: 0 success; 1 the runner threw or returned a non-string; 2 stdin was not UTF-8.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};

use rquickjs::{Array, CatchResultExt, Context, Ctx, Function, Object, Runtime, Value, qjs};

mod string_call;

use string_call::StringCall;

/// The runner script, whose contract is documented at its top.
const RUNNER_JS: &str = include_str!("../runner.js");

thread_local! {
    static INTERPRETER: RefCell<Option<(Runtime, Context)>> = const { RefCell::new(None) };
    /// xorshift64* state behind `Math.random`, seeded from WASI random at a call's first
    /// `Math.random` (0 until then: a seeded state is odd, so never 0).
    static RANDOM_STATE: Cell<u64> = const { Cell::new(0) };
    /// The bytecode that came after the request's JSON, for `__zeval_run_bytecode`.
    static BYTECODE_IN: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    /// The bytecode `__zeval_bytecode` wrote, and the output limit it must fit in with the
    /// answer: written after the answer's JSON.
    static BYTECODE_OUT: RefCell<Option<(Vec<u8>, usize)>> = const { RefCell::new(None) };
}

/// The bytes [`main`] makes room for before it reads the request; a longer one grows the
/// buffer as it comes.
const INPUT_CAPACITY: usize = 16 * 1024;

/// The byte between the JSON and the bytecode after it, in the input and in the answer
/// (`zeval-evaluator`'s `COMPILED_SEPARATOR`): JSON text never holds a raw NUL.
const BYTECODE_SEPARATOR: u8 = 0;

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
    String::from_utf8(answer).map(Some).map_err(|_| {
        rquickjs::Error::new_from_js_message("bytes", "string", "the answer is not UTF-8")
    })
}

/// `__zeval_bytecode(source, limit)`, for runner.js's code cache: `source` compiled as a
/// global script (not run), kept as QuickJS bytecode to be written after the answer if the
/// two fit in `limit` bytes. A syntax error is thrown as by `eval`.
fn bytecode_of(ctx: Ctx<'_>, source: String, limit: f64) -> rquickjs::Result<()> {
    let raw = ctx.as_raw().as_ptr();
    // QuickJS reads its input up to a terminating NUL.
    let source = std::ffi::CString::new(source)
        .map_err(|_| rquickjs::Error::new_from_js_message("string", "script", "it holds a NUL"))?;
    let flags = (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32;
    // SAFETY: `raw` is this call's live context; the source is NUL-terminated and its length
    // excludes the NUL; the file name is a static C string.
    let function = unsafe {
        qjs::JS_Eval(
            raw,
            source.as_ptr(),
            source.as_bytes().len() as _,
            c"<input>".as_ptr(),
            flags,
        )
    };
    // SAFETY: `function` is a value this context returned.
    if unsafe { qjs::JS_IsException(function) } {
        return Err(rquickjs::Error::Exception);
    }
    let mut size = 0;
    // SAFETY: as above; `size` receives the buffer's length.
    let buffer =
        unsafe { qjs::JS_WriteObject(raw, &mut size, function, qjs::JS_WRITE_OBJ_BYTECODE as i32) };
    // SAFETY: `function` is owned here and not used again.
    unsafe { qjs::JS_FreeValue(raw, function) };
    if buffer.is_null() {
        return Err(rquickjs::Error::Exception);
    }
    // SAFETY: QuickJS returned `size` bytes at `buffer`, freed right after with its allocator.
    let bytecode = unsafe { std::slice::from_raw_parts(buffer, size as usize) }.to_vec();
    unsafe { qjs::js_free(raw, buffer.cast()) };
    // A limit that is not a whole number of bytes (never sent by the host) keeps nothing.
    let limit = if limit.is_finite() && limit >= 0.0 {
        limit as usize
    } else {
        0
    };
    BYTECODE_OUT.with(|out| *out.borrow_mut() = Some((bytecode, limit)));
    Ok(())
}

/// `__zeval_run_bytecode()`: runs the bytecode that came after the request (what
/// [`bytecode_of`] wrote in an earlier call), as a global script.
fn run_bytecode(ctx: Ctx<'_>) -> rquickjs::Result<()> {
    let raw = ctx.as_raw().as_ptr();
    let bytes = BYTECODE_IN
        .with(|input| input.borrow_mut().take())
        .ok_or_else(|| {
            rquickjs::Error::new_from_js_message(
                "nothing",
                "bytecode",
                "no bytecode came with the request",
            )
        })?;
    // SAFETY: `raw` is this call's live context and `bytes` is valid for its length. The
    // bytecode is what this guest wrote for the same source (the host's code cache gives it
    // only to calls of that source), so reading it trusts nothing another user wrote.
    let function = unsafe {
        qjs::JS_ReadObject(
            raw,
            bytes.as_ptr(),
            bytes.len() as _,
            qjs::JS_READ_OBJ_BYTECODE as i32,
        )
    };
    // SAFETY: `function` is a value this context returned.
    if unsafe { qjs::JS_IsException(function) } {
        return Err(rquickjs::Error::Exception);
    }
    // SAFETY: JS_EvalFunction takes ownership of `function`.
    let result = unsafe { qjs::JS_EvalFunction(raw, function) };
    // SAFETY: as above.
    if unsafe { qjs::JS_IsException(result) } {
        return Err(rquickjs::Error::Exception);
    }
    // SAFETY: `result` is owned here and not used again.
    unsafe { qjs::JS_FreeValue(raw, result) };
    Ok(())
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
        // The same generator QuickJS uses (xorshift64*), but with our per-call state, seeded
        // only in calls that use it: most never do, and the seed is a host call.
        let mut x = state.get();
        if x == 0 {
            x = wasi_random_u64() | 1;
        }
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
    // No QuickJS stack limit either: QuickJS ignores it on WASI (`update_stack_limit`). A
    // deep recursion ends when the host's wasm stack or the C stack in linear memory (4
    // MiB, `.cargo/config.toml`; laid out first, so running out of it traps below address
    // 0) runs out, whichever is first; the host reports both as the stack limit.
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
        for (name, function) in [
            ("__zeval_bytecode", Function::new(ctx.clone(), bytecode_of)),
            (
                "__zeval_run_bytecode",
                Function::new(ctx.clone(), run_bytecode),
            ),
        ] {
            let function = function
                .and_then(|f| f.with_name(name))
                .expect("a code cache function");
            ctx.globals()
                .set(name, function)
                .expect("set a code cache function");
        }
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
    warm_up();
}

/// The call [`warm_up`] makes: a function no benchmark calls, with constant arguments.
const WARM_UP_REQUEST: &str = concat!(
    r#"{"functionName":"Z1000","codeString":"function Z1000(Z1000K1, Z1000K2) { "#,
    r#"return String(Number(Z1000K1) + Number(Z1000K2)); }","#,
    r#""functionArguments":{"Z1000K1":{"Z1K1":"Z6","Z6K1":"2"},"#,
    r#""Z1000K2":{"Z1K1":"Z6","Z6K1":"3"}}}"#,
);

/// Runs a representative call at snapshot time, never per call, on both of the code cache's
/// paths (compiling and handing back bytecode, then running it), and collects its garbage:
/// what QuickJS creates lazily on first use (built-in objects such as `Reflect`, whose
/// properties are made on first access) is then in the snapshot instead of being made again
/// in every call, and written to, on pages that the sandbox copies back after each call.
/// What stays of the warm-up itself is constant: the global `__zeval_wrapper` that its
/// bytecode declared (a script's declaration cannot be deleted), which every call of the
/// code cache's bytecode path declares again anyway.
fn warm_up() {
    // The answer as `main` would write it.
    let written = |with_bytecode: bool| {
        let mut out = Vec::new();
        let text = answer(WARM_UP_REQUEST, with_bytecode, &mut out)?;
        Ok(text.unwrap_or_else(|| String::from_utf8_lossy(&out).into_owned()))
    };
    let expect_five = |answer: Result<String, String>| {
        let answer = answer.unwrap_or_else(|e| panic!("warm-up: {e}"));
        assert!(
            answer.contains(r#""Z6K1":"5""#),
            "warm-up answered {answer}"
        );
    };
    for _ in 0..3 {
        expect_five(written(false));
    }
    // runner.js's own reading of a request (`answer` reads the warm-up's strings itself).
    expect_five(run(WARM_UP_REQUEST, false));
    let compile_only = WARM_UP_REQUEST.replacen('{', r#"{"compileOnly":1048576,"#, 1);
    let compiled = run(&compile_only, false).unwrap_or_else(|e| panic!("warm-up: {e}"));
    assert_eq!(compiled, r#"{"compiled":true}"#, "warm-up compiled only");
    let (bytecode, _) = BYTECODE_OUT
        .with(|out| out.borrow_mut().take())
        .expect("the warm-up handed back its bytecode");
    for _ in 0..3 {
        BYTECODE_IN.with(|input| *input.borrow_mut() = Some(bytecode.clone()));
        expect_five(written(true));
    }
    INTERPRETER.with(|slot| {
        if let Some((runtime, _)) = slot.borrow().as_ref() {
            runtime.run_gc();
        }
    });
}

/// The answer to the request `input`: read here when it is a call of string arguments, by
/// runner.js otherwise. A string result's answer is written to `out` here (`None`), streamed
/// from QuickJS's copy of the string: a result near the output limit must meet that limit,
/// not the memory limit, and each whole copy of it (a Rust `String`, its JSON) would take
/// as much memory again. Any other answer is returned for [`main`] to write.
fn answer(input: &str, with_bytecode: bool, out: &mut dyn Write) -> Result<Option<String>, String> {
    match StringCall::read(input, with_bytecode) {
        Some(call) => run_strings(&call, with_bytecode, out),
        None => run(input, with_bytecode).map(Some),
    }
}

/// runner.js's `__zeval_run_strings` for a request read here (see [`answer`]).
fn run_strings(
    call: &StringCall<'_>,
    with_bytecode: bool,
    out: &mut dyn Write,
) -> Result<Option<String>, String> {
    INTERPRETER.with(|slot| {
        let slot = slot.borrow();
        let (_, context) = slot.as_ref().expect("interpreter initialised");
        context.with(|ctx| {
            let fail = |e: rquickjs::Error| format!("__zeval_run_strings failed: {e}");
            let run: Function<'_> = ctx
                .globals()
                .get("__zeval_run_strings")
                .map_err(|e| format!("runner.js defines no __zeval_run_strings: {e}"))?;
            let arguments = Array::new(ctx.clone()).map_err(fail)?;
            for (index, argument) in call.arguments().into_iter().enumerate() {
                arguments.set(index, argument).map_err(fail)?;
            }
            let returned: Value<'_> = run
                .call((
                    call.function_name.as_ref(),
                    call.code_string.as_deref(),
                    call.code_newlines,
                    with_bytecode,
                    arguments,
                ))
                .catch(&ctx)
                .map_err(|e| format!("__zeval_run_strings failed: {e}"))?;
            if let Some(value) = returned.as_string() {
                let text = value.clone().to_cstring().map_err(fail)?;
                // SAFETY: QuickJS holds `text.len()` bytes at `text.as_ptr()` until `text`
                // is dropped, after this slice's last use.
                let bytes =
                    unsafe { std::slice::from_raw_parts(text.as_ptr().cast::<u8>(), text.len()) };
                // Not UTF-8 when the string holds a lone surrogate (QuickJS writes it as
                // WTF-8): JSON escapes it, which runner.js does.
                if let Ok(value) = std::str::from_utf8(bytes) {
                    string_call::write_string_answer(out, value)
                        .map_err(|e| format!("writing the answer: {e}"))?;
                    return Ok(None);
                }
                let result_answer: Function<'_> = ctx
                    .globals()
                    .get("__zeval_result_answer")
                    .map_err(|e| format!("runner.js defines no __zeval_result_answer: {e}"))?;
                return result_answer
                    .call::<_, String>((returned,))
                    .catch(&ctx)
                    .map(Some)
                    .map_err(|e| format!("__zeval_result_answer failed: {e}"));
            }
            returned
                .as_array()
                .and_then(|answer| answer.get::<String>(0).ok())
                .map(Some)
                .ok_or_else(|| "__zeval_run_strings returned no answer".to_owned())
        })
    })
}

/// runner.js's `__zeval_run`, which reads the request `input` itself.
fn run(input: &str, with_bytecode: bool) -> Result<String, String> {
    INTERPRETER.with(|slot| {
        let slot = slot.borrow();
        let (_, context) = slot.as_ref().expect("interpreter initialised");
        context.with(|ctx| {
            let run: Function<'_> = ctx
                .globals()
                .get("__zeval_run")
                .map_err(|e| format!("runner.js defines no __zeval_run: {e}"))?;
            run.call::<_, String>((input, with_bytecode))
                .catch(&ctx)
                .map_err(|e| format!("__zeval_run failed: {e}"))
        })
    })
}

fn main() {
    ensure_interpreter();
    // A snapshot taken after a warm-up that drew from `Math.random` must not hand every call
    // the same sequence: the state starts unseeded in every call.
    RANDOM_STATE.with(|state| state.set(0));

    // Room for a usual request up front: it then comes in one `fd_read` (and one more that
    // finds its end) instead of one per doubling of the buffer, each a host call.
    let mut input = Vec::with_capacity(INPUT_CAPACITY);
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("reading stdin: {e}");
        std::process::exit(2);
    }
    let with_bytecode = match input.iter().position(|&byte| byte == BYTECODE_SEPARATOR) {
        Some(end) => {
            let bytecode = input.split_off(end + 1);
            input.truncate(end);
            BYTECODE_IN.with(|slot| *slot.borrow_mut() = Some(bytecode));
            true
        }
        None => false,
    };
    let Ok(input) = String::from_utf8(input) else {
        eprintln!("the request is not UTF-8");
        std::process::exit(2);
    };
    let mut stdout = std::io::stdout().lock();
    match answer(&input, with_bytecode, &mut stdout) {
        Ok(None) => {
            // No bytecode waits: only a `compileOnly` request makes one, and runner.js
            // answers those.
            if stdout.flush().is_err() {
                std::process::exit(1);
            }
        }
        Ok(Some(output)) => {
            // The bytecode goes after the answer when the two fit the limit the host gave.
            let bytecode = BYTECODE_OUT
                .with(|out| out.borrow_mut().take())
                .filter(|(bytecode, limit)| output.len() + 1 + bytecode.len() <= *limit);
            let written = stdout
                .write_all(output.as_bytes())
                .and_then(|()| match &bytecode {
                    Some((bytecode, _)) => stdout
                        .write_all(&[BYTECODE_SEPARATOR])
                        .and_then(|()| stdout.write_all(bytecode)),
                    None => Ok(()),
                });
            if written.and_then(|()| stdout.flush()).is_err() {
                std::process::exit(1);
            }
        }
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(1);
        }
    }
}
