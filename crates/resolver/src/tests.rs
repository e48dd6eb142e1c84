//! The resolver's unit tests.

use super::*;

fn address(uri: &str) -> Option<SocketAddr> {
    literal_address(&uri.parse().expect("a URI"))
}

#[test]
fn addresses_are_taken_as_they_are() {
    for (uri, expected) in [
        (
            "http://127.0.0.1:6927/wikifunctions.org/v1/evaluate/",
            "127.0.0.1:6927",
        ),
        ("http://[::1]:8080/x", "[::1]:8080"),
        ("http://10.0.0.2/x", "10.0.0.2:80"),
        ("https://10.0.0.2/x", "10.0.0.2:443"),
    ] {
        assert_eq!(address(uri), Some(expected.parse().unwrap()), "{uri}");
    }
}

#[test]
fn names_are_not_taken_as_addresses() {
    assert_eq!(address("http://localhost:6927/x"), None);
    assert_eq!(address("http://evaluator.zeval.svc:6927/x"), None);
    assert_eq!(address("http://1.2.3.4.example/x"), None);
}

/// The agent reaches an address without a lookup (and so without a thread for one).
#[test]
fn an_agent_reaches_an_address() {
    let (port, server) = one_answer_server();
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(5)))
        .build();
    let mut response = agent(config)
        .get(format!("http://127.0.0.1:{port}/"))
        .call()
        .expect("an answer");
    assert_eq!(response.body_mut().read_to_string().expect("a body"), "ok");
    server.join().expect("the server");
}

/// A local server answering one request with `ok`; its port.
fn one_answer_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = listener.local_addr().expect("its address").port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = listener.accept().expect("a connection");
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request);
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .expect("an answer");
    });
    (port, server)
}

/// The threads of this process named `name`.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

/// A name is looked up on the process's lookup threads, however many connections need it:
/// their number stays [`LOOKUP_THREADS`] (ureq's resolver started one per lookup).
#[test]
fn names_are_looked_up_on_the_same_few_threads() {
    let config = || {
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
    };
    let done_before = PROCESS_LOOKUPS_DONE.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..3 {
        let (port, server) = one_answer_server();
        let mut response = agent(config())
            .get(format!("http://localhost:{port}/"))
            .call()
            .expect("an answer from localhost");
        assert_eq!(response.body_mut().read_to_string().expect("a body"), "ok");
        server.join().expect("the server");
    }
    // Each agent's new connection looked `localhost` up on the process's threads.
    assert!(PROCESS_LOOKUPS_DONE.load(std::sync::atomic::Ordering::Relaxed) >= done_before + 3);
    for _ in 0..50 {
        let found = process_lookups()
            .look_up("localhost:80".to_owned(), Some(Duration::from_secs(5)))
            .expect("localhost's addresses");
        assert!(
            found.iter().all(|address| address.ip().is_loopback()),
            "{found:?}"
        );
    }
    assert_eq!(threads_named("zeval-lookup"), LOOKUP_THREADS);
}

/// A caller waits at most its own time; lookups past the queue's room fail at once; a lookup
/// thread whose caller has gone goes on to the next one.
#[test]
fn a_lookup_waits_its_time_and_the_queue_is_bounded() {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = Mutex::new(released);
    let stuck_once = std::sync::atomic::AtomicBool::new(true);
    let lookups = Lookups::start(
        "test-lookup",
        1,
        1,
        Arc::new(move |host_and_port: &str| {
            // The first lookup blocks its thread until released, as a name server that does
            // not answer would.
            if stuck_once.swap(false, std::sync::atomic::Ordering::SeqCst) {
                let _ = released.lock().unwrap().recv();
            }
            Ok(vec![host_and_port.parse().expect("an address")])
        }),
    );
    let wait = Some(Duration::from_millis(50));
    let started = std::time::Instant::now();
    // The thread takes the first, and blocks on it.
    assert!(matches!(
        lookups.look_up("10.0.0.1:80".into(), wait),
        Err(LookupFailure::TimedOut)
    ));
    assert!(started.elapsed() < Duration::from_secs(2));
    // The second waits in the queue (its room is one) and times out there.
    assert!(matches!(
        lookups.look_up("10.0.0.2:80".into(), wait),
        Err(LookupFailure::TimedOut)
    ));
    // The queue is full: the third fails without waiting.
    let refused = std::time::Instant::now();
    match lookups.look_up("10.0.0.3:80".into(), Some(Duration::from_secs(5))) {
        Err(LookupFailure::Io(error)) => {
            assert!(
                error
                    .to_string()
                    .contains("too many name lookups waiting (1)"),
                "{error}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(refused.elapsed() < Duration::from_secs(1));
    // Released, the thread answers the abandoned lookups into the void and serves again
    // (once it has taken the abandoned one from the queue, there is room again).
    release.send(()).expect("the stuck lookup");
    let again = std::time::Instant::now();
    let found = loop {
        match lookups.look_up("10.0.0.4:80".into(), Some(Duration::from_secs(5))) {
            Err(LookupFailure::Io(error))
                if error.to_string().contains("too many") && again.elapsed().as_secs() < 5 =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            found => break found.expect("an answer once the thread is free"),
        }
    };
    assert_eq!(found, vec!["10.0.0.4:80".parse().unwrap()]);
}

/// A failed lookup is the caller's error, not a timeout.
#[test]
fn a_failed_lookup_is_an_error() {
    let lookups = Lookups::start(
        "test-lookup",
        1,
        4,
        Arc::new(|_: &str| Err(io::Error::other("no such host"))),
    );
    match lookups.look_up("nowhere.invalid:80".into(), Some(Duration::from_secs(5))) {
        Err(LookupFailure::Io(error)) => assert!(error.to_string().contains("no such host")),
        other => panic!("expected the lookup's error, got {other:?}"),
    }
}
