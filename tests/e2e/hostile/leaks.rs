//! Item 10: answers tell nothing about the host. The metadata used to carry the machine's
//! host name (and the whole server's memory), and errors quoted host paths such as the guest
//! directory.

use serde_json::{Value, json};

use super::{
    DEADLINE, Target, error_code, host_name, linked_guest_dir, one_at_a_time, prefix, strings,
    timed_call,
};
use crate::common::{Server, add_user, metadata, put_js_function};

/// The metadata keys that name the machine in the original.
const HOST_KEYS: [&str; 2] = ["orchestrationHostname", "evaluationHostname"];

fn metadata_strings(z22: &Value) -> Vec<String> {
    strings(&z22["Z22K2"])
        .into_iter()
        .map(str::to_owned)
        .collect()
}

fn assert_no_host_name(what: &str, z22: &Value) {
    let host = host_name();
    assert!(!host.is_empty(), "the machine has no host name to look for");
    for value in metadata_strings(z22) {
        // A short host name (e.g. "vm") could appear inside unrelated words, so short ones
        // must only not be a whole value.
        let leaked = if host.len() >= 6 {
            value.contains(&host)
        } else {
            value == host
        };
        assert!(
            !leaked,
            "{what}: the metadata holds the host name {host:?}: {value:?}"
        );
    }
}

#[test]
fn answers_name_the_instance_not_the_host() {
    let _serial = one_at_a_time();
    let target = Target::start(&[("ZEVAL_INSTANCE_NAME", "test-node")]);
    let call = json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "x"});
    let answer = timed_call(target.orch(), None, &call, DEADLINE)
        .answer
        .unwrap();
    let z22 = answer.json();
    assert_eq!(z22["Z22K1"], "X", "{}", answer.text);
    for key in HOST_KEYS {
        let value = metadata(&z22, key).unwrap_or_else(|| panic!("no {key}: {z22}"));
        let text = value.as_str().or_else(|| value["Z6K1"].as_str());
        assert_eq!(text, Some("test-node"), "{key}: {value}");
    }
    assert_no_host_name("with ZEVAL_INSTANCE_NAME", &z22);
    target.assert_survived();
    drop(target);

    // Without an instance name the keys still do not name the machine.
    let target = Target::start(&[]);
    let answer = timed_call(target.orch(), None, &call, DEADLINE)
        .answer
        .unwrap();
    assert_no_host_name("without ZEVAL_INSTANCE_NAME", &answer.json());
}

#[test]
fn errors_quote_no_host_paths() {
    let _serial = one_at_a_time();
    // An orchestrator whose guest directory lacks the Python guest: its in-process
    // evaluator cannot start, and the call's error says so without the paths.
    let root = tempfile::tempdir().unwrap();
    let guests = root.path().join("guests");
    linked_guest_dir(&guests, &["python"]);
    let data = tempfile::tempdir().unwrap();
    let editor = add_user(data.path(), "editor", "editor");
    let server = Server::start(
        data.path(),
        &["--role", "orchestrator"],
        &[("ZEVAL_GUEST_DIR", guests.to_str().unwrap())],
    );
    put_js_function(server.orch(), &editor);
    let answer = timed_call(
        server.orch(),
        None,
        &json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "x"}),
        DEADLINE,
    )
    .answer
    .unwrap();
    assert_eq!(answer.status, 200, "{}", prefix(&answer.text));
    let z22 = answer.json();
    assert!(
        error_code(&z22).is_some(),
        "a call without its guests did not fail: {}",
        prefix(&answer.text)
    );
    let root_path = root.path().to_str().unwrap();
    let data_path = data.path().to_str().unwrap();
    for path in [root_path, data_path, "/var/cache/zeval"] {
        assert!(
            !answer.text.contains(path),
            "the answer quotes the host path {path}: {}",
            prefix(&answer.text)
        );
    }
    eprintln!(
        "item 10, error without host paths: {}",
        prefix(&answer.text)
    );
}
