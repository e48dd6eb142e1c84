//! A throwaway PostgreSQL server for tests (shared with the end-to-end tests through
//! `#[path]`): Debian's `postgresql` binaries under `/usr/lib/postgresql/*/bin`, one server
//! per test binary run, started on first use in a temporary directory, listening only on a
//! unix socket there (`listen_addresses=''`), and one fresh database per test.
//!
//! Tests run as root, and PostgreSQL refuses to; as root the server runs as the `postgres`
//! user the package creates (`runuser`), owning the directory. A watchdog process stops the
//! server (`pg_ctl stop -m immediate`) and removes the directory once the test process has
//! gone, however it ended. Settings favour speed over durability (`fsync=off`): the data is
//! thrown away.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The running test server.
pub(crate) struct PostgresServer {
    /// The directory holding the data, the log and the socket.
    dir: PathBuf,
    /// Numbers the databases handed out.
    next: AtomicUsize,
}

/// The server of this process, started on first use. Panics (failing the test) when
/// PostgreSQL is not installed or does not start: `scripts/setup.sh` installs it.
pub(crate) fn server() -> &'static PostgresServer {
    static SERVER: OnceLock<Result<PostgresServer, String>> = OnceLock::new();
    match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(e) => panic!("no PostgreSQL server for the tests: {e}"),
    }
}

/// A URL of a new, empty database on the test server.
pub(crate) fn fresh_database() -> String {
    server().fresh_database()
}

impl PostgresServer {
    /// The URL of database `name`.
    pub(crate) fn url(&self, name: &str) -> String {
        format!(
            "postgresql://zeval@localhost/{name}?host={}&connect_timeout=10",
            self.dir.display()
        )
    }

    /// Creates a new empty database and returns its URL.
    pub(crate) fn fresh_database(&self) -> String {
        let name = format!("test_{}", self.next.fetch_add(1, Ordering::Relaxed));
        let mut admin = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .expect("connecting to the test server");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("creating a test database");
        self.url(&name)
    }
}

/// The backends serving zeval's idle connections to `url`, stopped (`SIGSTOP`) until
/// dropped: a server that takes statements into its sockets and never answers (stopped,
/// hung, swapping). Its other processes run on: new connections are served. Only idle
/// client backends: one stopped in the middle of its work (exiting, say) might hold a lock
/// the server's other databases, other tests', need.
pub(crate) struct StoppedBackends(Vec<i32>);

impl StoppedBackends {
    pub(crate) fn of(url: &str) -> Self {
        let pids: Vec<i32> = postgres::Client::connect(url, postgres::NoTls)
            .unwrap()
            .query(
                "SELECT pid FROM pg_stat_activity
                 WHERE application_name = 'zeval' AND datname = current_database()
                   AND state = 'idle' AND backend_type = 'client backend'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert!(!pids.is_empty(), "the store holds no idle connection");
        let stopped = StoppedBackends(pids);
        stopped.signal("-STOP");
        stopped
    }

    /// Sends `signal` to each backend; one that has ended meanwhile is skipped.
    fn signal(&self, signal: &str) {
        for pid in &self.0 {
            let _ = std::process::Command::new("kill")
                .args([signal, &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

impl Drop for StoppedBackends {
    fn drop(&mut self) {
        self.signal("-CONT");
    }
}

fn bin_dir() -> Result<PathBuf, String> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("/usr/lib/postgresql: {e} (apt-get install postgresql)"))?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no /usr/lib/postgresql/*/bin/initdb".into())
}

/// Runs `program` with `args`, as the `postgres` user when we are root.
fn run(as_postgres: bool, program: &Path, args: &[&str]) -> Result<(), String> {
    let mut command = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let output = command
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} {args:?} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

fn start() -> Result<PostgresServer, String> {
    let bin = bin_dir()?;
    let as_postgres = std::fs::metadata("/proc/self")
        .map_err(|e| e.to_string())?
        .uid()
        == 0;
    let dir = std::env::temp_dir().join(format!("zeval-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if as_postgres {
        let status = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("chown postgres: failed (is the postgres user there?)".into());
        }
    }
    let data = dir.join("data");
    let (data_s, dir_s, log_s) = (
        data.display().to_string(),
        dir.display().to_string(),
        dir.join("log").display().to_string(),
    );
    run(
        as_postgres,
        &bin.join("initdb"),
        &[
            "-D",
            &data_s,
            "-U",
            "zeval",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
    )?;
    // The watchdog first: whatever happens from here on, the server and the directory go
    // away with this process.
    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         {runas} {pg_ctl} -D {data_s} -m immediate stop >/dev/null 2>&1; rm -rf {dir_s}",
        pid = std::process::id(),
        runas = if as_postgres {
            "runuser -u postgres --"
        } else {
            ""
        },
        pg_ctl = bin.join("pg_ctl").display(),
    );
    Command::new("setsid")
        .args(["sh", "-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the watchdog: {e}"))?;
    let options = format!(
        "-c listen_addresses='' -k {dir_s} -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=200"
    );
    run(
        as_postgres,
        &bin.join("pg_ctl"),
        &[
            "-D", &data_s, "-l", &log_s, "-o", &options, "-w", "-t", "60", "start",
        ],
    )?;
    Ok(PostgresServer {
        dir,
        next: AtomicUsize::new(0),
    })
}
