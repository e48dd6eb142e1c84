#!/usr/bin/env bash
# Builds every guest interpreter into ${ZEVAL_GUEST_DIR:-/var/cache/zeval/guests}:
#   <name>.wasm      pre-initialised snapshot (what the evaluator runs)
#   <name>.raw.wasm  the same program without the snapshot (benchmarks only)
#   <name>.version   the language version users see, e.g. "QuickJS-ng 0.16.2"
#   manifest.json    {"<file>": {"sha256", "bytes", "language_version"}} for every .wasm
# guests/python/build.sh (if present) is called as `build.sh OUTDIR` with $ZEVAL_WIZER set,
# and writes python.wasm, python.raw.wasm, python.version and what the raw guest needs.
# Installs the Debian packages and the rustup target it needs when they are missing.
# A guest is rebuilt only when the hash of its inputs (sources, lock file, this script, the
# snapshot tool, toolchain versions) differs from the stamp file next to its output.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
out=${ZEVAL_GUEST_DIR:-/var/cache/zeval/guests}
cache=${ZEVAL_CACHE_DIR:-/var/cache/zeval}
mkdir -p "$out"

log() { echo "guests/build.sh: $*" >&2; }

# --- prerequisites -------------------------------------------------------------------------
packages=(clang-19 lld-19 llvm-19 libclang-rt-19-dev-wasm32 wasi-libc)
missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) == 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y "${missing[@]}"
fi
# The toolchain (and so the target list) comes from rust-toolchain.toml at the root.
if ! (cd "$root" && rustup target list --installed) | grep -qx wasm32-wasip1; then
  log "adding the rustup target wasm32-wasip1"
  (cd "$root" && rustup target add wasm32-wasip1)
fi

# Debian's wasi-libc is found by clang only for --target=wasm32-wasi; cc-rs passes
# wasm32-wasip1, so give clang a sysroot of symlinks under that name.
sysroot="$cache/wasi-sysroot"
mkdir -p "$sysroot/include" "$sysroot/lib"
ln -sfn /usr/include/wasm32-wasi "$sysroot/include/wasm32-wasip1"
ln -sfn /usr/lib/wasm32-wasi "$sysroot/lib/wasm32-wasip1"

# The snapshot tool, built with the host workspace (debug profile: shares the compiled
# wasmtime with the tests; snapshotting speed does not matter).
if [[ -z ${ZEVAL_WIZER:-} ]]; then
  log "building zeval-wizer"
  (cd "$root" && cargo build --quiet -p zeval-sandbox --bin zeval-wizer)
  target_dir=$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  ZEVAL_WIZER="$target_dir/debug/zeval-wizer"
fi
export ZEVAL_WIZER

toolchain_id() {
  (cd "$root" && rustc -V)
  clang-19 --version | head -n1
  dpkg-query -W -f='${Version}\n' wasi-libc
}

# inputs_hash DIR...: hash of the files (tracked or not ignored) under DIR, this script, the
# snapshot tool's source and lock entries, and the toolchain.
inputs_hash() {
  {
    (cd "$root" && git ls-files -co --exclude-standard -- "$@" | LC_ALL=C sort | xargs -r sha256sum)
    # Relative paths: the hash must not depend on where the checkout is (CI's fresh clone
    # rebuilt the QuickJS guest every run when it held absolute ones).
    (cd "$root" && sha256sum guests/build.sh crates/sandbox/src/wizer.rs)
    grep -A1 -E '^name = "wasmtime(-wizer)?"$' "$root/Cargo.lock" || true
    toolchain_id
  } | sha256sum | cut -d' ' -f1
}

# up_to_date NAME HASH: the stamp matches and the outputs exist.
up_to_date() {
  [[ -f "$out/$1.stamp" && $(cat "$out/$1.stamp") == "$2" && -f "$out/$1.wasm" && -f "$out/$1.raw.wasm" ]]
}

# --- QuickJS -------------------------------------------------------------------------------
build_quickjs() {
  local dir="$here/quickjs" hash
  hash=$(inputs_hash guests/quickjs)
  if up_to_date quickjs "$hash"; then
    log "quickjs is up to date"
    return
  fi
  log "building quickjs"
  local target="$cache/guest-target/quickjs"
  (cd "$dir" &&
    RQUICKJS_SYS_NO_WASI_SDK=1 \
    CC_wasm32_wasip1=clang-19 AR_wasm32_wasip1=llvm-ar-19 \
    CFLAGS_wasm32_wasip1="--sysroot=$sysroot -include $dir/direct-dispatch.h" \
    CARGO_TARGET_DIR="$target" \
    cargo build --quiet --release --locked --target wasm32-wasip1)
  cp "$target/wasm32-wasip1/release/quickjs.wasm" "$out/quickjs.raw.wasm.tmp"
  mv "$out/quickjs.raw.wasm.tmp" "$out/quickjs.raw.wasm"
  "$ZEVAL_WIZER" "$out/quickjs.raw.wasm" "$out/quickjs.wasm"
  quickjs_version > "$out/quickjs.version"
  echo "$hash" > "$out/quickjs.stamp"
}

# The language version reported to users, from the quickjs-ng sources rquickjs-sys bundles.
quickjs_version() {
  local sys_version header
  sys_version=$(grep -A1 '^name = "rquickjs-sys"$' "$here/quickjs/Cargo.lock" | sed -n 's/^version = "\(.*\)"$/\1/p')
  header=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"rquickjs-sys-$sys_version"/quickjs/quickjs.h 2>/dev/null | head -n1)
  if [[ -n $header ]]; then
    awk '/#define QJS_VERSION_(MAJOR|MINOR|PATCH) /{v = v (v == "" ? "" : ".") $3} END {print "QuickJS-ng " v}' "$header"
  else
    echo "QuickJS-ng (rquickjs-sys $sys_version)"
  fi
}

# --- Python (its own script, written with the CPython guest) ------------------------------
build_python() {
  local script="$here/python/build.sh" hash
  [[ -f $script ]] || { log "no guests/python/build.sh yet; skipping python"; return; }
  hash=$(inputs_hash guests/python)
  if up_to_date python "$hash"; then
    log "python is up to date"
    return
  fi
  log "building python"
  bash "$script" "$out"
  echo "$hash" > "$out/python.stamp"
}

build_quickjs
build_python

# --- manifest ------------------------------------------------------------------------------
python3 - "$out" <<'PY'
import hashlib, json, os, sys
out = sys.argv[1]
manifest = {}
for name in sorted(os.listdir(out)):
    if not name.endswith(".wasm"):
        continue
    digest = hashlib.sha256()
    with open(os.path.join(out, name), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    entry = {"sha256": digest.hexdigest(), "bytes": os.path.getsize(os.path.join(out, name))}
    version_file = os.path.join(out, name.split(".")[0] + ".version")
    if os.path.exists(version_file):
        with open(version_file) as f:
            entry["language_version"] = f.read().strip()
    manifest[name] = entry
with open(os.path.join(out, "manifest.json.tmp"), "w") as f:
    json.dump(manifest, f, indent=2, sort_keys=True)
    f.write("\n")
os.replace(os.path.join(out, "manifest.json.tmp"), os.path.join(out, "manifest.json"))
PY
log "guests in $out: $(cd "$out" && ls -- *.wasm | tr '\n' ' ')"
