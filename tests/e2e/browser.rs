//! The web playground in a real browser: Debian's Chromium (`/usr/bin/chromium`, installed
//! by scripts/setup.sh) driven headless over the Chrome DevTools Protocol on a pipe
//! (`--remote-debugging-pipe`: JSON messages separated by NUL bytes, read by Chromium on its
//! fd 3 and written on its fd 4), against a real `zeval serve`. Nothing is downloaded.
//!
//! Screenshots of each page go to `$CARGO_TARGET_TMPDIR/playground-shots/` (the path is
//! printed) and are copied to `/tmp/playground-shots/` for reviewers.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Server, ZEVAL, add_user, request, z2};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Waits for the page and for each CDP answer are bounded by this.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Chromium, headless, with one page attached.
struct Browser {
    child: Child,
    to_browser: ChildStdin,
    from_browser: Receiver<Value>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium)"
        );
        let profile = tempfile::tempdir().unwrap();
        // fd 3 (Chromium reads) is our stdin pipe, fd 4 (it writes) our stdout pipe: the
        // shell moves them, so no unsafe fd juggling is needed here.
        let script = format!(
            "exec 3<&0 4>&1 0</dev/null 1>&2; exec {CHROMIUM} --headless --no-sandbox \
             --disable-gpu --disable-quic --no-first-run --no-default-browser-check \
             --disable-background-networking --disable-component-update --disable-sync \
             --disable-extensions --remote-debugging-pipe --window-size=1280,900 \
             --user-data-dir={} about:blank",
            profile.path().display()
        );
        let mut child = Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let to_browser = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut message = Vec::new();
            loop {
                message.clear();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if message.last() == Some(&0) {
                    message.pop();
                }
                if let Ok(value) = serde_json::from_slice::<Value>(&message)
                    && tx.send(value).is_err()
                {
                    return;
                }
            }
        });
        let mut browser = Browser {
            child,
            to_browser,
            from_browser: rx,
            next_id: 1,
            session: String::new(),
            _profile: profile,
        };
        let target = browser.call_root("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().unwrap().to_owned();
        let attached = browser.call_root(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        browser.call("Page.enable", json!({}));
        browser.call("Runtime.enable", json!({}));
        browser
    }

    fn send(&mut self, method: &str, params: Value, session: Option<String>) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.to_browser.write_all(&bytes).unwrap();
        self.to_browser.flush().unwrap();
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from_browser.recv_timeout(left) {
                Ok(answer) if answer["id"] == json!(id) => {
                    if let Some(error) = answer.get("error") {
                        panic!("{method} failed: {error}");
                    }
                    return answer["result"].clone();
                }
                Ok(_event) => {}
                Err(RecvTimeoutError::Timeout) => panic!("{method}: no answer in {STEP_TIMEOUT:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("{method}: chromium went away"),
            }
        }
    }

    fn call_root(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None)
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(method, params, Some(session))
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    fn eval(&mut self, expression: &str) -> Value {
        let answer = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
        );
        if let Some(exception) = answer.get("exceptionDetails") {
            panic!("{expression}\nthrew {exception}");
        }
        answer["result"]["value"].clone()
    }

    fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for("document.readyState === 'complete'", "the page to load");
    }

    /// Waits until `condition` (a JS expression) is truthy; returns its value.
    fn wait_for(&mut self, condition: &str, what: &str) -> Value {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let value = self.eval(&format!(
                "(() => {{ try {{ return {condition}; }} catch {{ return null; }} }})()"
            ));
            if !(value.is_null() || value == json!(false) || value == json!("")) {
                return value;
            }
            if Instant::now() > deadline {
                let text = self.eval("document.body.innerText");
                panic!("timed out waiting for {what} ({condition}); the page says:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn text(&mut self, selector: &str) -> String {
        self.eval(&format!(
            "document.querySelector({})?.textContent ?? ''",
            json!(selector)
        ))
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Sets an input's value as typing would (so `input` listeners run).
    fn type_into(&mut self, selector: &str, text: &str) {
        self.eval(&format!(
            "(() => {{ const el = document.querySelector({}); el.focus(); el.value = {}; \
             el.dispatchEvent(new Event('input', {{bubbles: true}})); el.dispatchEvent(new Event('change', {{bubbles: true}})); }})()",
            json!(selector),
            json!(text)
        ));
    }

    fn click(&mut self, selector: &str) {
        self.eval(&format!(
            "document.querySelector({}).click()",
            json!(selector)
        ));
    }

    fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        );
    }

    /// A PNG of the whole page into `dir/name`.
    fn screenshot(&mut self, dir: &Path, name: &str) {
        let metrics = self.call("Page.getLayoutMetrics", json!({}));
        let size = &metrics["cssContentSize"];
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}}),
        );
        let png = base64_decode(shot["data"].as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(dir.join(name), &png).unwrap();
        let _ = std::fs::create_dir_all("/tmp/playground-shots");
        let _ = std::fs::write(Path::new("/tmp/playground-shots").join(name), &png);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.call_root("Browser.close", json!({}));
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (what CDP sends screenshots in).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter_map(value) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn shots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("playground-shots");
    std::fs::create_dir_all(&dir).unwrap();
    println!("screenshots in {}", dir.display());
    dir
}

/// The README's example, run as the README test runs it: function Z10000 "reverse a
/// string" with a JavaScript (Z10001) and a Python (Z10002) implementation, testers
/// Z10003 and Z10004.
fn run_readme_example(orch: &str, data: &Path) {
    let work = tempfile::tempdir().unwrap();
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &crate::readme::example_script()])
        .current_dir(work.path())
        .env("ZEVAL", ZEVAL)
        .env("ORCH", orch)
        .env("DATA", data)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the README example failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn put(orch: &str, token: &str, zid: &str, value: Value) {
    let answer = request(
        "PUT",
        &format!("{orch}/v1/objects/{zid}"),
        Some(token),
        Some(&z2(zid, value)),
    );
    assert_eq!(answer.status, 200, "PUT {zid}: {}", answer.text);
}

/// A one-string-argument function `zid` with implementations `implementations`.
fn string_function(zid: &str, implementations: &[&str]) -> Value {
    let mut list = vec![json!("Z14")];
    list.extend(implementations.iter().map(|i| json!(i)));
    json!({
        "Z1K1": "Z8",
        "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": format!("{zid}K1"),
                 "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11", {"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": "text"}]}}],
        "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": list, "Z8K5": zid,
    })
}

#[test]
fn the_playground_works_in_chromium() {
    let data = tempfile::tempdir().unwrap();
    // A short call deadline, so that the browser's deadline for the endless loop comes soon.
    let server = Server::start(data.path(), &[], &[("ZEVAL_CALL_TIMEOUT_MS", "4000")]);
    let orch = server.orch().to_owned();
    run_readme_example(&orch, data.path());
    let token = add_user(data.path(), "bob", "admin");
    // An endless loop (Z10100), and a function without implementations (Z10200) that gets
    // its Python implementation through the UI.
    put(
        &orch,
        &token,
        "Z10100",
        string_function("Z10100", &["Z10101"]),
    );
    put(
        &orch,
        &token,
        "Z10101",
        json!({"Z1K1": "Z14", "Z14K1": "Z10100", "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600",
               "Z16K2": "function Z10100( Z10100K1 ) { while (true) {} }"}}),
    );
    put(&orch, &token, "Z10200", string_function("Z10200", &[]));
    // For the figures: reverse in each language, and a heavier call, each with one implementation.
    for (function, implementation, language, code) in [
        (
            "Z10300",
            "Z10301",
            "Z600",
            "function Z10300( Z10300K1 ) { return Array.from( Z10300K1 ).reverse().join( '' ); }",
        ),
        (
            "Z10302",
            "Z10303",
            "Z610",
            "def Z10302(Z10302K1):\n    return Z10302K1[::-1]",
        ),
        (
            "Z10304",
            "Z10305",
            "Z600",
            "function Z10304( Z10304K1 ) { const fib = ( n ) => n < 2 ? n : fib( n - 1 ) + fib( n - 2 ); return String( fib( Number( Z10304K1 ) ) ); }",
        ),
    ] {
        put(
            &orch,
            &token,
            function,
            string_function(function, &[implementation]),
        );
        put(
            &orch,
            &token,
            implementation,
            json!({"Z1K1": "Z14", "Z14K1": function, "Z14K3": {"Z1K1": "Z16", "Z16K1": language, "Z16K2": code}}),
        );
    }

    let shots = shots_dir();
    let mut browser = Browser::start();

    // 1. The front page lists the stored functions; the README's is there.
    browser.goto(&format!("{orch}/"));
    browser.wait_for(
        "[...document.querySelectorAll('.results li')].some(li => li.textContent.includes('reverse a string'))",
        "the function list",
    );
    browser.screenshot(&shots, "01-home.png");
    // Searching finds it too.
    browser.type_into("#q", "reverse");
    browser.eval("document.querySelector('.topsearch').requestSubmit()");
    browser.wait_for(
        "location.pathname === '/search' && document.querySelector('.results a')?.getAttribute('href') === '/function/Z10000'",
        "search results",
    );
    browser.screenshot(&shots, "02-search.png");
    browser.click(".results a");
    browser.wait_for("document.querySelector('#call-form')", "the function page");

    // 2. Run it on the server, then in the browser: the same result.
    browser.type_into("#arg-Z10000K1", "stressed");
    browser.click("#run");
    browser.wait_for(
        "document.querySelector('#where-ran')?.textContent.includes('server')",
        "the server's result",
    );
    assert_eq!(browser.text("#result-value"), "desserts");
    // Details: the metadata map.
    browser.click("#details summary");
    let details = browser.text("#details");
    // Which implementation runs is the ranking's choice: either, with its runtime.
    assert!(
        (details.contains("implementationIdZ10001") && details.contains("QuickJS"))
            || (details.contains("implementationIdZ10002") && details.contains("CPython")),
        "{details}"
    );
    browser.screenshot(&shots, "03-function-server.png");

    browser.click("#where-browser");
    browser.click("#run");
    let ran = browser.wait_for(
        "document.querySelector('#where-ran')?.textContent.includes('browser') && document.querySelector('#where-ran').textContent",
        "the browser's result",
    );
    assert!(
        ran.as_str().unwrap().starts_with("ran in your browser, "),
        "{ran}"
    );
    assert_eq!(browser.text("#result-value"), "desserts");
    browser.click("#details summary");
    let details = browser.text("#details");
    assert!(
        (details.contains("implementationIdZ10001") && details.contains("QuickJS-ng"))
            || (details.contains("implementationIdZ10002") && details.contains("CPython")),
        "{details}"
    );
    assert_eq!(
        browser.eval("location.search"),
        json!("?Z10000K1=stressed&where=browser")
    );
    browser.screenshot(&shots, "04-function-browser.png");

    // 3. The testers matrix, cell by cell.
    browser.click("#run-tests");
    let done = browser.wait_for(
        "document.querySelector('#matrix-progress')?.textContent.startsWith('Done') && document.querySelector('#matrix-progress').textContent",
        "the testers matrix",
    );
    assert_eq!(done, json!("Done: 4 / 4 passed"));
    assert_eq!(
        browser.eval("document.querySelectorAll('#matrix td.pass').length"),
        json!(4)
    );
    browser.screenshot(&shots, "05-testers.png");

    // 4. An endless loop in the browser stops at its deadline; the next call runs in a
    //    fresh Worker.
    browser.goto(&format!(
        "{orch}/function/Z10100?Z10100K1=x&where=browser&run=1"
    ));
    let started = Instant::now();
    browser.wait_for(
        "document.querySelector('#result-value.error')",
        "the endless loop to time out",
    );
    let took = started.elapsed();
    assert_eq!(browser.text("#result-value"), "Function call timed out");
    assert!(
        took < Duration::from_secs(4 + 3),
        "the deadline was 4 s, the page answered after {took:?}"
    );
    let deadline_ms = browser.eval(
        "[...document.querySelectorAll('#details tr')].find(r => r.cells[0]?.textContent === 'deadline' || r.querySelector('th')?.textContent === 'deadline')?.querySelector('td').textContent",
    );
    let deadline_ms: f64 = deadline_ms
        .as_str()
        .unwrap()
        .trim_end_matches(" ms")
        .parse()
        .unwrap();
    assert!(
        deadline_ms > 2000.0 && deadline_ms <= 4000.0,
        "{deadline_ms}"
    );
    browser.click("#details summary");
    browser.screenshot(&shots, "06-timeout.png");
    // Same page (same pool): a normal call now.
    let replaced = browser.eval("import('/playground/browser-run.js').then(m => m.stats.replaced)");
    assert_eq!(replaced, json!(1), "the timed-out Worker was replaced");
    browser.eval("history.pushState(null, '', '/function/Z10000?Z10000K1=abc&where=browser&run=1'); dispatchEvent(new PopStateEvent('popstate'))");
    browser.wait_for(
        "document.querySelector('#result-value')?.textContent === 'cba' && document.querySelector('#where-ran').textContent.includes('browser')",
        "a normal call after the timeout",
    );
    let details = browser.text("#details");
    assert!(
        details.contains("workersReplacedAfterTimeouts1"),
        "{details}"
    );

    // 5. Sign in with a token, create a Python implementation through the UI, run it in
    //    the browser.
    browser.goto(&format!("{orch}/new/implementation?function=Z10200"));
    browser.wait_for("document.querySelector('#signin')", "the page");
    browser.click("#signin");
    browser.type_into("#token-input", &token);
    browser.eval("document.querySelector('#token-form').requestSubmit()");
    browser.wait_for(
        "document.querySelector('#impl-form')",
        "the implementation form",
    );
    browser.type_into("#impl-label", "shout in Python");
    browser.eval("const s = document.querySelector('#impl-language'); s.value = 'Z610'; s.dispatchEvent(new Event('change'))");
    assert!(
        browser.text("#impl-code").is_empty(),
        "a textarea's text is its value"
    );
    browser.type_into(
        "#impl-code",
        "def Z10200(Z10200K1):\n    # loud\n    return Z10200K1.upper() + '!'\n",
    );
    let highlighted = browser.eval("document.querySelectorAll('.code-editor .tok-keyword').length");
    assert!(highlighted.as_u64().unwrap() >= 2, "{highlighted}");
    browser.screenshot(&shots, "07-new-implementation.png");
    browser.click("#save");
    let saved = browser.wait_for(
        "document.querySelector('#saved')?.textContent || document.querySelector('#save-status .error')?.textContent",
        "the implementation to be saved",
    );
    assert!(saved.as_str().unwrap().starts_with("Saved as Z"), "{saved}");
    let stored = request("GET", &format!("{orch}/v1/objects/Z10200"), None, None).json();
    assert_eq!(
        stored["Z2K2"]["Z8K4"].as_array().unwrap().len(),
        2,
        "{stored}"
    );
    browser.goto(&format!(
        "{orch}/function/Z10200?Z10200K1=abc&where=browser&run=1"
    ));
    browser.wait_for(
        "document.querySelector('#result-value')?.textContent === 'ABC!' && document.querySelector('#where-ran').textContent.includes('browser')",
        "the new implementation to run in the browser",
    );
    browser.click("#details summary");
    assert!(browser.text("#details").contains("CPython"));
    browser.screenshot(&shots, "08-python-in-browser.png");
    // The server agrees.
    browser.click("#where-server");
    browser.click("#run");
    browser.wait_for(
        "document.querySelector('#where-ran')?.textContent.includes('server') && document.querySelector('#result-value').textContent === 'ABC!'",
        "the server's run of the new implementation",
    );
    // An admin approves it from the function page.
    let new_zid = saved.as_str().unwrap()["Saved as ".len()..]
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap()
        .to_owned();
    browser.wait_for(
        "document.querySelector('aside button.small')",
        "the approve button",
    );
    // The approval names the revisions the page showed: an edit of the function saved
    // meanwhile fails it, and nothing is approved.
    let mut function = request("GET", &format!("{orch}/v1/objects/Z10200"), None, None).json();
    function["Z2K3"] = json!({"Z1K1": "Z12", "Z12K1": ["Z11",
        {"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": "shout, relabelled"}]});
    let edited = request(
        "PUT",
        &format!("{orch}/v1/objects/Z10200"),
        Some(&token),
        Some(&function),
    );
    assert_eq!(edited.status, 200, "{}", edited.text);
    browser.click("aside button.small");
    let refused = browser.wait_for(
        "document.querySelector('aside .error')?.textContent",
        "the approval's refusal",
    );
    assert!(refused.as_str().unwrap().contains("409"), "{refused}");
    browser.goto(&format!("{orch}/function/Z10200"));
    browser.wait_for(
        "document.querySelector('aside button.small')",
        "the approve button, on the page as it is now",
    );
    browser.click("aside button.small");
    let approved = browser.wait_for(
        "document.querySelector('aside .ok')?.textContent",
        "the approval",
    );
    assert_eq!(approved, json!("approved by bob"));
    let stored = request("GET", &format!("{orch}/v1/objects/Z10200"), None, None).json();
    assert_eq!(stored["Z2K2"]["Z8K4"][1], json!(new_zid), "{stored}");

    // The other pages: an implementation, and editing a function (signed in).
    browser.goto(&format!("{orch}/object/Z10001"));
    browser.wait_for(
        "document.querySelector('.code-editor .tok-keyword')",
        "the implementation page",
    );
    assert!(browser.text("h1").starts_with("reverse in JavaScript"));
    browser.screenshot(&shots, "09-implementation.png");
    browser.goto(&format!("{orch}/edit/Z10000"));
    browser.wait_for("document.querySelector('#json-edit')", "the edit page");
    browser.screenshot(&shots, "10-edit-function.png");

    // The page's own bounds: output past the server's cap, memory past its limit, and
    // calls waiting for a Worker past the queue's length.
    let bounds = browser.eval(BOUNDS);
    assert_eq!(
        bounds["output"],
        json!("Function call exceeded the output limit of 8388608 bytes"),
        "{bounds}"
    );
    assert_eq!(
        bounds["memory"],
        json!("Function call exceeded the memory limit of 16 MiB"),
        "{bounds}"
    );
    assert_eq!(bounds["refused"], json!(20), "{bounds}");
    assert_eq!(bounds["answered"], json!(101), "{bounds}");

    // 6. Phone width: the function page still fits.
    browser.viewport(390, 844, true);
    browser.goto(&format!("{orch}/function/Z10000?Z10000K1=abc&run=1"));
    browser.wait_for(
        "document.querySelector('#result-value')?.textContent === 'cba'",
        "the result at phone width",
    );
    let overflow = browser.eval("document.documentElement.scrollWidth <= window.innerWidth");
    assert_eq!(overflow, json!(true), "the page is wider than a phone");
    browser.screenshot(&shots, "11-phone.png");

    // 7. Per call, server against browser, in this one run (printed for docs/benchmarks.md).
    browser.viewport(1280, 900, false);
    browser.goto(&format!("{orch}/function/Z10000"));
    browser.wait_for("document.querySelector('#call-form')", "the function page");
    let reverse = ("'stressed' + i", "[...input(i)].reverse().join('')");
    for (what, function, (input, expected), calls) in [
        ("JavaScript reverse", "Z10300", reverse, 100),
        ("Python reverse", "Z10302", reverse, 100),
        ("JavaScript fib(25)", "Z10304", ("'25'", "'75025'"), 20),
    ] {
        let script = BENCH
            .replace("Z10300", function)
            .replace("INPUT", input)
            .replace("EXPECTED", expected)
            .replace("CALLS", &calls.to_string());
        let bench = browser.eval(&script);
        println!(
            "per-call times of {what}, medians of {} calls (ms): server {}, browser {} (plan {} + run {})",
            bench["calls"],
            bench["server_ms"],
            bench["browser_ms"],
            bench["plan_ms"],
            bench["run_ms"]
        );
        for key in ["server_ms", "browser_ms", "plan_ms", "run_ms"] {
            assert!(bench[key].as_f64().unwrap() > 0.0, "{bench}");
        }
    }
    drop(browser);
    assert!(server.stop());
}

/// `CALLS` calls of function `Z10300` with `INPUT` (replaced by the function to measure, its
/// input and the expected answer `EXPECTED`, JavaScript expressions of `i`) each way, from
/// the page: on the server (POST evaluate, past the result cache), and in the browser (POST /v1/plan,
/// then a fresh instance in a Worker; both parts timed). Medians, in milliseconds.
const BENCH: &str = r#"(async () => {
  const { runPlan } = await import('/playground/browser-run.js');
  const N = CALLS;
  const input = (i) => INPUT;
  const reversed = (i) => EXPECTED;
  const body = (i) => JSON.stringify({ zobject: { Z1K1: 'Z7', Z7K1: 'Z10300', Z10300K1: input(i) }, bypassCache: true });
  const post = async (path, i) => (await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: body(i) })).json();
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const server = [], browser = [], plans = [], runs = [];
  // Warm up both: the guest module is compiled once per page.
  await post('/wikifunctions.org/v1/evaluate/', 0);
  await runPlan(await post('/v1/plan', 0));
  for (let i = 0; i < N; i++) {
    let t = performance.now();
    const z22 = await post('/wikifunctions.org/v1/evaluate/', i);
    server.push(performance.now() - t);
    if (z22.Z22K1 !== reversed(i)) throw new Error(JSON.stringify(z22));
    t = performance.now();
    const plan = await post('/v1/plan', i);
    const t2 = performance.now();
    const run = await runPlan(plan);
    browser.push(performance.now() - t);
    plans.push(t2 - t);
    runs.push(performance.now() - t2);
    if (plan.where !== 'browser' || !run.result || run.result.Z6K1 !== reversed(i)) throw new Error(JSON.stringify(run));
  }
  return { calls: N, server_ms: median(server), browser_ms: median(browser), plan_ms: median(plans), run_ms: median(runs) };
})()"#;

/// Runs planned calls past the page's bounds (see browser-run.js and worker.js): a result
/// of 9 MB, 40 MB of memory under a 16 MiB limit, and 121 calls at once (one runs, 100 wait,
/// 20 are refused).
const BOUNDS: &str = r#"(async () => {
  const { runPlan } = await import('/playground/browser-run.js');
  const post = async (body) => (await fetch('/v1/plan', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })).json();
  const plan = await post({ zobject: { Z1K1: 'Z7', Z7K1: 'Z10300', Z10300K1: 'x' } });
  const withCode = (code, limits = {}) => ({ ...plan, request: { ...plan.request, codeString: code }, limits: { ...plan.limits, ...limits } });
  const output = await runPlan(withCode("function Z10300( x ) { return 'x'.repeat( 9000000 ); }"));
  const memory = await runPlan(withCode("function Z10300( x ) { const a = new Uint8Array( 40000000 ); a.fill( 1 ); return String( a[ 5 ] ); }", { memoryBytes: 16 * 1048576 }));
  const many = await Promise.all(Array.from({ length: 121 }, () => runPlan(plan)));
  return {
    output: output.error,
    memory: memory.error,
    refused: many.filter((r) => r.error && r.error.includes('waiting')).length,
    answered: many.filter((r) => r.result && r.result.Z6K1 === 'x').length,
  };
})()"#;

/// The issue's check: `chromium --headless --dump-dom` of a deep link shows the result, on
/// the server and with `&where=browser`.
#[test]
fn a_deep_link_runs_in_dump_dom() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[], &[]);
    let orch = server.orch().to_owned();
    run_readme_example(&orch, data.path());
    for (suffix, said) in [
        ("", "ran on the server"),
        ("&where=browser", "ran in your browser"),
    ] {
        let profile = tempfile::tempdir().unwrap();
        let url = format!("{orch}/function/Z10000?Z10000K1=abc&run=1{suffix}");
        let output = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=10000",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(&url)
            .stderr(Stdio::null())
            .output()
            .expect("run chromium");
        let dom = String::from_utf8_lossy(&output.stdout);
        assert!(
            dom.contains(r#"<pre class="value" id="result-value">cba</pre>"#),
            "{url}: no result in\n{dom}"
        );
        assert!(dom.contains(said), "{url}: not {said:?} in\n{dom}");
    }
    assert!(server.stop());
}
