//! `zeval bench result-cache`: what a call costs over HTTP when the result cache answers it,
//! against the same call computed, in the same run.
//!
//! It starts `zeval serve` (this binary) on loopback with a temporary data directory, stores
//! a composition that calls a function that calls a JavaScript function (two levels down),
//! and times, over one HTTP/1.1 keep-alive connection:
//! - **hit**: the same call again and again (answered from the cache);
//! - **miss**: a new argument each time (looked up, computed, stored);
//! - **bypass**: the same call with `"bypassCache": true` (computed, stored, no lookup).
//!
//! `--redis-url` runs the server with the Redis backend instead of the in-process one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{z2, z17};

/// Time cache hits against misses over HTTP.
#[derive(clap::Args)]
pub(crate) struct ResultCacheBench {
    /// Calls per kind (hit, miss, bypass).
    #[arg(long, default_value_t = 1000)]
    calls: usize,
    /// Use this Redis (`redis://…`, `unix:///…`) as the server's cache backend.
    #[arg(long)]
    redis_url: Option<String>,
}

/// A `zeval serve` child, stopped when dropped.
pub(super) struct Served {
    child: Child,
    pub(super) address: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ResultCacheBench {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        let calls = self.calls.max(10);
        let data = tempfile::tempdir()?;
        let exe = std::env::current_exe()?;
        let token = add_editor(&exe, data.path())?;
        let served = start(&exe, data.path(), self.redis_url.as_deref(), true)?;
        let mut client = Client::connect(&served.address)?;
        client.put_all(&token, &objects())?;
        let call = |text: &str, bypass: bool| {
            let mut body = json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10002", "Z10002K1": text}});
            if bypass {
                body["bypassCache"] = json!(true);
            }
            body.to_string()
        };
        let path = "/wikifunctions.org/v1/evaluate/";
        // Warm up: the guests, the connection, the object cache; then the entry to hit.
        for i in 0..20 {
            client.evaluate(
                path,
                &call(&format!("warm {i}"), false),
                &format!("WARM {i}"),
            )?;
        }
        client.evaluate(path, &call("hit me", false), "HIT ME")?;
        let mut hits = Vec::with_capacity(calls);
        let mut misses = Vec::with_capacity(calls);
        let mut bypasses = Vec::with_capacity(calls);
        let hit_body = call("hit me", false);
        let bypass_body = call("hit me", true);
        // Interleaved, so that drift on the machine touches all three alike.
        for i in 0..calls {
            let started = Instant::now();
            let cached = client.evaluate(path, &hit_body, "HIT ME")?;
            hits.push(started.elapsed());
            if !cached {
                bail!("call {i} of the hit series was not answered from the cache");
            }
            let miss_body = call(&format!("miss {i}"), false);
            let started = Instant::now();
            let cached = client.evaluate(path, &miss_body, &format!("MISS {i}"))?;
            misses.push(started.elapsed());
            if cached {
                bail!("call {i} of the miss series came from the cache");
            }
            let started = Instant::now();
            client.evaluate(path, &bypass_body, "HIT ME")?;
            bypasses.push(started.elapsed());
        }
        let backend = if self.redis_url.is_some() {
            "Redis"
        } else {
            "in process"
        };
        println!(
            "zeval bench result-cache ({backend}): {calls} calls per kind over one HTTP/1.1 keep-alive connection"
        );
        println!("composition -> composition -> JavaScript (two levels down)");
        for (name, times) in [
            ("hit", &mut hits),
            ("miss", &mut misses),
            ("bypass", &mut bypasses),
        ] {
            times.sort();
            println!(
                "  {name:<7} p50 {:>8.3} ms   p99 {:>8.3} ms",
                ms(percentile(times, 0.5)),
                ms(percentile(times, 0.99))
            );
        }
        drop(served);
        Ok(ExitCode::SUCCESS)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Adds an editor to the store in `data` and returns its token.
pub(super) fn add_editor(exe: &std::path::Path, data: &std::path::Path) -> anyhow::Result<String> {
    let added = Command::new(exe)
        .args(["user", "add", "bench", "--role", "editor", "--data-dir"])
        .arg(data)
        .output()?;
    if !added.status.success() {
        bail!("zeval user add: {}", String::from_utf8_lossy(&added.stderr));
    }
    Ok(String::from_utf8(added.stdout)?.trim().to_owned())
}

pub(super) fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Starts `zeval serve` on free loopback ports, with the result cache on or off, and waits
/// for its orchestrator address.
pub(super) fn start(
    exe: &std::path::Path,
    data: &std::path::Path,
    redis_url: Option<&str>,
    cache: bool,
) -> anyhow::Result<Served> {
    let mut command = Command::new(exe);
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--evaluator-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data)
        .env("ZEVAL_CACHE", if cache { "true" } else { "false" })
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(url) = redis_url {
        command.env("ZEVAL_CACHE_REDIS_URL", url);
    }
    let mut child = command.spawn().context("starting zeval serve")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut served = Served {
        child,
        address: String::new(),
    };
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(url) = line.strip_prefix("orchestrator API on http://") {
            served.address = url.trim().to_owned();
            break;
        }
    }
    if served.address.is_empty() {
        bail!("zeval serve exited before listening");
    }
    std::thread::spawn(move || for _ in lines {});
    Ok(served)
}

/// The objects: Z10002(x) = Z10001(x) = Z10000(x) = x.toUpperCase() in JavaScript (Z10003).
fn objects() -> Vec<(&'static str, Value)> {
    let function = |zid: &str, implementation: Value| {
        z2(
            zid,
            json!({"Z1K1": "Z8",
                "Z8K1": ["Z17", z17(zid, 1, json!("Z6"))],
                "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14", implementation], "Z8K5": zid}),
        )
    };
    let composition = |caller: &str, callee: &str| {
        json!({"Z1K1": "Z14", "Z14K1": caller, "Z14K2": {
            "Z1K1": "Z7", "Z7K1": callee,
            format!("{callee}K1"): {"Z1K1": "Z18", "Z18K1": format!("{caller}K1")}}})
    };
    vec![
        ("Z10000", function("Z10000", json!("Z10003"))),
        (
            "Z10003",
            z2(
                "Z10003",
                json!({"Z1K1": "Z14", "Z14K1": "Z10000",
                "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600",
                          "Z16K2": "function Z10000( Z10000K1 ) { return Z10000K1.toUpperCase(); }"}}),
            ),
        ),
        (
            "Z10001",
            function("Z10001", composition("Z10001", "Z10000")),
        ),
        (
            "Z10002",
            function("Z10002", composition("Z10002", "Z10001")),
        ),
    ]
}

/// A minimal HTTP/1.1 client on one keep-alive connection, so the figures hold the server's
/// time and the loopback, not a client library's.
pub(super) struct Client {
    reader: BufReader<TcpStream>,
    host: String,
}

impl Client {
    pub(super) fn connect(address: &str) -> anyhow::Result<Client> {
        let stream = TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Client {
            reader: BufReader::new(stream),
            host: address.to_owned(),
        })
    }

    pub(super) fn send(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.reader.get_mut().write_all(request.as_bytes())?;
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line)?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {status_line:?}"))?;
        let mut length = None;
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("the connection closed mid-answer");
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let length = length.context("an answer without Content-Length")?;
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, body))
    }

    /// Stores `objects` (ZID, Z2) through `PUT /v1/objects/{zid}` as the editor `token`.
    pub(super) fn put_all(
        &mut self,
        token: &str,
        objects: &[(impl AsRef<str>, Value)],
    ) -> anyhow::Result<()> {
        for (zid, object) in objects {
            let zid = zid.as_ref();
            let (status, body) = self.send(
                "PUT",
                &format!("/v1/objects/{zid}"),
                Some(token),
                &object.to_string(),
            )?;
            if status != 200 {
                bail!("PUT {zid}: {status} {}", String::from_utf8_lossy(&body));
            }
        }
        Ok(())
    }

    /// Sends an evaluate request, checks the answer's value, and says whether it came from
    /// the cache.
    fn evaluate(&mut self, path: &str, body: &str, expected: &str) -> anyhow::Result<bool> {
        let (status, answer) = self.send("POST", path, None, body)?;
        let text = String::from_utf8_lossy(&answer);
        let z22: Value = serde_json::from_slice(&answer)
            .with_context(|| format!("{status}: not JSON: {text}"))?;
        if status != 200 || z22["Z22K1"] != expected {
            bail!("expected {expected:?}, got {status}: {text}");
        }
        Ok(text.contains("\"functionCallCachedOn\""))
    }
}
