#!/usr/bin/env bash
# Keep a build cache from filling the disk (a full disk once failed a CI link with "ld terminated
# with signal 7 [Bus error]"). Prints the free space and the cache's size; empties the cache when
# it is larger than MAX_CACHE_GB or the disk has less than MIN_FREE_GB free (a cache is only a
# cache: cargo rebuilds it, ~9 minutes on 2 cores); fails with a clear message when even then less
# than NEED_GB is free.
#
#   scripts/disk-guard.sh DIR            # DIR: the cache, e.g. $CARGO_TARGET_DIR
#   MIN_FREE_GB=10 MAX_CACHE_GB=20 NEED_GB=4 scripts/disk-guard.sh DIR   # the defaults
set -euo pipefail
dir=${1:?usage: scripts/disk-guard.sh CACHE_DIR}
min_free_gb=${MIN_FREE_GB:-10}
max_cache_gb=${MAX_CACHE_GB:-20}
need_gb=${NEED_GB:-4}
mkdir -p "$dir"

free_gb() { df -Pk "$dir" | awk 'NR == 2 { printf "%d", $4 / 1048576 }'; }
cache_gb() { du -sk "$dir" 2>/dev/null | awk '{ printf "%d", $1 / 1048576 }'; }

free=$(free_gb)
cache=$(cache_gb)
echo "disk-guard: ${free} GB free on the disk of $dir; the cache holds ${cache} GB"
if [ "$cache" -gt "$max_cache_gb" ] || [ "$free" -lt "$min_free_gb" ]; then
  echo "disk-guard: emptying $dir (over ${max_cache_gb} GB, or under ${min_free_gb} GB free); cargo rebuilds it"
  find "$dir" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
  free=$(free_gb)
  echo "disk-guard: now ${free} GB free"
fi
if [ "$free" -lt "$need_gb" ]; then
  echo "disk-guard: only ${free} GB free on the disk of $dir; building and testing needs about ${need_gb} GB (df -h; free space and run again)" >&2
  exit 1
fi
