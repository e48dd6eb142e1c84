#!/usr/bin/env python3
"""Per-call cost of reentrant calls (W.Call), over HTTP against a fresh `zeval serve`.

    python3 scripts/bench-reentrant.py [true|false|remote]
        true: guests in worker processes (the default); false: on the server's threads;
        remote: a second process (`--role evaluator`, workers) runs every language, and
        W.Call comes back over HTTP to the orchestrator's callback route

Uses $ZEVAL (default: the release binary in the shared target dir); stores a few functions in
a temporary data dir, then prints p50/p90 of sequential calls (result cache bypassed).
Figures: docs/benchmarks.md, "Reentrant calls".
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ZEVAL = os.environ.get("ZEVAL", "/var/cache/zeval/target/release/zeval")
workers = sys.argv[1] if len(sys.argv) > 1 else "true"
data = tempfile.mkdtemp()
token = subprocess.check_output(
    [ZEVAL, "user", "add", "ed", "--role", "editor", "--data-dir", data], stderr=subprocess.DEVNULL
).decode().strip().split()[-1]
env = dict(os.environ, ZEVAL_WORKERS=workers)
env.pop("RUST_BACKTRACE", None)


def start(role, data_dir, env, wanted):
    process = subprocess.Popen(
        [ZEVAL, "serve", "--role", role, "--listen", "127.0.0.1:0", "--evaluator-listen", "127.0.0.1:0",
         "--data-dir", data_dir],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    while True:
        line = process.stdout.readline().decode()
        if not line:
            sys.exit("zeval serve --role %s exited" % role)
        if line.startswith(wanted + " API on "):
            return process, line.split(" on ", 1)[1].strip()


processes = []
if workers == "remote":
    env["ZEVAL_WORKERS"] = "true"
    evaluator, evaluator_url = start("evaluator", tempfile.mkdtemp(), env, "evaluator")
    processes.append(evaluator)
    env["ZEVAL_EVALUATOR_URL"] = evaluator_url + "/wikifunctions.org/v1/evaluate/"
    proc, orch = start("orchestrator", data, env, "orchestrator")
else:
    proc, orch = start("all", data, env, "orchestrator")
processes.append(proc)

def req(method, path, body=None, tok=None):
    r = urllib.request.Request(orch + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                               headers={"Content-Type": "application/json", **({"Authorization": "Bearer " + tok} if tok else {})})
    try:
        with urllib.request.urlopen(r) as f:
            return json.loads(f.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())

def z2(zid, value):
    return {"Z1K1": "Z2", "Z2K1": {"Z1K1": "Z6", "Z6K1": zid}, "Z2K2": value,
            "Z2K3": {"Z1K1": "Z12", "Z12K1": ["Z11", {"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": zid}]}}
def fn(zid, impls):
    return z2(zid, {"Z1K1": "Z8", "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": zid + "K1", "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
                    "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14"] + impls, "Z8K5": zid})
def impl(zid, f, lang, code):
    return z2(zid, {"Z1K1": "Z14", "Z14K1": f, "Z14K3": {"Z1K1": "Z16", "Z16K1": lang, "Z16K2": code}})

objs = [
 ("Z10000", fn("Z10000", ["Z10001"])),
 ("Z10001", impl("Z10001", "Z10000", "Z600", "function Z10000( Z10000K1 ) { return Z10000K1.toUpperCase(); }")),
 ("Z10010", fn("Z10010", ["Z10011"])),
 ("Z10011", impl("Z10011", "Z10010", "Z610", "def Z10010(Z10010K1):\n    return Z10010K1.upper()")),
 ("Z10020", fn("Z10020", ["Z10021"])),
 ("Z10021", impl("Z10021", "Z10020", "Z610", "def Z10020(Z10020K1):\n    return W.Call(\"Z10000\", Z10000K1=Z10020K1)")),
 ("Z10030", fn("Z10030", ["Z10031"])),
 ("Z10031", impl("Z10031", "Z10030", "Z600", "function Z10030( Z10030K1 ) { return W.Call( 'Z10000', { Z10000K1: Z10030K1 } ); }")),
 ("Z10040", fn("Z10040", ["Z10041"])),
 ("Z10041", impl("Z10041", "Z10040", "Z610", "def Z10040(Z10040K1):\n    return W.Call(\"Z10040\", Z10040K1=Z10040K1)")),
 ("Z10050", fn("Z10050", ["Z10051"])),
 ("Z10051", impl("Z10051", "Z10050", "Z610", "def Z10050(Z10050K1):\n    for _ in range(100):\n        W.Call(\"Z866\", Z866K1=Z10050K1, Z866K2=Z10050K1)\n    return Z10050K1")),
]
for zid, o in objs:
    r = req("PUT", "/v1/objects/" + zid, o, token)
    assert "Z1K1" not in r or r.get("Z1K1") != "Z5", r

def call(f, text="abc", nocache=True):
    body = {"zobject": {"Z1K1": "Z7", "Z7K1": f, f + "K1": text}, "bypassCache": True}
    t = time.perf_counter()
    r = req("POST", "/wikifunctions.org/v1/evaluate/", body)
    return time.perf_counter() - t, r

def bench(name, f, n=30):
    for _ in range(3): call(f)
    times = []
    last = None
    for i in range(n):
        dt, last = call(f, "abc%d" % i)
        times.append(dt * 1000)
    times.sort()
    print("%-45s p50 %7.2f ms  p90 %7.2f ms   %s" % (name, statistics.median(times), times[int(len(times) * 0.9)], json.dumps(last.get("Z22K1"))[:40]))

print("workers =", workers)
bench("JS upper (direct)", "Z10000")
bench("Python upper (direct)", "Z10010")
bench("Python -> W.Call -> JS upper", "Z10020")
bench("JS -> W.Call -> JS upper", "Z10030")
bench("Python, 100 W.Calls of built-in Z866", "Z10050", 10)
dt, r = call("Z10040")
err = [p for p in r["Z22K2"]["K1"][1:] if p["K1"] == "errors"]
print("Python infinite recursion -> %.0f ms, %s" % (dt * 1000, json.dumps(err[0]["K2"]["Z5K2"].get("Z590K1") if err else r)[:80]))
dt, r = call("Z10040")
print("  again -> %.0f ms" % (dt * 1000))
for process in processes:
    process.terminate()
    process.wait()
