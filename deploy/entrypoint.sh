#!/bin/sh
# The container's entry point (deploy/Containerfile): points the guest directory at the guests
# built into the image, then runs zeval with the container's arguments.
#
# Why a symlink: zeval keeps precompiled guest modules in <guest dir>/../module-cache and
# loads one only from a directory owned by its own user that nobody else may write
# (crates/sandbox/src/cache.rs: a .cwasm is native code). The image's root file system is
# read-only, and a Kubernetes emptyDir is owned by root with mode 0777, so neither can be that
# directory. With the guest directory at /var/cache/zeval/guests (a symlink to
# /opt/zeval/guests, made here inside the writable volume), zeval creates
# /var/cache/zeval/module-cache itself, owned by its user with mode 0755, and every worker
# then loads the guests from it instead of compiling them again.
set -eu
guests=${ZEVAL_GUEST_DIR:-/var/cache/zeval/guests}
# A real directory there (guests mounted by the operator) is left alone.
if [ ! -d "$guests" ] || [ -L "$guests" ]; then
  ln -sfn /opt/zeval/guests "$guests"
fi
exec /usr/local/bin/zeval "$@"
