//! Connections over real TCP, served as `zeval serve` serves them: slow senders hold no work
//! slot, silent and idle connections are closed, and at the connection cap the client
//! holding the most gives a connection way, or new connections wait.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use zeval_server::config::Limits;

use crate::common::{connect, listen, post_request, read_response, server};

const EVALUATE: &str = "/wikifunctions.org/v1/evaluate/";

/// A call of the built-in echo (Z801).
fn echo_body() -> String {
    serde_json::json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": "hi"}}).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_body_senders_hold_no_work_slot() {
    let server = server(|_| {});
    let limits = Limits::default();
    let addr = listen(server.router.clone(), &limits).await;
    // More unfinished bodies than work slots (64), all from the same address.
    let mut slow = Vec::new();
    for _ in 0..limits.max_concurrent_requests + 6 {
        let head = format!(
            "POST {EVALUATE} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"zob"
        );
        slow.push(connect(addr, head.as_bytes()).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut normal = connect(addr, &post_request(EVALUATE, None, &echo_body())).await;
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), read_response(&mut normal))
        .await
        .expect("no answer")
        .expect("connection closed");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"hi\""), "{body}");
    drop(slow);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_does_not_arrive_in_time_gets_408() {
    let server = server(|c| c.limits.body_timeout_ms = 300);
    let addr = listen(
        server.router.clone(),
        &server_limits(|l| l.body_timeout_ms = 300),
    )
    .await;
    let head = format!(
        "POST {EVALUATE} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{{\"zob"
    );
    let mut stream = connect(addr, head.as_bytes()).await;
    let started = Instant::now();
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), read_response(&mut stream))
        .await
        .expect("no answer")
        .expect("connection closed");
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("300 ms"), "{body}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    let metrics = crate::common::send(&server, "GET", "/metrics", None, None)
        .await
        .text;
    assert!(
        metrics.contains("zeval_requests_rejected_total{reason=\"slow_body\"} 1"),
        "{metrics}"
    );
}

fn server_limits(adjust: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = Limits::default();
    adjust(&mut limits);
    limits
}

/// Whether the server closes `stream` within `within` (reads until EOF or error).
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_header_timeout_closes_silent_and_slow_connections() {
    let server = server(|_| {});
    let addr = listen(
        server.router.clone(),
        &server_limits(|l| l.header_timeout_ms = 300),
    )
    .await;
    let started = Instant::now();
    let mut silent = connect(addr, b"").await;
    let mut partial = connect(addr, b"GET /healthz HTTP/1.1\r\nHost: local").await;
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await);
    assert!(closed_within(&mut partial, Duration::from_secs(5)).await);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_keep_alive_connections_have_their_own_timeout() {
    let server = server(|_| {});
    let addr = listen(
        server.router.clone(),
        &server_limits(|l| {
            l.header_timeout_ms = 300;
            l.idle_timeout_ms = 1500;
        }),
    )
    .await;
    let get = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut stream = connect(addr, get).await;
    assert_eq!(read_response(&mut stream).await.unwrap().0, 200);
    // Idle for longer than the header timeout but within the idle timeout: still open.
    tokio::time::sleep(Duration::from_millis(700)).await;
    stream.write_all(get).await.unwrap();
    assert_eq!(read_response(&mut stream).await.unwrap().0, 200);
    // Idle past the idle timeout: closed.
    let idle_from = Instant::now();
    assert!(closed_within(&mut stream, Duration::from_secs(5)).await);
    assert!(idle_from.elapsed() >= Duration::from_millis(1300));
}

/// A connection from `from` with a request in a handler: its body is on its way (100 bytes
/// announced, 5 sent).
async fn busy_connection_from(
    from: std::net::IpAddr,
    addr: std::net::SocketAddr,
) -> tokio::net::TcpStream {
    let head = format!(
        "POST {EVALUATE} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"zob"
    );
    connect_from(from, addr, head.as_bytes()).await
}

/// While no client holds two connections, connections past the cap wait for one to close.
#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_cap_wait_while_no_client_holds_two() {
    let server = server(|_| {});
    let addr = listen(
        server.router.clone(),
        &server_limits(|l| l.max_connections = 2),
    )
    .await;
    let first = connect_from([127, 0, 0, 3].into(), addr, b"").await;
    let _second = busy_connection_from([127, 0, 0, 4].into(), addr).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = connect(addr, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    let waited = tokio::time::timeout(Duration::from_millis(500), read_response(&mut third)).await;
    assert!(waited.is_err(), "a third connection was served: {waited:?}");
    drop(first);
    let (status, _) = tokio::time::timeout(Duration::from_secs(5), read_response(&mut third))
        .await
        .expect("the third connection was never served")
        .unwrap();
    assert_eq!(status, 200);
}

/// At the cap, a connection of the client holding the most gives way to a new one (an idle
/// one first). A few clients could hold every connection with one request each a minute
/// (four addresses of 256, the defaults), and everyone else waited in the accept queue.
#[tokio::test(flavor = "multi_thread")]
async fn at_the_cap_the_client_holding_the_most_gives_way() {
    let get = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let (greedy, modest, newcomer): (std::net::IpAddr, std::net::IpAddr, std::net::IpAddr) = (
        [127, 0, 0, 3].into(),
        [127, 0, 0, 4].into(),
        [127, 0, 0, 5].into(),
    );
    let server = server(|_| {});
    let addr = listen(
        server.router.clone(),
        &server_limits(|l| {
            l.max_connections = 4;
            l.max_connections_per_client = 3;
        }),
    )
    .await;
    let mut held = Vec::new();
    for from in [greedy, greedy, greedy, modest] {
        let mut stream = connect_from(from, addr, get).await;
        assert_eq!(read_response(&mut stream).await.unwrap().0, 200);
        held.push(stream);
    }
    let started = Instant::now();
    let mut new = connect_from(newcomer, addr, get).await;
    let (status, _) = tokio::time::timeout(Duration::from_secs(2), read_response(&mut new))
        .await
        .expect("a newcomer at the cap was not served")
        .unwrap();
    assert_eq!(status, 200);
    eprintln!("served at the cap in {:?}", started.elapsed());
    // One of the greedy client's connections made room; the modest client's is still open.
    let mut modest_stream = held.pop().unwrap();
    modest_stream.write_all(get).await.unwrap();
    assert_eq!(read_response(&mut modest_stream).await.unwrap().0, 200);
    let mut closed = 0;
    for stream in &mut held {
        if closed_within(stream, Duration::from_millis(200)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 1, "the greedy client's connections closed");
    // A request in progress does not protect a connection (a body trickling in, or a
    // `GET /playground/hold`, takes no work slot): with no idle one, the greedy client's
    // busy connection gives way, and the modest client's idle one stays.
    drop((new, held, modest_stream));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut busy = Vec::new();
    for _ in 0..3 {
        busy.push(busy_connection_from(greedy, addr).await);
    }
    let mut modest_stream = connect_from(modest, addr, get).await;
    assert_eq!(read_response(&mut modest_stream).await.unwrap().0, 200);
    let mut again = connect_from(newcomer, addr, get).await;
    let (status, _) = tokio::time::timeout(Duration::from_secs(2), read_response(&mut again))
        .await
        .expect("a newcomer beside busy connections was not served")
        .unwrap();
    assert_eq!(status, 200);
    modest_stream.write_all(get).await.unwrap();
    assert_eq!(read_response(&mut modest_stream).await.unwrap().0, 200);
    let mut closed = 0;
    for stream in &mut busy {
        if closed_within(stream, Duration::from_millis(200)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 1, "the greedy client's busy connections closed");
}

/// A connection whose request holds a work slot never gives way at the cap: closing it
/// would only throw its answer away, and the work would go on. A newcomer waits for one of
/// them to end.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_at_work_never_gives_way() {
    let server = server(|c| c.limits.call_timeout_ms = 1_500);
    let addr = listen(
        server.router.clone(),
        &server_limits(|l| {
            l.max_connections = 3;
            l.max_connections_per_client = 3;
        }),
    )
    .await;
    let spin = serde_json::json!({"zobject": {"Z1K1": "Z7",
        "Z7K1": {"Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10900K1",
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6", "Z8K3": ["Z20"],
            "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": "Z10900",
                     "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600",
                               "Z16K2": "function Z10900( Z10900K1 ) { while ( true ) {} }"}}],
            "Z8K5": "Z10900"},
        "Z10900K1": "spin"}})
    .to_string();
    let greedy: std::net::IpAddr = [127, 0, 0, 3].into();
    let mut working = Vec::new();
    for _ in 0..3 {
        working.push(connect_from(greedy, addr, &post_request(EVALUATE, None, &spin)).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let get = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut newcomer = connect_from([127, 0, 0, 4].into(), addr, get).await;
    let (status, _) = tokio::time::timeout(Duration::from_secs(10), read_response(&mut newcomer))
        .await
        .expect("the newcomer was never served")
        .unwrap();
    assert_eq!(status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "served after {:?}, before any call ended: a connection at work gave way",
        started.elapsed()
    );
    for stream in &mut working {
        let (status, body) = read_response(stream)
            .await
            .expect("a call's connection was cut");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("Z558"), "{body}");
    }
}

/// A connection from `from` (any loopback address) to `addr`, with `bytes` sent.
async fn connect_from(
    from: std::net::IpAddr,
    addr: std::net::SocketAddr,
    bytes: &[u8],
) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

/// One address may hold at most `max_connections_per_client` of the listener's connections:
/// its next ones are closed at once, while other addresses, and a trusted proxy, are served.
/// One address used to be able to hold every connection (1024 by default).
#[tokio::test(flavor = "multi_thread")]
async fn one_address_holds_at_most_its_share_of_the_connections() {
    let get = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let (greedy, other): (std::net::IpAddr, std::net::IpAddr) =
        ([127, 0, 0, 3].into(), [127, 0, 0, 4].into());
    let server = server(|_| {});
    let addr = listen(
        server.router.clone(),
        &server_limits(|l| {
            l.max_connections = 8;
            l.max_connections_per_client = 2;
        }),
    )
    .await;
    let first = connect_from(greedy, addr, b"").await;
    let _second = connect_from(greedy, addr, b"").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = connect_from(greedy, addr, get).await;
    assert!(
        closed_within(&mut third, Duration::from_secs(2)).await,
        "a third connection of one address was kept"
    );
    let mut neighbour = connect_from(other, addr, get).await;
    assert_eq!(read_response(&mut neighbour).await.unwrap().0, 200);
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = connect_from(greedy, addr, get).await;
    assert_eq!(read_response(&mut again).await.unwrap().0, 200);

    let proxied = listen(
        server.router.clone(),
        &server_limits(|l| {
            l.max_connections_per_client = 2;
            l.trusted_proxies = vec!["127.0.0.3".to_owned()];
        }),
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from(greedy, proxied, get).await);
    }
    for stream in &mut held {
        assert_eq!(
            read_response(stream).await.unwrap().0,
            200,
            "a proxy's connection"
        );
    }
}

/// A large answer stays in memory until its client reads it: a client that asks for large
/// answers and reads none holds at most its share of them
/// (`max_unsent_response_bytes_per_client`) beside the one it always gets; past that its large
/// responses are 503, other clients' are not, and reading frees its share. Before, it held
/// every one until the idle timeout (60 s): 256 connections of 8 MiB answers from one address.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_reads_no_answers_holds_at_most_its_share_of_them() {
    use tokio::io::AsyncReadExt;
    const BIG: usize = 16 * 1024 * 1024;
    let app = axum::Router::new().route("/big", axum::routing::get(|| async { vec![b'x'; BIG] }));
    let addr = listen(
        app,
        &server_limits(|l| l.max_unsent_response_bytes_per_client = 1024 * 1024),
    )
    .await;
    let get = b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let (reader, other): (std::net::IpAddr, std::net::IpAddr) =
        ([127, 0, 0, 5].into(), [127, 0, 0, 6].into());
    // Asked for, and not read: far more than the kernel's buffers take.
    let mut unread = connect_from(reader, addr, get).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut second = connect_from(reader, addr, get).await;
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), read_response(&mut second))
        .await
        .expect("no answer")
        .expect("connection closed");
    assert_eq!(status, 503, "a second unread answer was held too");
    assert!(body.contains("waiting to be read"), "{body}");
    // Another client is served in full.
    let mut neighbour = connect_from(other, addr, get).await;
    let (status, body) = read_response(&mut neighbour).await.unwrap();
    assert_eq!((status, body.len()), (200, BIG));
    // Once the first answer is read, the client gets the next.
    let mut received = 0;
    let mut chunk = vec![0u8; 1 << 16];
    while received < BIG {
        let n = unread.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the first answer was cut");
        received += n;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = connect_from(reader, addr, get).await;
    let (status, body) = read_response(&mut third).await.unwrap();
    assert_eq!((status, body.len()), (200, BIG));
}

/// Behind a trusted proxy, each client the proxy forwards for has its own share of the unsent
/// answers, as it has its own work slots: the proxy's connections used to count under no
/// client, bounded by the listener's limit only, so a client behind a proxy that does not
/// buffer (Envoy, HAProxy, Traefik) held as many unread answers as the listener allowed, and
/// every other client's large answers were 503 (the second unread answer here was 200).
#[tokio::test(flavor = "multi_thread")]
async fn a_client_behind_a_proxy_that_reads_no_answers_holds_at_most_its_share_of_them() {
    const BIG: usize = 16 * 1024 * 1024;
    let app = axum::Router::new().route("/big", axum::routing::get(|| async { vec![b'x'; BIG] }));
    let proxy: std::net::IpAddr = [127, 0, 0, 9].into();
    let addr = listen(
        app,
        &server_limits(|l| {
            l.max_unsent_response_bytes_per_client = 1024 * 1024;
            l.trusted_proxies = vec![proxy.to_string()];
        }),
    )
    .await;
    let get = |client: &str| {
        format!("GET /big HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: {client}\r\n\r\n")
    };
    let _unread = connect_from(proxy, addr, get("198.51.100.1").as_bytes()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut second = connect_from(proxy, addr, get("198.51.100.1").as_bytes()).await;
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), read_response(&mut second))
        .await
        .expect("no answer")
        .expect("connection closed");
    assert_eq!(
        status, 503,
        "a second unread answer of the same client was held too"
    );
    assert!(body.contains("waiting to be read"), "{body}");
    // Another client behind the same proxy is served in full.
    let mut neighbour = connect_from(proxy, addr, get("198.51.100.2").as_bytes()).await;
    let (status, body) = read_response(&mut neighbour).await.unwrap();
    assert_eq!((status, body.len()), (200, BIG));
}

/// A listening server whose store takes 100 ms to check a token and never checks one at
/// once (as PostgreSQL's): the server, its store's counts, an editor's token and the
/// server's address.
async fn slow_token_checks() -> (
    crate::common::Server,
    std::sync::Arc<crate::common::Counting>,
    String,
    std::net::SocketAddr,
) {
    let data_dir = tempfile::tempdir().unwrap();
    let config = zeval_server::Config {
        data_dir: data_dir.path().to_path_buf(),
        ..zeval_server::Config::default()
    };
    let (server, counting) = crate::common::counting_server(config, data_dir);
    let editor = crate::common::token(&server, "ed", zeval_store::Role::Editor);
    counting
        .token_check_ms
        .store(100, std::sync::atomic::Ordering::SeqCst);
    let addr = listen(server.router.clone(), &Limits::default()).await;
    (server, counting, editor, addr)
}

/// Where the store cannot check tokens at once (PostgreSQL), checks wait in one queue per
/// process, two at a time. One client's connections sending made-up tokens held every real
/// token holder behind them: here 32 connections of checks of 100 ms each kept another
/// client's valid token waiting past the second a check may take (503 `token_check_busy`).
/// A client now has at most two checks waiting (429 past them), so the other's waits behind
/// two at most; and a token found valid is remembered, so its holder's next request does
/// not wait at all.
#[tokio::test(flavor = "multi_thread")]
async fn one_clients_made_up_tokens_do_not_hold_up_another_clients_token() {
    use std::sync::atomic::Ordering;
    let (_server, counting, editor, addr) = slow_token_checks().await;
    let healthz = |token: &str| {
        format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n")
    };
    let (attacker, user): (std::net::IpAddr, std::net::IpAddr) =
        ([127, 0, 0, 5].into(), [127, 0, 0, 6].into());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attackers: Vec<_> = (0..32)
        .map(|n| {
            let stop = std::sync::Arc::clone(&stop);
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut statuses = Vec::new();
                // A connection kept alive while the server keeps it: a new one per request
                // ran the machine out of ports.
                let mut open: Option<tokio::net::TcpStream> = None;
                while !stop.load(Ordering::SeqCst) {
                    let junk = format!("made-up-{n}-{}", statuses.len());
                    if open.is_none() {
                        open = Some(connect_from(attacker, addr, b"").await);
                    }
                    let stream = open.as_mut().expect("connected");
                    if stream.write_all(healthz(&junk).as_bytes()).await.is_err() {
                        open = None;
                        continue;
                    }
                    let Some((status, _)) = read_response(stream).await else {
                        open = None;
                        continue;
                    };
                    statuses.push(status);
                    if status == 429 {
                        // As fast as the refusals come, the attackers took the test's two
                        // cores, and the valid token's wait was the CPU's, not the queue's.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                statuses
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ask = || async {
        let started = std::time::Instant::now();
        let mut stream = connect_from(user, addr, healthz(&editor).as_bytes()).await;
        let answer = tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream))
            .await
            .expect("no answer")
            .expect("connection closed");
        (answer, started.elapsed())
    };
    let ((status, body), took) = ask().await;
    stop.store(true, Ordering::SeqCst);
    let mut statuses = Vec::new();
    for attacker in attackers {
        statuses.extend(attacker.await.unwrap());
    }
    // The attackers' checks still running (their connections closed) end within a second.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let checks = counting.token_checks.load(Ordering::SeqCst);
    let ((again, _), took_again) = ask().await;
    let checked_again = counting.token_checks.load(Ordering::SeqCst) - checks;
    eprintln!("the valid token: {took:?}; remembered: {took_again:?}");
    assert_eq!(status, 200, "after {took:?}: {body}");
    // Behind two checks of 100 ms at most, where it waited behind 32 past the second a check
    // may take.
    assert!(
        took < Duration::from_millis(900),
        "the valid token waited {took:?} behind another client's"
    );
    assert_eq!(again, 200);
    assert_eq!(checked_again, 0, "a token found valid was checked again");
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        refused > 0 && statuses.iter().all(|s| matches!(s, 401 | 429)),
        "{statuses:?}"
    );
}

/// A client that sends many requests at once on a token not yet checked (on a store that
/// cannot check at once) has it checked once: the others wait for that check's answer, and
/// take none of the client's places among the checks waiting. Each taking its own, the third
/// and later were 429.
#[tokio::test(flavor = "multi_thread")]
async fn requests_sent_at_once_with_a_new_token_have_it_checked_once() {
    use std::sync::atomic::Ordering;
    let (_server, counting, editor, addr) = slow_token_checks().await;
    let healthz = format!(
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {editor}\r\n\r\n"
    );
    let client: std::net::IpAddr = [127, 0, 0, 7].into();
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let healthz = healthz.clone();
            tokio::spawn(async move {
                let mut stream = connect_from(client, addr, healthz.as_bytes()).await;
                read_response(&mut stream).await.map(|(status, _)| status)
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap());
    }
    assert_eq!(statuses, vec![Some(200); 8]);
    assert_eq!(counting.token_checks.load(Ordering::SeqCst), 1);
}

/// The playground's guests and files are shared bytes: a response of theirs waiting to be
/// read holds no memory of its own, and is not counted among the unsent. Counted, one client
/// that asked for a guest and read nothing made every other client's large answers 503
/// (the Python guest is 20 MB; by default 16 addresses filled the listener's 256 MiB).
#[tokio::test(flavor = "multi_thread")]
async fn an_unread_guest_holds_back_no_other_answer() {
    const GUEST: usize = 16 * 1024 * 1024;
    let guests = tempfile::tempdir().unwrap();
    let bytes = vec![b'x'; GUEST];
    std::fs::write(guests.path().join("quickjs.wasm"), &bytes).unwrap();
    std::fs::write(guests.path().join("quickjs.version"), b"QuickJS-ng test\n").unwrap();
    // The guest's URL names its FNV-1a hash.
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let url = format!("/playground/guests/quickjs.{hash:016x}.wasm");
    let dir = guests.path().to_owned();
    let server = server(move |c| c.guest_dir = Some(dir));
    let addr = listen(
        server.router.clone(),
        &server_limits(|l| {
            l.max_unsent_response_bytes = 4 * 1024 * 1024;
            l.max_unsent_response_bytes_per_client = 1024 * 1024;
        }),
    )
    .await;
    let get = format!("GET {url} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let (reader, other): (std::net::IpAddr, std::net::IpAddr) =
        ([127, 0, 0, 7].into(), [127, 0, 0, 8].into());
    let _unread = connect_from(reader, addr, get.as_bytes()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut neighbour = connect_from(other, addr, get.as_bytes()).await;
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(10), read_response(&mut neighbour))
            .await
            .expect("no answer")
            .expect("connection closed");
    assert_eq!((status, body.len()), (200, GUEST), "{:.200}", body);
}

/// A request's head is buffered up to `MAX_HEADER_BYTES` (64 KiB): past that the answer is
/// 431 at once. hyper's own bound is about 400 KiB per connection, held until the header
/// timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_head_past_its_bound_is_refused_at_once() {
    let server = server(|_| {});
    let addr = listen(server.router.clone(), &Limits::default()).await;
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n".to_vec();
    while head.len() < 100 * 1024 {
        head.extend_from_slice(
            format!("X-Padding-{}: {}\r\n", head.len(), "p".repeat(4000)).as_bytes(),
        );
    }
    let started = Instant::now();
    let mut stream = connect(addr, &head).await;
    let answer = tokio::time::timeout(Duration::from_secs(2), read_response(&mut stream))
        .await
        .expect("100 KiB of headers were still being read after 2 s");
    assert_eq!(answer.map(|(status, _)| status), Some(431));
    assert!(started.elapsed() < Duration::from_secs(2));
    // A head within the bound is served.
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n".to_vec();
    while head.len() < 40 * 1024 {
        head.extend_from_slice(
            format!("X-Padding-{}: {}\r\n", head.len(), "p".repeat(4000)).as_bytes(),
        );
    }
    head.extend_from_slice(b"\r\n");
    let mut stream = connect(addr, &head).await;
    assert_eq!(
        read_response(&mut stream).await.map(|(status, _)| status),
        Some(200)
    );
}
