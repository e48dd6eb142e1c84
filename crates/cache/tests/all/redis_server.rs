//! A throwaway `redis-server` for tests (shared with `crates/server`'s unit tests and the
//! end-to-end tests through `#[path]`): Debian's package, installed by `scripts/setup.sh`, one server per test on a
//! unix socket in a temporary directory, killed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` of one test: no TCP port, no persistence.
pub(crate) struct RedisServer {
    child: Child,
    pub(crate) socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub(crate) fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// [`RedisServer::start`] with more `redis-server` options.
    pub(crate) fn start_with(options: &[&str]) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("redis.sock");
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--unixsocket",
            ])
            .arg(&socket)
            .args(options)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server (Debian package redis-server; scripts/setup.sh installs it)");
        let server = RedisServer {
            child,
            socket,
            _dir: dir,
        };
        let started = Instant::now();
        while server.command(&["PING"]).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not answer within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub(crate) fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Runs one command on a fresh connection.
    pub(crate) fn command(&self, args: &[&str]) -> ::redis::RedisResult<::redis::Value> {
        let client = ::redis::Client::open(self.url())?;
        let mut connection = client.get_connection_with_timeout(Duration::from_secs(1))?;
        let mut cmd = ::redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query(&mut connection)
    }

    /// The bytes Redis has sent to all its clients so far (`INFO stats`).
    #[allow(
        dead_code,
        reason = "the end-to-end tests include this file and count no bytes"
    )]
    pub(crate) fn output_bytes(&self) -> u64 {
        let ::redis::Value::BulkString(info) = self.command(&["INFO", "stats"]).unwrap() else {
            panic!("INFO answered no text");
        };
        String::from_utf8_lossy(&info)
            .lines()
            .find_map(|line| line.strip_prefix("total_net_output_bytes:"))
            .and_then(|bytes| bytes.trim().parse().ok())
            .expect("INFO stats without total_net_output_bytes")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
