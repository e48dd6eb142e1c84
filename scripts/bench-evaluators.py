#!/usr/bin/env python3
"""Throughput of trivial JavaScript calls through one orchestrator, by where code runs:

    python3 scripts/bench-evaluators.py [SECONDS] [CLIENTS] [ROUNDS]

  in-process:  `zeval serve` (role all) runs the code itself: no network hop;
  1 evaluator: `--role orchestrator` + one `--role evaluator` process (one HTTP hop per call);
  2 evaluators: the same with two evaluator processes in one `[evaluators]` entry (`urls`),
               calls spread by least outstanding requests.

Every process shares the same cores (this machine's), so the comparison is at equal hardware:
what the figures show is the cost of the hop and of the extra process, not extra capacity.
All three are started at once and measured in the same run, interleaved: ROUNDS (default 3)
rounds, each measuring every configuration with CLIENTS threads (default 8) calling for
SECONDS (default 5) after 2 s of warm-up, then with one client (the latency of a lone call).
Each call has a distinct argument and the result cache is off (`ZEVAL_CACHE=false`). Prints
every row (with the load average, since the machine may be shared) and, per configuration,
the median over the rounds of calls/s, p50 and p99.

Uses $ZEVAL (default: the release binary in the shared target dir). Figures:
docs/benchmarks.md, "Many evaluators".
"""
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ZEVAL = os.environ.get("ZEVAL", "/var/cache/zeval/target/release/zeval")
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
CLIENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 8
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
WARMUP = 2.0
ENV = dict(os.environ, ZEVAL_CACHE="false")
ENV.pop("RUST_BACKTRACE", None)


def start(role, data_dir, extra_args=(), wanted="orchestrator"):
    process = subprocess.Popen(
        [ZEVAL, "serve", "--role", role, "--listen", "127.0.0.1:0",
         "--evaluator-listen", "127.0.0.1:0", "--data-dir", data_dir, *extra_args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV)
    while True:
        line = process.stdout.readline().decode()
        if not line:
            sys.exit("zeval serve --role %s exited" % role)
        if line.startswith(wanted + " API on "):
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, line.split(" on ", 1)[1].strip()


def stop(processes):
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()


def z2(zid, value):
    return {"Z1K1": "Z2", "Z2K1": {"Z1K1": "Z6", "Z6K1": zid}, "Z2K2": value,
            "Z2K3": {"Z1K1": "Z12", "Z12K1": ["Z11", {"Z1K1": "Z11", "Z11K1": "Z1002",
                                                       "Z11K2": zid}]}}


OBJECTS = [
    ("Z10000", z2("Z10000", {
        "Z1K1": "Z8",
        "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10000K1",
                         "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
        "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10001"], "Z8K5": "Z10000"})),
    ("Z10001", z2("Z10001", {
        "Z1K1": "Z14", "Z14K1": "Z10000",
        "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600",
                  "Z16K2": "function Z10000( Z10000K1 ) { return Z10000K1.toUpperCase(); }"}})),
]


def connection(base):
    host, port = base.replace("http://", "").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=60)


def put_objects(base, token):
    conn = connection(base)
    for zid, obj in OBJECTS:
        conn.request("PUT", "/v1/objects/" + zid, json.dumps(obj),
                     {"Content-Type": "application/json", "Authorization": "Bearer " + token})
        response = conn.getresponse()
        text = response.read()
        assert response.status == 200, text


def load(base, clients, seconds):
    """Calls from `clients` threads for `seconds`; returns (calls/s, p50 ms, p99 ms, failed)."""
    latencies, failed = [], [0]
    lock = threading.Lock()
    deadline = [0.0]
    measuring = threading.Event()
    done = threading.Event()

    def client(k):
        conn = connection(base)
        n = 0
        while not done.is_set():
            text = "c%d-%d-%f" % (k, n, time.time())
            body = json.dumps({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": text}})
            started = time.perf_counter()
            conn.request("POST", "/wikifunctions.org/v1/evaluate/", body,
                         {"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = json.loads(response.read())
            took = time.perf_counter() - started
            ok = response.status == 200 and answer.get("Z22K1") == text.upper()
            if measuring.is_set() and time.perf_counter() < deadline[0]:
                with lock:
                    latencies.append(took)
                    if not ok:
                        failed[0] += 1
            n += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    time.sleep(WARMUP)
    start_time = time.perf_counter()
    deadline[0] = start_time + seconds
    measuring.set()
    time.sleep(seconds)
    done.set()
    for t in threads:
        t.join()
    latencies.sort()
    calls = len(latencies)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(calls - 1, int(calls * 0.99))] * 1000
    return calls / seconds, p50, p99, failed[0]


def configuration(evaluators):
    """Starts one configuration; returns (its processes, the orchestrator's base URL)."""
    data = tempfile.mkdtemp()
    token = subprocess.check_output(
        [ZEVAL, "user", "add", "ed", "--role", "editor", "--data-dir", data],
        stderr=subprocess.DEVNULL, env=ENV).decode().strip().split()[-1]
    processes = []
    if evaluators == 0:
        proc, base = start("all", data)
        processes.append(proc)
    else:
        urls = []
        for _ in range(evaluators):
            proc, url = start("evaluator", tempfile.mkdtemp(), wanted="evaluator")
            processes.append(proc)
            urls.append(url + "/wikifunctions.org/v1/evaluate/")
        config = os.path.join(data, "zeval.toml")
        with open(config, "w") as f:
            f.write('[evaluators]\n"*" = { urls = %s }\n' % json.dumps(urls))
        proc, base = start("orchestrator", data, ["--config", config])
        processes.append(proc)
    put_objects(base, token)
    return processes, base


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def main():
    print("%d s per row after %.0f s warm-up, %d rounds; %d cores; binary %s" % (
        SECONDS, WARMUP, ROUNDS, os.cpu_count(), ZEVAL))
    names = (("in-process", 0), ("1 evaluator", 1), ("2 evaluators", 2))
    started = {name: configuration(evaluators) for name, evaluators in names}
    rows = {}
    try:
        print("%-14s %7s %10s %9s %9s %7s %6s" % ("where", "clients", "calls/s", "p50 ms",
                                                  "p99 ms", "failed", "load"))
        for _ in range(ROUNDS):
            for clients in (CLIENTS, 1):
                for name, _ in names:
                    rate, p50, p99, failed = load(started[name][1], clients, SECONDS)
                    rows.setdefault((name, clients), []).append((rate, p50, p99, failed))
                    print("%-14s %7d %10.1f %9.2f %9.2f %7d %6s" % (
                        name, clients, rate, p50, p99, failed, loadavg()))
                    sys.stdout.flush()
    finally:
        for processes, _ in started.values():
            stop(processes)
    print("\nmedian of %d rounds" % ROUNDS)
    for (name, clients), measured in rows.items():
        rate, p50, p99 = (statistics.median(m[i] for m in measured) for i in range(3))
        failed = sum(m[3] for m in measured)
        print("%-14s %7d %10.1f %9.2f %9.2f %7d" % (name, clients, rate, p50, p99, failed))


main()
