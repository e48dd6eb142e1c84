//! SIGTERM is a clean shutdown from the moment the server announces its listeners: the
//! signal handlers are installed before, not when a task first runs (a SIGTERM in between
//! killed the server by the default action, exit status "signal 15").

use crate::common::Server;

#[test]
fn a_sigterm_right_after_start_is_a_clean_shutdown() {
    for round in 0..5 {
        let data = tempfile::tempdir().unwrap();
        let server = Server::start(data.path(), &[], &[]);
        assert!(
            server.stop(),
            "round {round}: the server did not exit cleanly"
        );
    }
}
