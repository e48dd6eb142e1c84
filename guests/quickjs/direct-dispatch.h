/* Forced into every C file of rquickjs-sys by guests/build.sh (`-include`).
 *
 * rquickjs-sys defines EMSCRIPTEN for WASI builds, "so that the existing ifdefs match". In
 * quickjs-ng 0.14 the one place where that is not what `__wasi__` already selects is the
 * interpreter's dispatch: EMSCRIPTEN turns off DIRECT_DISPATCH (computed gotos), leaving a
 * `switch` in a loop. clang compiles computed gotos for wasm32 too (LLVM's indirectbr
 * expansion), and the interpreter then runs JS fib(25) about 15 % faster in wasmtime
 * (docs/benchmarks.md). Every other use of EMSCRIPTEN in these sources is paired with
 * `__wasi__`, so nothing else changes. */
#undef EMSCRIPTEN
