#!/usr/bin/env bash
# Every check CI runs: formatting, clippy with warnings as errors, and every test (unit,
# integration, conformance suites, hostile guests, end-to-end). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The target directory is shared by every clone: drop what stale builds left in it.
bash scripts/prune-target.sh
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings
# The libraries' API docs build without broken or private links (the binary's are its CLI help).
RUSTDOCFLAGS="-D warnings" cargo doc --locked --workspace --no-deps --exclude zeval
cargo test --locked --workspace --no-fail-fast --exclude zeval
# The QuickJS guest's own unit tests (it is built for wasm32-wasip1, outside the workspace),
# on the host: the parts under test call no wasm import.
(cd guests/quickjs && RQUICKJS_SYS_NO_WASI_SDK=1 \
  CARGO_TARGET_DIR="${ZEVAL_CACHE_DIR:-/var/cache/zeval}/guest-target/host-test" \
  cargo test --locked --target "$(rustc -vV | sed -n 's/^host: //p')")
# The root package's end-to-end tests start real servers and include timing assertions (the
# neighbour test compares a caller's p99 idle and under attack): one at a time, so they do not
# load the machine for each other.
cargo test --locked -p zeval --no-fail-fast -- --test-threads 1
