//! The guest has no sockets.

use zeval_evaluator::Family::{JavaScript, Python};

use crate::hostile;

#[test]
fn a_socket_cannot_be_opened() {
    let py = "def Z1000():\n    import socket\n    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n    s.connect(('127.0.0.1', 22))\n    return 'connected'";
    let result = hostile(Python, py, &[]);
    assert!(result.is_err(), "{result:?}");
    let js = "function Z1000() { return String(fetch('http://127.0.0.1/')); }";
    assert_eq!(
        hostile(JavaScript, js, &[]),
        Err("fetch is not defined".to_owned())
    );
    let js = "function Z1000() { return String(new WebSocket('ws://127.0.0.1/')); }";
    assert_eq!(
        hostile(JavaScript, js, &[]),
        Err("WebSocket is not defined".to_owned())
    );
}
