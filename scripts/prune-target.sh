#!/usr/bin/env bash
# Prunes the shared cargo target directory (`.cargo/config.toml`), which every clone reuses.
#
# A change to the workspace's dependencies gives its crates new metadata hashes, and cargo
# never removes what the old hashes built: a test binary with debug info is about 550 MiB,
# and a day of such rebuilds filled this machine's disk (54 GiB of stale binaries, CI failing
# with "No space left on device"). This keeps, for each workspace artifact name, the newest
# four files (a library, its unit-test binary, `cargo check` and `cargo build` each leave one
# under the same name; the integration-test binaries are all called `all`, one per crate with
# `tests/all`, so that name keeps four per such crate), and keeps incremental state the same
# way (also dropping any not used for a week). Dependencies from crates.io are left alone.
#
# `--dry-run` only lists what would go.
set -euo pipefail
cd "$(dirname "$0")/.."

dry_run=false
[ "${1:-}" = "--dry-run" ] && dry_run=true

target=$(sed -n 's/^target-dir = "\(.*\)"$/\1/p' .cargo/config.toml)
[ -n "$target" ] || exit 0
crates_with_all=$(find crates -mindepth 3 -maxdepth 3 -path 'crates/*/tests/all' -type d | wc -l)
keep_all=$(( 4 * crates_with_all ))

for profile in debug release; do
    deps="$target/$profile/deps"
    [ -d "$deps" ] || continue
    # Newest first; the name without its `-<hex>` hash (extension kept) is the group (`{16}`
    # is not written out: mawk, the default awk here, has no interval expressions).
    ls -t "$deps" \
        | { grep -E '^(lib)?(zeval|zeval_[a-z_]+|e2e|all|smoke|instantiate)-[0-9a-f]{16}' || true; } \
        | awk -v keep_all="$keep_all" '{
            group = $0; sub(/-[0-9a-f]+/, "", group)
            keep = (group ~ /^all(\.d)?$/) ? keep_all : 4
            if (++seen[group] > keep) print
        }' \
        | while read -r stale; do
            if $dry_run; then echo "would remove $deps/$stale"; else rm -f -- "$deps/$stale"; fi
        done
    incremental="$target/$profile/incremental"
    if [ -d "$incremental" ]; then
        if $dry_run; then
            find "$incremental" -mindepth 1 -maxdepth 1 -mtime +7 -printf 'would remove %p\n'
        else
            find "$incremental" -mindepth 1 -maxdepth 1 -mtime +7 -exec rm -rf {} +
        fi
        # And, as for `deps`, the newest four per workspace crate name (the integration-test
        # binaries' `all`, four per crate with `tests/all`): a day of builds in CI's clones
        # left 369 of them, 23 GiB, and filled the disk again.
        ls -t "$incremental" \
            | { grep -E '^(zeval|zeval_[a-z_]+|e2e|all|smoke|instantiate)-' || true; } \
            | awk -v keep_all="$keep_all" '{
                group = $0; sub(/-[^-]+$/, "", group)
                keep = (group == "all") ? keep_all : 4
                if (++seen[group] > keep) print
            }' \
            | while read -r stale; do
                if $dry_run; then echo "would remove $incremental/$stale"; else rm -rf -- "${incremental:?}/$stale"; fi
            done
    fi
done
