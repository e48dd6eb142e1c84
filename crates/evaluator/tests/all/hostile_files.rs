//! The guest has no file system: reading host files fails inside the guest.

use zeval_evaluator::Family::{JavaScript, Python};

use crate::hostile;

#[test]
fn etc_passwd_cannot_be_read() {
    let py = "def Z1000():\n    with open('/etc/passwd') as f:\n        return f.read()";
    let result = hostile(Python, py, &[]);
    assert!(result.is_err(), "read {result:?}");
    let py = "def Z1000():\n    import os\n    return str(os.listdir('/'))";
    assert!(hostile(Python, py, &[]).is_err());
    // QuickJS in the guest has no std/os modules, no require and no fetch.
    let js = "function Z1000() { return std.loadFile('/etc/passwd'); }";
    assert_eq!(
        hostile(JavaScript, js, &[]),
        Err("std is not defined".to_owned())
    );
}

#[test]
fn require_fs_does_not_exist() {
    let js = "function Z1000() { return require('fs').readFileSync('/etc/passwd', 'utf8'); }";
    assert_eq!(
        hostile(JavaScript, js, &[]),
        Err("require is not defined".to_owned())
    );
    let js = "function Z1000() { return typeof import.meta; }";
    assert!(hostile(JavaScript, js, &[]).is_err());
}
