use zeval_sandbox::Limits;

use crate::common::run_js;

/// The evaluator calls the sandbox from tokio's blocking pool; the sandbox drives each call
/// on its own per-thread runtime, which must work there.
#[test]
fn runs_inside_spawn_blocking_of_a_multi_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let results = runtime.block_on(async {
        let calls = (0..4).map(|i| {
            tokio::task::spawn_blocking(move || {
                run_js(
                    &format!("function Z1() {{ return 'call {i}'; }}"),
                    "Z1",
                    &[],
                    &Limits::default(),
                )
            })
        });
        let mut results = Vec::new();
        for call in calls {
            results.push(call.await.unwrap());
        }
        results
    });
    assert_eq!(results, ["call 0", "call 1", "call 2", "call 3"]);
}
