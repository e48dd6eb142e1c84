//! Item 7: guest output is sized against the host. 8 MiB of stdout used to be parsed into a
//! value on the host at 10–30× its size and echoed back whole in "Executor returned some
//! nonsense".

use serde_json::json;

use super::{
    DEADLINE, PYTHON, Target, assert_refused, call_of, code_function, error_code, one_at_a_time,
    prefix, timed_call,
};
use crate::common::metadata;

/// Longest error message a hostile output may produce.
const MESSAGE_LIMIT: usize = 1024;
/// Largest whole answer to a hostile output.
const ANSWER_LIMIT: usize = 16 * 1024;
/// Peak memory the server may gain while handling these outputs: a few times 8 MiB would be
/// fine, the 10–30× of parsing it is not.
const MEMORY_GAIN_LIMIT_KIB: u64 = 128 * 1024;

/// Python code writing `output` (a Python bytes expression) to the real stdout, where the
/// runner's own answer follows it.
fn printing(zid: &str, output: &str) -> serde_json::Value {
    call_of(
        code_function(
            zid,
            json!("Z6"),
            "Z6",
            PYTHON,
            &format!(
                "import os\ndef {zid}({zid}K1):\n    data = {output}\n    while data:\n        data = data[os.write(1, data):]\n    return 'done'"
            ),
        ),
        zid,
        json!("x"),
    )
}

#[test]
fn eight_mebibytes_of_guest_output_give_a_short_z5() {
    let _serial = one_at_a_time();
    let target = Target::start(&[]);
    let orch = target.orch().to_owned();
    // A first Python call, so that the guest's own start-up is not counted as the attack's.
    let warm_up = timed_call(&orch, None, &printing("Z10799", "b''"), DEADLINE);
    assert_eq!(
        warm_up
            .answer
            .as_ref()
            .map(|a| a.json()["Z22K1"].clone())
            .ok(),
        Some(json!("done")),
        "a Python call writing nothing: {:?}",
        warm_up.answer.map(|a| a.text)
    );
    let before = target.memory();
    let attacks = [
        // Just under the output limit: the runner's answer follows, so it is not JSON.
        (
            "8 MiB less 64 KiB of text",
            "b'x' * (8 * 1024 * 1024 - 65536)",
        ),
        // Exactly the output limit.
        ("8 MiB of text", "b'x' * (8 * 1024 * 1024)"),
        // JSON that is costly to parse: millions of tiny arrays, then the runner's answer.
        (
            "8 MiB less 64 KiB of tiny JSON arrays",
            "b'{\"pad\": [' + b'[],' * ((8 * 1024 * 1024 - 65536) // 3) + b'[]]}'",
        ),
    ];
    for (i, (what, output)) in attacks.into_iter().enumerate() {
        let call = printing(&format!("Z{}", 10_700 + i), output);
        let timed = target.watched_call(call);
        let code = assert_refused(what, &timed, DEADLINE);
        let answer = timed.answer.as_ref().unwrap();
        assert!(
            answer.text.len() <= ANSWER_LIMIT,
            "{what}: a {} byte answer: {}",
            answer.text.len(),
            prefix(&answer.text)
        );
        if answer.status == 200 {
            let z22 = answer.json();
            let error = metadata(&z22, "errors").unwrap();
            let message = error.to_string();
            assert!(
                message.len() <= MESSAGE_LIMIT,
                "{what}: a {} byte error: {}",
                message.len(),
                prefix(&message)
            );
            assert!(error_code(&z22).is_some());
        }
        eprintln!(
            "item 7, {what}: {code} in {:?}, {} byte answer",
            timed.took,
            answer.text.len()
        );
    }
    let after = target.memory();
    let gain = after.peak_kib.saturating_sub(before.peak_kib);
    eprintln!(
        "item 7, server peak memory {} → {} MiB",
        before.peak_kib / 1024,
        after.peak_kib / 1024
    );
    assert!(
        gain <= MEMORY_GAIN_LIMIT_KIB,
        "the server's peak memory grew by {} MiB for 8 MiB outputs",
        gain / 1024
    );
    target.assert_survived();
}
