//! The suite's mock evaluator as an HTTP service on a loopback port, so that a run of the
//! orchestrator suite can send its code calls over the wire (Avro 0.0.4 over HTTP, as the
//! original orchestrator does) instead of calling the mock in process.
//!
//! It stands in for the original evaluator, which is outside the project: it decodes each
//! request with zeval's own decoder (`zeval_evaluator::wire::decode`), looks up
//! `functionName` among the suite's presets and answers the preset's status and body. A
//! name without a preset closes the connection unanswered, a failure at the network level
//! as in the original's suite. Requests that are not the executor form, or do not decode,
//! are answered 400 with the reason.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use zeval_evaluator::wire::{self, Request};
use zeval_zobject::Value;

use crate::orchestrator::preset_reply;

/// The largest request body read (the suite's requests are a few kilobytes).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The largest header section read, in lines.
const MAX_HEADER_LINES: usize = 100;

/// A running mock evaluator service; it stops when dropped.
pub struct MockEvaluatorService {
    address: SocketAddr,
    stopping: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    acceptor: Option<JoinHandle<()>>,
}

impl MockEvaluatorService {
    /// Starts the service on an unused loopback port, answering from `presets`.
    pub fn start(presets: Arc<HashMap<String, Value>>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let acceptor = {
            let stopping = stopping.clone();
            let requests = requests.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let presets = presets.clone();
                    let requests = requests.clone();
                    std::thread::spawn(move || {
                        // A connection that breaks is the client's to report.
                        let _ = serve_connection(stream, &presets, &requests);
                    });
                }
            })
        };
        Ok(MockEvaluatorService {
            address,
            stopping,
            requests,
            acceptor: Some(acceptor),
        })
    }

    /// The evaluate route, as an orchestrator's evaluator URL.
    pub fn url(&self) -> String {
        format!("http://{}/wikifunctions.org/v1/evaluate/", self.address)
    }

    /// How many requests arrived so far (answered or not).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for MockEvaluatorService {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which then sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Reads one HTTP/1.1 request and answers it (or closes the connection unanswered).
fn serve_connection(
    stream: TcpStream,
    presets: &HashMap<String, Value>,
    requests: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        return Ok(()); // the wake-up connection of `Drop`
    }
    let mut content_length = 0;
    let mut content_type = None;
    for _ in 0..MAX_HEADER_LINES {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => content_length = value.parse().unwrap_or(0),
                "content-type" => content_type = Some(value.to_owned()),
                _ => {}
            }
        }
    }
    if content_length > MAX_BODY_BYTES {
        return respond(stream, 413, "the body is too large");
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body)?;
    requests.fetch_add(1, Ordering::SeqCst);
    let executor = match wire::decode(&body, content_type.as_deref()) {
        Ok(Request::Executor(executor)) => executor,
        Ok(Request::FunctionCall { .. }) => {
            return respond(stream, 400, "expected the executor form (Avro 0.0.4)");
        }
        Err(error) => return respond(stream, 400, &error.to_string()),
    };
    let name = executor.function_name.clone().unwrap_or_default();
    let argument = |key: &str| executor.function_arguments.get(key).cloned();
    match preset_reply(presets, &name, argument) {
        Ok(reply) => {
            let text = serde_json::to_string(&reply.body).unwrap_or_default();
            respond(stream, reply.status, &text)
        }
        // No answer at all: the client sees the connection close.
        Err(_) => Ok(()),
    }
}

fn respond(mut stream: TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        if (200..300).contains(&status) {
            "OK"
        } else {
            "Error"
        },
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}
