// Native QuickJS-ng (the same rquickjs 0.14.0 sources as the guest), fib(25) timed in one
// long-lived runtime: the function's own time, as the wasm guest's fib(25) is timed.
use std::time::Instant;

fn main() {
    let rt = rquickjs::Runtime::new().unwrap();
    let ctx = rquickjs::Context::full(&rt).unwrap();
    ctx.with(|ctx| {
        ctx.eval::<(), _>("function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }")
            .unwrap();
        let mut times = Vec::new();
        for _ in 0..40 {
            let t = Instant::now();
            let v: i32 = ctx.eval("fib(25)").unwrap();
            assert_eq!(v, 75025);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "native QuickJS fib(25): p50 {:.2} ms, p90 {:.2} ms",
            times[20], times[36]
        );
    });
}
