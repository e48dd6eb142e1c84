#!/usr/bin/env bash
# Builds zeval's CPython guest from Debian source packages (see README.md):
#   guests/python/build.sh OUTDIR
# writes OUTDIR/python.wasm (wizer snapshot), OUTDIR/python.raw.wasm, OUTDIR/python-stdlib/ and
# OUTDIR/python.version.
# Downloads and build trees live in $ZEVAL_CPYTHON_CACHE (default /var/cache/zeval/cpython-build).
# The snapshot tool is $ZEVAL_WIZER if set, else `cargo run -p zeval-sandbox --bin zeval-wizer`.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

# --- Pinned inputs -------------------------------------------------------------------------
PY_SRC_PACKAGE=python3.13
PY_SRC_VERSION=3.13.5-2+deb13u5 # Debian trixie (13), source package
PY_VERSION=3.13.5
PY_MAJMIN=3.13
PY_ORIG=python3.13_3.13.5.orig.tar.xz
ZLIB_SRC_VERSION=1:1.2.13.dfsg-1 # Debian bookworm (12)
ZLIB_ORIG=zlib_1.2.13.dfsg.orig.tar.bz2
SQLITE_SRC_VERSION=3.46.1-7+deb13u2 # Debian trixie; the amalgamation is generated from it
SQLITE_ORIG=sqlite3_3.46.1.orig.tar.xz
BZIP2_SRC_VERSION=1.0.8-6 # Debian trixie
BZIP2_ORIG=bzip2_1.0.8.orig.tar.gz
XZ_SRC_VERSION=5.8.1-1+deb13u1 # Debian trixie (liblzma)
XZ_ORIG=xz-utils_5.8.1.orig.tar.xz
TZDATA_SRC_VERSION=2026b-0+deb12u1 # Debian bookworm; compiled with the host's zic
TZDATA_ORIG=tzdata_2026b.orig.tar.gz
# Source-only apt sources, used through a private apt state: the system's apt sources and
# package lists are never touched.
APT_SOURCES='deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security trixie-security main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main'
# tcl: SQLite's build generates its amalgamation with tclsh. zic (libc-bin) is always installed.
APT_PACKAGES="clang-19 lld-19 llvm-19 libclang-rt-19-dev-wasm32 wasi-libc gcc libc6-dev make pkg-config xz-utils bzip2 tcl debian-archive-keyring"
# Stdlib modules imported during the snapshot, so a call that uses them pays nothing for the
# import. Every other stdlib module imports from the in-memory bundle at call time
# (stdlib_importer.py). importlib.resources(._adapters) is what zoneinfo reads tzdata with.
PREIMPORTS="json re math cmath datetime collections itertools functools random decimal fractions
statistics string unicodedata operator heapq bisect copy dataclasses enum typing base64 hashlib
textwrap struct calendar csv difflib html html.parser urllib.parse pprint fnmatch shlex ipaddress
secrets graphlib uuid locale zoneinfo importlib.resources importlib.resources._adapters
encodings.rot_13 encodings.idna"
# Where the guest sees its stdlib while being snapshotted (and the raw guest at every call).
GUEST_STDLIB=/usr/local/lib/python$PY_MAJMIN

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
CACHE=${ZEVAL_CPYTHON_CACHE:-/var/cache/zeval/cpython-build}
JOBS=${JOBS:-$(nproc)}
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

log() { echo "[guests/python] $*" >&2; }

# --- Up to date? ---------------------------------------------------------------------------
INPUTS_HASH=$(
    {
        cat "$HERE/build.sh" "$HERE/driver.c" "$HERE/runner.py" "$HERE/stdlib_importer.py" \
            "$HERE/make_stdlib_bundle.py" "$HERE/sqlite_vfs.c"
    } | sha256sum | cut -d' ' -f1
)
STAMP="$OUT/.python.stamp"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$INPUTS_HASH" ] && [ -f "$OUT/python.wasm" ] &&
    [ -f "$OUT/python.raw.wasm" ] && [ -d "$OUT/python-stdlib" ] && [ -f "$OUT/python.version" ]; then
    log "up to date ($OUT/python.wasm)"
    exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

# --- Debian packages -----------------------------------------------------------------------
missing=
for package in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q '^install ok installed$' ||
        missing="$missing $package"
done
if [ -n "$missing" ]; then
    log "installing Debian packages:$missing"
    $SUDO apt-get update
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
fi

# --- Sources (pinned versions, hash-checked by apt against the signed Sources index) ---------
APT_DIR="$CACHE/apt"
SRC_DIR="$CACHE/src"
apt_private=(-o "Dir::Etc::SourceList=$APT_DIR/sources.list" -o "Dir::Etc::SourceParts=$APT_DIR/sources.list.d"
    -o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::Cache=$APT_DIR/cache" -o "APT::Sandbox::User=root")
fetch_source() { # PACKAGE VERSION ORIG_FILE
    local package=$1 version=$2 orig=$3
    local dsc="$SRC_DIR/${package}_${version#*:}.dsc"
    if [ -f "$SRC_DIR/$orig" ] && [ -f "$dsc.fetched" ]; then
        return
    fi
    mkdir -p "$APT_DIR/sources.list.d" "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$SRC_DIR"
    printf '%s\n' "$APT_SOURCES" >"$APT_DIR/sources.list"
    if [ ! -f "$APT_DIR/updated" ] || ! apt-cache "${apt_private[@]}" showsrc "$package" 2>/dev/null |
        grep -x "Version: $version" >/dev/null; then
        log "refreshing the private deb-src index"
        apt-get "${apt_private[@]}" -qq update >&2
        touch "$APT_DIR/updated"
    fi
    if ! apt-cache "${apt_private[@]}" showsrc "$package" 2>/dev/null | grep -x "Version: $version" >/dev/null; then
        echo "error: Debian no longer serves source package $package=$version. It serves:" >&2
        apt-cache "${apt_private[@]}" showsrc "$package" 2>/dev/null | grep '^Version:' | sort -u >&2 || true
        echo "Update the pinned version in $HERE/build.sh (and test the guest)." >&2
        exit 1
    fi
    log "downloading source package $package=$version"
    (cd "$SRC_DIR" && apt-get "${apt_private[@]}" -qq source --download-only "$package=$version" >&2)
    [ -f "$SRC_DIR/$orig" ] || {
        echo "error: $orig missing after apt-get source" >&2
        exit 1
    }
    touch "$dsc.fetched"
}
fetch_source "$PY_SRC_PACKAGE" "$PY_SRC_VERSION" "$PY_ORIG"
fetch_source zlib "$ZLIB_SRC_VERSION" "$ZLIB_ORIG"
fetch_source sqlite3 "$SQLITE_SRC_VERSION" "$SQLITE_ORIG"
fetch_source bzip2 "$BZIP2_SRC_VERSION" "$BZIP2_ORIG"
fetch_source xz-utils "$XZ_SRC_VERSION" "$XZ_ORIG"
fetch_source tzdata "$TZDATA_SRC_VERSION" "$TZDATA_ORIG"

# The pristine upstream tarballs are built; Debian's patches target Debian's own packaging.
PY_SRC="$CACHE/Python-$PY_VERSION"
if [ ! -f "$PY_SRC/.extracted" ]; then
    rm -rf "$PY_SRC"
    tar -C "$CACHE" -xf "$SRC_DIR/$PY_ORIG"
    touch "$PY_SRC/.extracted"
fi
extract() { # ORIG_FILE DIR STRIP_COMPONENTS: unpacks once per tarball
    local orig=$1 dir=$2 strip=$3
    if [ "$(cat "$dir/.extracted" 2>/dev/null)" != "$orig" ]; then
        rm -rf "$dir" && mkdir -p "$dir"
        tar -C "$dir" --strip-components="$strip" -xf "$SRC_DIR/$orig"
        echo "$orig" >"$dir/.extracted"
    fi
}
ZLIB_SRC="$CACHE/zlib-src"
extract "$ZLIB_ORIG" "$ZLIB_SRC" 1
SQLITE_SRC="$CACHE/sqlite-src"
extract "$SQLITE_ORIG" "$SQLITE_SRC" 1
BZIP2_SRC="$CACHE/bzip2-src"
extract "$BZIP2_ORIG" "$BZIP2_SRC" 1
XZ_SRC="$CACHE/xz-src"
extract "$XZ_ORIG" "$XZ_SRC" 1
TZDATA_SRC="$CACHE/tzdata-src"
extract "$TZDATA_ORIG" "$TZDATA_SRC" 0

# --- The tz database for zoneinfo (bundled as the package tzdata, see make_stdlib_bundle.py) --
ZONEINFO="$CACHE/zoneinfo"
TZ_VERSION=$(cat "$TZDATA_SRC/version")
TZ_SOURCES="africa antarctica asia australasia etcetera europe factory northamerica southamerica backward"
zoneinfo_key="$TZDATA_SRC_VERSION $TZ_SOURCES $(zic --version)"
if [ "$(cat "$ZONEINFO/.built" 2>/dev/null)" != "$zoneinfo_key" ]; then
    log "compiling the tz database $TZ_VERSION"
    rm -rf "$ZONEINFO" && mkdir -p "$ZONEINFO/zones"
    # shellcheck disable=SC2086
    (cd "$TZDATA_SRC" && zic -d "$ZONEINFO/zones" $TZ_SOURCES)
    echo "$zoneinfo_key" >"$ZONEINFO/.built"
fi

# --- Native build Python (the cross build runs it for code generation) ----------------------
NATIVE="$CACHE/build-native"
native_key="$PY_VERSION --without-ensurepip"
if [ "$(cat "$NATIVE/.built" 2>/dev/null)" != "$native_key" ]; then
    log "building native Python $PY_VERSION (about 2 minutes)"
    rm -rf "$NATIVE" && mkdir -p "$NATIVE"
    (cd "$NATIVE" && "$PY_SRC/configure" -q --without-ensurepip >configure.log 2>&1 &&
        make -j"$JOBS" >make.log 2>&1) || {
        tail -n 30 "$NATIVE"/*.log >&2
        exit 1
    }
    echo "$native_key" >"$NATIVE/.built"
fi
BUILD_PYTHON="$NATIVE/python"

# --- wasm32-wasi toolchain from Debian's clang-19 and wasi-libc -----------------------------
# A sysroot holding only wasi-libc (--sysroot=/usr would also pull in glibc's headers). clang
# finds libclang_rt.builtins-wasm32.a by itself for --target=wasm32-wasi.
TOOLS="$CACHE/toolchain"
mkdir -p "$TOOLS/bin" "$TOOLS/sysroot/include" "$TOOLS/sysroot/lib"
ln -sfn /usr/include/wasm32-wasi "$TOOLS/sysroot/include/wasm32-wasi"
ln -sfn /usr/lib/wasm32-wasi "$TOOLS/sysroot/lib/wasm32-wasi"
# clang-19 makes these warnings errors; wasi-libc's CLOCK_*_CPUTIME_ID are pointers, which
# trips timemodule.c.
cat >"$TOOLS/bin/clang.new" <<EOF
#!/bin/sh
exec clang-19 --target=wasm32-wasi --sysroot=$TOOLS/sysroot -Wno-error=int-conversion -Wno-error=incompatible-function-pointer-types "\$@"
EOF
chmod +x "$TOOLS/bin/clang.new"
if cmp -s "$TOOLS/bin/clang.new" "$TOOLS/bin/clang"; then rm "$TOOLS/bin/clang.new"; else mv "$TOOLS/bin/clang.new" "$TOOLS/bin/clang"; fi
WASI_CC="$TOOLS/bin/clang"
TOOLCHAIN_KEY="$(cat "$WASI_CC") $(clang-19 --version | head -n1) $(dpkg-query -W -f='${Version}' wasi-libc)"

# --- zlib for the zlib module (a static libz.a) ---------------------------------------------
ZLIB="$CACHE/zlib-wasi"
ZLIB_BUILD_FLAGS="-O2 -w"
zlib_key="$ZLIB_SRC_VERSION $ZLIB_BUILD_FLAGS $TOOLCHAIN_KEY"
if [ "$(cat "$ZLIB/.built" 2>/dev/null)" != "$zlib_key" ]; then
    log "building zlib for wasm32-wasi"
    rm -rf "$ZLIB" && mkdir -p "$ZLIB/obj" "$ZLIB/lib" "$ZLIB/include"
    for source in adler32 compress crc32 deflate infback inffast inflate inftrees trees uncompr zutil; do
        "$WASI_CC" $ZLIB_BUILD_FLAGS -c "$ZLIB_SRC/$source.c" -o "$ZLIB/obj/$source.o"
    done
    llvm-ar-19 rcs "$ZLIB/lib/libz.a" "$ZLIB"/obj/*.o
    cp "$ZLIB_SRC/zlib.h" "$ZLIB_SRC/zconf.h" "$ZLIB/include/"
    echo "$zlib_key" >"$ZLIB/.built"
fi

# --- bzip2 for _bz2 (a static libbz2.a) ------------------------------------------------------
BZIP2="$CACHE/bzip2-wasi"
bzip2_key="$BZIP2_SRC_VERSION $ZLIB_BUILD_FLAGS $TOOLCHAIN_KEY"
if [ "$(cat "$BZIP2/.built" 2>/dev/null)" != "$bzip2_key" ]; then
    log "building bzip2 for wasm32-wasi"
    rm -rf "$BZIP2" && mkdir -p "$BZIP2/obj" "$BZIP2/lib" "$BZIP2/include"
    for source in blocksort huffman crctable randtable compress decompress bzlib; do
        "$WASI_CC" $ZLIB_BUILD_FLAGS -c "$BZIP2_SRC/$source.c" -o "$BZIP2/obj/$source.o"
    done
    llvm-ar-19 rcs "$BZIP2/lib/libbz2.a" "$BZIP2"/obj/*.o
    cp "$BZIP2_SRC/bzlib.h" "$BZIP2/include/"
    echo "$bzip2_key" >"$BZIP2/.built"
fi

# --- liblzma for _lzma (xz-utils' own build, library only, no threads) ----------------------
XZ="$CACHE/xz-wasi"
xz_key="$XZ_SRC_VERSION $TOOLCHAIN_KEY"
if [ "$(cat "$XZ/.built" 2>/dev/null)" != "$xz_key" ]; then
    log "building liblzma for wasm32-wasi"
    rm -rf "$XZ" && mkdir -p "$XZ/build"
    (
        cd "$XZ/build"
        CC="$WASI_CC" AR=llvm-ar-19 RANLIB=llvm-ranlib-19 CFLAGS="-O2" "$XZ_SRC/configure" -q \
            --host=wasm32-wasi --build="$("$XZ_SRC/build-aux/config.guess")" --prefix="$XZ" \
            --disable-shared --enable-static --disable-threads --disable-xz --disable-xzdec \
            --disable-lzmadec --disable-lzmainfo --disable-lzma-links --disable-scripts --disable-doc \
            --disable-nls --disable-sandbox >configure.log 2>&1
        make -C src/liblzma -j"$JOBS" install >make.log 2>&1
    ) || {
        tail -n 30 "$XZ"/build/*.log >&2
        exit 1
    }
    echo "$xz_key" >"$XZ/.built"
fi

# --- SQLite for _sqlite3: the amalgamation, with a VFS that opens no files (sqlite_vfs.c) ----
SQLITE="$CACHE/sqlite-wasi"
SQLITE_DEFINES="-DSQLITE_OS_OTHER=1 -DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_TEMP_STORE=3
-DSQLITE_ENABLE_FTS4 -DSQLITE_ENABLE_FTS5 -DSQLITE_ENABLE_RTREE -DSQLITE_ENABLE_MATH_FUNCTIONS
-DSQLITE_ENABLE_COLUMN_METADATA"
sqlite_key="$SQLITE_SRC_VERSION $SQLITE_DEFINES $(sha256sum <"$HERE/sqlite_vfs.c") $TOOLCHAIN_KEY"
if [ "$(cat "$SQLITE/.built" 2>/dev/null)" != "$sqlite_key" ]; then
    log "building SQLite for wasm32-wasi"
    rm -rf "$SQLITE" && mkdir -p "$SQLITE/amalgamation" "$SQLITE/lib" "$SQLITE/include"
    (
        cd "$SQLITE/amalgamation"
        "$SQLITE_SRC/configure" --disable-tcl >configure.log 2>&1
        make sqlite3.c >make.log 2>&1
        # shellcheck disable=SC2086
        "$WASI_CC" -O2 -w $SQLITE_DEFINES -c sqlite3.c -o sqlite3.o
        # shellcheck disable=SC2086
        "$WASI_CC" -O2 -Wall -Werror $SQLITE_DEFINES -I. -c "$HERE/sqlite_vfs.c" -o sqlite_vfs.o
        llvm-ar-19 rcs "$SQLITE/lib/libsqlite3.a" sqlite3.o sqlite_vfs.o
        cp sqlite3.h "$SQLITE/include/"
    ) || {
        tail -n 30 "$SQLITE"/amalgamation/*.log >&2
        exit 1
    }
    echo "$sqlite_key" >"$SQLITE/.built"
fi

# --- CPython for wasm32-wasip1 --------------------------------------------------------------
# __DATE__/__TIME__ (in sys.version) from the source release, so rebuilds are byte-identical.
SOURCE_DATE_EPOCH=$(stat -c %Y "$PY_SRC/Include/patchlevel.h")
export SOURCE_DATE_EPOCH
CROSS="$CACHE/build-wasi"
CROSS_CONFIGURE_FLAGS="--without-ensurepip --disable-test-modules --with-tzpath= --with-computed-gotos"
cross_key="$PY_VERSION $CROSS_CONFIGURE_FLAGS $TOOLCHAIN_KEY $zlib_key $bzip2_key $xz_key $sqlite_key SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"
if [ "$(cat "$CROSS/.built" 2>/dev/null)" != "$cross_key" ]; then
    log "cross-building CPython $PY_VERSION for wasm32-wasip1 (about 2 minutes)"
    rm -rf "$CROSS" && mkdir -p "$CROSS"
    (
        cd "$CROSS"
        export CONFIG_SITE="$PY_SRC/Tools/wasm/config.site-wasm32-wasi"
        export CC="$WASI_CC" CPP="$WASI_CC -E" CXX=false AR=llvm-ar-19 RANLIB=llvm-ranlib-19
        # Keep pkg-config away from the host's libraries.
        export PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR="$TOOLS/sysroot/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$TOOLS/sysroot"
        export ZLIB_CFLAGS="-I$ZLIB/include" ZLIB_LIBS="-L$ZLIB/lib -lz"
        export BZIP2_CFLAGS="-I$BZIP2/include" BZIP2_LIBS="-L$BZIP2/lib -lbz2"
        export LIBLZMA_CFLAGS="-I$XZ/include" LIBLZMA_LIBS="-L$XZ/lib -llzma"
        export LIBSQLITE3_CFLAGS="-I$SQLITE/include" LIBSQLITE3_LIBS="-L$SQLITE/lib -lsqlite3"
        # --with-tzpath= (empty): no system tz directories; zoneinfo reads the bundled tzdata.
        # shellcheck disable=SC2086
        "$PY_SRC/configure" -C --host=wasm32-wasip1 --build="$("$PY_SRC/config.guess")" \
            --with-build-python="$BUILD_PYTHON" $CROSS_CONFIGURE_FLAGS >configure.log 2>&1
        # The 2022 wasi-libc has no pthread.h, so configure cannot size pthread_t; CPython's
        # pthread_stubs.h defines it as `unsigned`.
        grep -q '^#define SIZEOF_PTHREAD_T' pyconfig.h ||
            sed -i 's|^/\* #undef SIZEOF_PTHREAD_T \*/|#define SIZEOF_PTHREAD_T 4|' pyconfig.h
        grep -q '^#define SIZEOF_PTHREAD_T 4' pyconfig.h
        make -j"$JOBS" >make.log 2>&1
    ) || {
        tail -n 40 "$CROSS"/*.log >&2
        exit 1
    }
    echo "$cross_key" >"$CROSS/.built"
fi

# --- The driver ----------------------------------------------------------------------------
GEN="$CACHE/driver"
rm -rf "$GEN" && mkdir -p "$GEN"
cp "$HERE/driver.c" "$GEN/driver.c"
"$BUILD_PYTHON" - "$HERE/runner.py" "$HERE/stdlib_importer.py" "$GEN/guest_config.h" "$PREIMPORTS" <<'EOF'
import sys
runner, importer, header, preimports = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()
lines = ["/* Generated by guests/python/build.sh. */"]
lines.append("#define ZEVAL_PREIMPORTS " + ", ".join('"%s"' % name for name in preimports))
for name, path in (("RUNNER_SOURCE", runner), ("STDLIB_IMPORTER_SOURCE", importer)):
    data = open(path, "rb").read()
    compile(data, path, "exec")  # a syntax error should fail the build, not the snapshot
    lines.append("static const char %s[] = {" % name)
    for start in range(0, len(data), 16):
        lines.append("  " + ", ".join(str(byte) for byte in data[start:start + 16]) + ",")
    lines.append("  0};")
open(header, "w").write("\n".join(lines) + "\n")
EOF
cat >"$GEN/driver.mk" <<EOF
include Makefile
$GEN/driver.o: $GEN/driver.c $GEN/guest_config.h
	\$(CC) -c \$(PY_STDMODULE_CFLAGS) -I$GEN -DZEVAL_STDLIB_DIR='L"$GUEST_STDLIB"' -o \$@ $GEN/driver.c
$GEN/python.wasm: $GEN/driver.o \$(LINK_PYTHON_DEPS)
	\$(LINKCC) \$(PY_CORE_LDFLAGS) \$(LINKFORSHARED) -Wl,--strip-debug -o \$@ $GEN/driver.o \$(LINK_PYTHON_OBJS) \$(LIBS) \$(MODLIBS) \$(SYSLIBS)
EOF
log "linking the driver"
make -s -C "$CROSS" -f "$GEN/driver.mk" "$GEN/python.wasm" >&2

# --- Stdlib (read-only; the snapshot step and the raw guest need it) ------------------------
log "assembling the stdlib"
rm -rf "$OUT/python-stdlib.new"
mkdir -p "$OUT/python-stdlib.new"
(cd "$PY_SRC/Lib" && tar --exclude=__pycache__ --exclude=./test --exclude=./idlelib --exclude=./tkinter \
    --exclude=./turtledemo --exclude=./ensurepip/_bundled -cf - .) |
    tar -C "$OUT/python-stdlib.new" -xf -
cp "$CROSS"/build/lib.wasi-wasm32-"$PY_MAJMIN"/_sysconfigdata_*.py "$OUT/python-stdlib.new/"
mkdir -p "$OUT/python-stdlib.new/lib-dynload"
"$BUILD_PYTHON" -I "$HERE/make_stdlib_bundle.py" "$OUT/python-stdlib.new" "$ZONEINFO/zones" "$TZ_VERSION" \
    "$GUEST_STDLIB" "$OUT/python-stdlib.new/zeval-stdlib.bundle" >&2
"$BUILD_PYTHON" -I -m compileall -q -j0 --invalidation-mode unchecked-hash "$OUT/python-stdlib.new" >/dev/null
rm -rf "$OUT/python-stdlib"
mv "$OUT/python-stdlib.new" "$OUT/python-stdlib"

# --- Snapshot ------------------------------------------------------------------------------
cp "$GEN/python.wasm" "$OUT/python.raw.wasm"
log "snapshotting with zeval-wizer"
if [ -n "${ZEVAL_WIZER:-}" ]; then
    wizer=("$ZEVAL_WIZER")
else
    wizer=(cargo run -q --manifest-path "$REPO/Cargo.toml" -p zeval-sandbox --bin zeval-wizer --)
fi
"${wizer[@]}" "$OUT/python.raw.wasm" "$OUT/python.wasm.new" --preopen "$OUT/python-stdlib::$GUEST_STDLIB"
mv "$OUT/python.wasm.new" "$OUT/python.wasm"
# The version users see (the guest also reports Py_GetVersion() on empty stdin, see README.md).
grep -q "^#define PY_VERSION *\"$PY_VERSION\"" "$PY_SRC/Include/patchlevel.h"
echo "CPython $PY_VERSION" >"$OUT/python.version"
echo "$INPUTS_HASH" >"$STAMP"
log "built $OUT/python.wasm ($(du -h "$OUT/python.wasm" | cut -f1)), CPython $PY_VERSION"
