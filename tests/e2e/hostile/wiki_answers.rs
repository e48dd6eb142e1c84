//! What the wiki answers is as hostile as a request: a wiki (or anyone on the way to an
//! `http://` one) that answers a fetch with 30 MB of `[0,0,…]`, 15 million JSON values, had
//! the server parse them all, some 2 GB, for any call naming a ZID the store lacked.

use std::time::Duration;

use serde_json::json;

use super::{DEADLINE, MockWiki, Target, assert_refused, one_at_a_time};

/// JSON values in the wiki's answer: under its 32 MiB byte limit, far over its value limit.
const VALUES: usize = 15_000_000;

#[test]
fn a_wiki_answer_of_too_many_values_is_refused() {
    let _serial = one_at_a_time();
    let zeros = format!("[{}0]", "0,".repeat(VALUES - 1));
    let wiki = MockWiki::start_with_texts(vec![("Z10700".to_owned(), zeros)], Duration::ZERO);
    let target = Target::start(&[("ZEVAL_WIKI_URL", &wiki.url)]);
    let call = json!({"Z1K1": "Z7", "Z7K1": "Z10700", "Z10700K1": "x"});
    let timed = target.watched_call(call);
    let code = assert_refused(
        "a call of a function the wiki answers with 15 million values",
        &timed,
        DEADLINE,
    );
    eprintln!(
        "wiki of {VALUES} values: {code} in {:?}; server peak {} MiB",
        timed.took,
        target.memory().peak_kib / 1024
    );
    assert_eq!(wiki.requests_for("Z10700"), 1);
    // The release server peaked at 119 MiB here, a debug build at 128–161 MiB; the one before
    // passed 2 GiB.
    let peak_mib = target.memory().peak_kib / 1024;
    assert!(peak_mib < 512, "the server's peak was {peak_mib} MiB");
    target.assert_survived();
}
