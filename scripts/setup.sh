#!/usr/bin/env bash
# Installs what a fresh machine of this project's kind lacks, then builds the guests.
# Quick when everything is already there: each step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# curl and jq are used by the README example, which the tests run verbatim; redis-server by
# the result cache's tests (each starts its own on a unix socket and stops it); chromium by
# the playground's browser tests (tests/e2e/browser.rs drive it headless, nothing downloaded).
for pkg in clang-19 lld-19 llvm-19 libclang-rt-19-dev-wasm32 wasi-libc curl jq redis-server chromium; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

# rust-toolchain.toml names the toolchain and the wasm target; rustup installs them on first use.
rustup show active-toolchain >/dev/null
rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

bash guests/build.sh
