//! Starting and stopping `zeval serve`, and a small HTTP client.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub(crate) const ZEVAL: &str = env!("CARGO_BIN_EXE_zeval");

/// The binary the tests run: `$ZEVAL_E2E_BINARY` when set (to run the suite against another
/// build, e.g. the last commit's, to see which tests fail without a change), else [`ZEVAL`].
pub(crate) fn zeval_binary() -> String {
    std::env::var("ZEVAL_E2E_BINARY").unwrap_or_else(|_| ZEVAL.to_owned())
}

/// A running `zeval serve`, stopped (SIGTERM, then wait) when dropped.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT` of the orchestrator API, when this role serves it.
    pub(crate) orchestrator: Option<String>,
    /// `http://127.0.0.1:PORT` of the evaluator API, when this role serves it.
    pub(crate) evaluator: Option<String>,
}

/// `zeval serve` on `listen` and `evaluator_listen` with its data in `data_dir`, its stdout
/// (where it prints its addresses) piped.
pub(crate) fn serve_command(listen: &str, evaluator_listen: &str, data_dir: &Path) -> Command {
    let mut command = Command::new(zeval_binary());
    command
        .args([
            "serve",
            "--listen",
            listen,
            "--evaluator-listen",
            evaluator_listen,
            "--data-dir",
        ])
        .arg(data_dir)
        .stdout(Stdio::piped());
    command
}

impl Server {
    /// Starts `zeval serve --data-dir DIR` on port 0 for both APIs with `args` and `env`
    /// added, and waits for the listeners it prints.
    pub(crate) fn start(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_on("127.0.0.1:0", data_dir, args, env)
    }

    /// An orchestrator node (`--role orchestrator`) reading its settings from `config`.
    pub(crate) fn start_orchestrator(
        data_dir: &Path,
        config: &Path,
        env: &[(&str, &str)],
    ) -> Server {
        let config = config.to_str().expect("a UTF-8 path");
        Server::start(
            data_dir,
            &["--role", "orchestrator", "--config", config],
            env,
        )
    }

    /// [`Server::start_orchestrator`] with `toml` written to `zeval.toml` in `data_dir`.
    pub(crate) fn start_orchestrator_configured(
        data_dir: &Path,
        toml: &str,
        env: &[(&str, &str)],
    ) -> Server {
        let config = data_dir.join("zeval.toml");
        std::fs::write(&config, toml).unwrap();
        Server::start_orchestrator(data_dir, &config, env)
    }

    /// [`Server::start`] with the evaluator API on `evaluator_listen` (to restart an
    /// evaluator where its orchestrator expects it).
    pub(crate) fn start_on(
        evaluator_listen: &str,
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        Server::start_listening("127.0.0.1:0", evaluator_listen, data_dir, args, env)
    }

    /// [`Server::start_on`] with the orchestrator API on `listen` too (to restart an
    /// orchestrator where its clients expect it).
    pub(crate) fn start_listening(
        listen: &str,
        evaluator_listen: &str,
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let mut command = serve_command(listen, evaluator_listen, data_dir);
        command.args(args).stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start zeval serve");
        let stdout = child.stdout.take().unwrap();
        let role_all = !args.contains(&"--role");
        let wanted = if role_all { 2 } else { 1 };
        let mut server = Server {
            child,
            orchestrator: None,
            evaluator: None,
        };
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        while seen < wanted {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("zeval serve exited before listening"))
                .unwrap();
            if let Some(url) = line.strip_prefix("orchestrator API on ") {
                server.orchestrator = Some(url.to_owned());
                seen += 1;
            } else if let Some(url) = line.strip_prefix("evaluator API on ") {
                server.evaluator = Some(url.to_owned());
                seen += 1;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        server
    }

    /// The process id of `zeval serve` (to read its memory from `/proc`).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn orch(&self) -> &str {
        self.orchestrator.as_deref().expect("no orchestrator API")
    }

    /// Sends SIGTERM and waits; returns whether it exited successfully (graceful shutdown).
    pub(crate) fn stop(mut self) -> bool {
        terminate(&mut self.child)
    }
}

fn terminate(child: &mut Child) -> bool {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    for _ in 0..100 {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            terminate(&mut self.child);
        }
    }
}

/// A user's token from `zeval user add`.
pub(crate) fn add_user(data_dir: &Path, name: &str, role: &str) -> String {
    add_user_with(data_dir, name, role, &[])
}

/// [`add_user`] with more options (`--database-url URL` for a PostgreSQL store).
pub(crate) fn add_user_with(data_dir: &Path, name: &str, role: &str, options: &[&str]) -> String {
    let output = Command::new(zeval_binary())
        .args(["user", "add", name, "--role", role])
        .args(options)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "zeval user add: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) text: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

pub(crate) fn request(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut response = match (method, body) {
        ("GET", _) => {
            let mut r = agent.get(url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call().unwrap()
        }
        (_, body) => {
            let mut r = match method {
                "PUT" => agent.put(url),
                _ => agent.post(url),
            };
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            let text = body.map(Value::to_string).unwrap_or_default();
            r.header("Content-Type", "application/json")
                .send(text.as_bytes())
                .unwrap()
        }
    };
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    Answer { status, text }
}

/// A canonical Z2 with an English label.
pub(crate) fn z2(zid: &str, value: Value) -> Value {
    serde_json::json!({
        "Z1K1": "Z2",
        "Z2K1": {"Z1K1": "Z6", "Z6K1": zid},
        "Z2K2": value,
        "Z2K3": {"Z1K1": "Z12", "Z12K1": ["Z11", {"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": format!("object {zid}")}]},
    })
}

/// Stores (as `token`) Z10000 "upper case" with one JavaScript implementation Z10001.
pub(crate) fn put_js_function(orch: &str, token: &str) {
    let function = z2(
        "Z10000",
        serde_json::json!({
            "Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10000K1",
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10001"], "Z8K5": "Z10000",
        }),
    );
    let implementation = z2(
        "Z10001",
        serde_json::json!({
            "Z1K1": "Z14", "Z14K1": "Z10000",
            "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600",
                      "Z16K2": "function Z10000( Z10000K1 ) { return Z10000K1.toUpperCase(); }"},
        }),
    );
    for (zid, object) in [("Z10000", function), ("Z10001", implementation)] {
        put_object(orch, token, zid, &object);
    }
}

/// Stores `object` as `zid` through the objects API of the orchestrator at `orch`, as the
/// holder of `token`, and asserts that the server took it.
pub(crate) fn put_object(orch: &str, token: &str, zid: &str, object: &Value) {
    let answer = request(
        "PUT",
        &format!("{orch}/v1/objects/{zid}"),
        Some(token),
        Some(object),
    );
    assert_eq!(answer.status, 200, "PUT {zid}: {}", answer.text);
}

pub(crate) fn call(orch: &str, token: Option<&str>, text: &str) -> Answer {
    let body = serde_json::json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": text}});
    request(
        "POST",
        &format!("{orch}/wikifunctions.org/v1/evaluate/"),
        token,
        Some(&body),
    )
}

/// The value of the unlabelled series `name` in the `/metrics` of the orchestrator at `orch`.
pub(crate) fn metric(orch: &str, name: &str) -> f64 {
    metric_if_any(orch, name).unwrap_or_else(|| panic!("{name} not in /metrics"))
}

/// [`metric`] of a series (`name`, labels included) that may not be there yet.
pub(crate) fn metric_if_any(orch: &str, name: &str) -> Option<f64> {
    let text = request("GET", &format!("{orch}/metrics"), None, None).text;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// A metadata value of a canonical Z22.
pub(crate) fn metadata<'a>(z22: &'a Value, key: &str) -> Option<&'a Value> {
    z22["Z22K2"]["K1"]
        .as_array()?
        .iter()
        .skip(1)
        .find(|p| p["K1"] == key)
        .map(|p| &p["K2"])
}

/// The process ids in a JSON list (such as `/_info`'s `workers.idle_pids`).
pub(crate) fn pids(list: &Value) -> Vec<u32> {
    list.as_array()
        .map(|pids| {
            pids.iter()
                .filter_map(Value::as_u64)
                .map(|pid| pid as u32)
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (up to 60 s) until the pool of the evaluator API at `evaluator` reports at least
/// `at_least` idle workers (they start in the background), and returns their pids.
pub(crate) fn idle_worker_pids(evaluator: &str, at_least: usize) -> Vec<u32> {
    let started = std::time::Instant::now();
    loop {
        let info = request("GET", &format!("{evaluator}/_info"), None, None).json();
        let idle = pids(&info["workers"]["idle_pids"]);
        if idle.len() >= at_least {
            return idle;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "fewer than {at_least} idle workers after 60 s: {info}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
