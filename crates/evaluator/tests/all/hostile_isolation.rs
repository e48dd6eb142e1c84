//! Nothing a call changes is visible to the next call.

use zeval_evaluator::Family::{JavaScript, Python};

use crate::hostile;

#[test]
fn polluted_globals_do_not_survive_the_call() {
    let js = "function Z1000() { Object.prototype.polluted = 'yes'; globalThis.leak = 1; \
              Array.prototype.map = null; JSON.stringify = () => 'owned'; return 'ok'; }";
    assert_eq!(hostile(JavaScript, js, &[]), Ok("ok".to_owned()));
    let js = "function Z1000() { return String(({}).polluted) + ' ' + typeof leak + ' ' + typeof [].map; }";
    assert_eq!(
        hostile(JavaScript, js, &[]),
        Ok("undefined undefined function".to_owned())
    );

    let py = "def Z1000():\n    import builtins, json\n    builtins.leak = 1\n    json.dumps = None\n    globals()['ZPair'] = None\n    return 'ok'";
    assert_eq!(hostile(Python, py, &[]), Ok("ok".to_owned()));
    let py = "def Z1000():\n    import builtins, json\n    return str(hasattr(builtins, 'leak')) + ' ' + str(json.dumps is None) + ' ' + ZPair.__name__";
    assert_eq!(hostile(Python, py, &[]), Ok("False False ZPair".to_owned()));
}

#[test]
fn random_differs_between_calls() {
    let js = "function Z1000() { return String(Math.random()); }";
    let (a, b) = (hostile(JavaScript, js, &[]), hostile(JavaScript, js, &[]));
    assert!(a.is_ok() && a != b, "{a:?} {b:?}");
    let py = "def Z1000():\n    import random\n    return str(random.random())";
    let (a, b) = (hostile(Python, py, &[]), hostile(Python, py, &[]));
    assert!(a.is_ok() && a != b, "{a:?} {b:?}");
}

/// The Python guest's snapshot objects are immortal (`immortalize_snapshot` in
/// guests/python/driver.c), so that a call's reference counting writes nothing to their pages:
/// a thousand new references leave a snapshot function's count as it was. User code can still
/// change and delete them, and the change ends with its call.
#[test]
fn python_snapshot_objects_are_immortal_and_changes_to_them_end_with_the_call() {
    let py = "def Z1000():\n    import sys, json\n    loads = json.loads\n    before = sys.getrefcount(loads)\n    \
              held = [loads] * 1000\n    after = sys.getrefcount(loads)\n    del json.loads, held, loads\n    \
              return str(before == after) + ' ' + str(hasattr(json, 'loads'))";
    assert_eq!(hostile(Python, py, &[]), Ok("True False".to_owned()));
    let py = "def Z1000():\n    import json\n    return json.loads('[1]')[0] and 'intact'";
    assert_eq!(hostile(Python, py, &[]), Ok("intact".to_owned()));
}
