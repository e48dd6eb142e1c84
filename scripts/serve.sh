#!/usr/bin/env bash
# Fresh machine → a serving zeval: installs what is missing, builds the guests and the
# release binary, then runs `zeval serve` (orchestrator on 127.0.0.1:6254, evaluator on
# 127.0.0.1:6927, embedded store in ./zeval-data seeded with the built-in catalogue).
# Extra arguments go to `zeval serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked --bin zeval
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
exec "$target_dir/release/zeval" serve "$@"
