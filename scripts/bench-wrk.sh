#!/usr/bin/env bash
# Trivial calls over HTTP measured with wrk against a real `zeval serve --role evaluator`:
#
#     bash scripts/bench-wrk.sh [SECONDS] [CONNECTIONS] [ROUNDS]
#
# The issue's own load generator (issue 12: "wrk or an equivalent load generator, keep-alive,
# on this 2-core machine, the load generator included"), as a check on
# `zeval bench evaluator --http`, whose clients are threads in the server's own process and
# whose server is the evaluator's router alone (on guest lanes, as `zeval serve` runs it). Here the server is the shipped binary with
# everything a request meets (admission, limits, metrics, drain), started twice: guests in
# process (`ZEVAL_WORKERS=false`) and through the confined workers (the default). Each round
# measures JS add and Python add (a ZID and bodies no snapshot has seen, as in the bench) on
# both, alternated, with CONNECTIONS (default 8) keep-alive connections from one wrk thread for
# SECONDS (default 5) after a warm-up (10 s in the first round, whose calls grow the servers'
# worker pools, see docs/benchmarks.md; 2 s
# later); every answer is checked for the result 13, and a
# round with a wrong answer fails the script. Uses $ZEVAL (default: the release binary in the
# shared target dir); installs wrk with apt-get if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
connections=${2:-8}
rounds=${3:-3}

if ! command -v wrk > /dev/null; then
    apt-get install -y --no-install-recommends wrk > /dev/null
fi
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
zeval=${ZEVAL:-$target_dir/release/zeval}

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# One Lua script per language: the request, and a check of every answer.
script() {
    local language=$1 code=$2
    cat > "$work/$language.lua" << EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"reentrant":false,"codingLanguage":"$language","codeString":"$code","functionName":"Z14071","functionArguments":{"Z14071K1":{"Z1K1":"Z6","Z6K1":"5"},"Z14071K2":{"Z1K1":"Z6","Z6K1":"8"}}}'
wrong = 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"Z22K1":{"Z1K1":"Z6","Z6K1":"13"}', 1, true) then
    wrong = wrong + 1
  end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("wrong") end
  local errors = summary.errors
  total = total + errors.connect + errors.read + errors.write + errors.timeout
  io.write(string.format("%.0f calls/s, p50 %.2f ms, p99 %.2f ms, %d wrong\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, total))
end
EOF
}
script javascript 'function Z14071(Z14071K1, Z14071K2) { const sum = Number(Z14071K2) + Number(Z14071K1); return String(sum); }'
# Lua turns `\\n` into the two characters of JSON's newline escape.
script python-3 'def Z14071(Z14071K1, Z14071K2):\\n    total = int(Z14071K2) + int(Z14071K1)\\n    return str(total)'

# Two servers on free ports: in process, and through the workers.
declare -A url
port=$((20000 + RANDOM % 20000))
for setup in in-process workers; do
    port=$((port + 1))
    workers=true
    [[ $setup == in-process ]] && workers=false
    ZEVAL_WORKERS=$workers RUST_LOG=warn "$zeval" serve --role evaluator \
        --evaluator-listen "127.0.0.1:$port" --data-dir "$work/$setup" > "$work/$setup.log" 2>&1 &
    pids+=($!)
    url[$setup]="http://127.0.0.1:$port/wikifunctions.org/v1/evaluate/"
done
for setup in in-process workers; do
    for _ in $(seq 100); do
        curl -sf "${url[$setup]}" > /dev/null && break
        sleep 0.2
    done
    curl -sf "${url[$setup]}" > /dev/null || { cat "$work/$setup.log"; exit 1; }
done

echo "wrk -t1 -c$connections -d${seconds}s, $(nproc) CPUs, load average $(cut -d' ' -f1 /proc/loadavg)"
for round in $(seq "$rounds"); do
    for language in javascript python-3; do
        for setup in in-process workers; do
            warm_up=2s
            [[ $round == 1 ]] && warm_up=10s
            wrk -t1 -c"$connections" -d"$warm_up" -s "$work/$language.lua" "${url[$setup]}" > /dev/null
            line=$(wrk -t1 -c"$connections" -d"${seconds}s" -s "$work/$language.lua" "${url[$setup]}" | tail -1)
            echo "round $round, $language, $setup: $line"
            [[ $line == *" 0 wrong" ]] || { echo "wrong answers" >&2; exit 1; }
        done
    done
done
