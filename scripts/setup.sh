#!/usr/bin/env bash
# Installs what a fresh machine of this project's kind lacks, then builds the guests.
# Quick when everything is already there: each step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# curl and jq are used by the README example, which the tests run verbatim; redis-server by
# the result cache's tests (each starts its own on a unix socket and stops it); chromium by
# the playground's browser tests (tests/e2e/browser.rs drive it headless, nothing downloaded);
# postgresql by the PostgreSQL store's tests (each test binary starts its own server in a
# temporary directory, on a unix socket only, and stops it).
for pkg in clang-19 lld-19 llvm-19 libclang-rt-19-dev-wasm32 wasi-libc curl jq redis-server chromium postgresql; do
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

# kubernetes-validate checks deploy/k8s against the Kubernetes schemas it ships
# (tests/e2e/deploy.rs); pinned, so that a new release's schemas cannot change the verdict.
kubernetes_validate=1.37.0
if [ "$(kubernetes-validate --version 2>/dev/null)" != "$kubernetes_validate" ]; then
  echo "setup: installing kubernetes-validate $kubernetes_validate"
  python3 -m pip install --quiet "kubernetes-validate==$kubernetes_validate"
fi

bash guests/build.sh
