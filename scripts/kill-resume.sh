#!/usr/bin/env bash
# Kill-and-resume property test (issue 14): a run killed with SIGKILL at random moments, and
# resumed after each kill, must end with exactly the weights and optimizer state of a run that
# was never interrupted.
#
#   scripts/kill-resume.sh [KILLS] [SEED]
#
# Trains both models of the smoke config (60 steps, a checkpoint every step, so many kills land
# during a checkpoint or log write) once uninterrupted, then again with KILLS (default 20)
# `kill -9`s at uniformly random times within one uninterrupted run's duration, each followed
# by `mnemo train --resume`; then resumes to the end and compares the SHA-256 digests that
# every checkpoint stores for its model and optimizer sections (docs: crates/mnemo-train/src/
# checkpoint.rs, "Format"). Exit 0 when every model matches, 1 otherwise. SEED (default: the
# current time) seeds the kill times; it is printed so a failure can be replayed.
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-20}
seed=${2:-$(date +%s)}
RANDOM=$seed
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet -p mnemo-cli
mnemo="$CARGO_TARGET_DIR/release/mnemo"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
config="$work/kill.toml"
sed -e 's/^steps = 12$/steps = 60/' \
    -e 's/^checkpoint_every = 6$/checkpoint_every = 1/' \
    -e 's/^eval_every = 6$/eval_every = 20/' \
    -e 's/^log_every = 3$/log_every = 1/' \
    experiments/smoke/tiny.toml > "$config"
grep -q '^steps = 60$' "$config" || { echo "kill-resume: could not adapt the smoke config" >&2; exit 1; }

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

echo "== kill-resume: $kills kills, seed $seed"
start=$(now_ms)
"$mnemo" train "$config" --out "$work/whole" --quiet > /dev/null
duration=$(( $(now_ms) - start ))
echo "uninterrupted run: ${duration} ms"

killed=0
finished_early=0
for i in $(seq 1 "$kills"); do
  # A random moment within one whole run (32-bit from two draws of $RANDOM).
  delay=$(( ( (RANDOM << 15) | RANDOM ) % (duration + 1) ))
  "$mnemo" train "$config" --out "$work/killed" --resume --quiet > /dev/null 2>"$work/stderr" &
  pid=$!
  sleep "$(printf '%d.%03d' $(( delay / 1000 )) $(( delay % 1000 )))"
  kill -9 "$pid" 2>/dev/null || true
  status=0
  wait "$pid" || status=$?
  # Killed (137) or finished (0): anything else is a failure to resume.
  if [ "$status" = 137 ]; then
    killed=$((killed + 1))
  elif [ "$status" = 0 ]; then
    finished_early=$((finished_early + 1))
  else
    echo "kill-resume: resume $i exited $status (seed $seed):" >&2
    cat "$work/stderr" >&2
    exit 1
  fi
done
"$mnemo" train "$config" --out "$work/killed" --resume --quiet > /dev/null
echo "killed $killed times ($finished_early resumes finished before their kill)"

# The digest stored for section N (0 = STAT, 1 = MODL, 2 = OPTM) of a checkpoint.
digest() {
  local file=$1 section=$2 offset=16 n len
  for ((n = 0; n < section; n++)); do
    len=$(od -An -t u8 --endian=little -j $((offset + 4)) -N 8 "$file" | tr -d ' ')
    offset=$((offset + 44 + len))
  done
  od -An -t x1 -j $((offset + 12)) -N 32 "$file" | tr -d ' \n'
}

failed=0
for run in "$work"/whole/*/*/; do
  model=$(basename "$run")
  name=$(basename "$(dirname "$run")")
  a="$run/checkpoint.mnemo"
  b="$work/killed/$name/$model/checkpoint.mnemo"
  for section in 1 2; do
    what=$([ "$section" = 1 ] && echo weights || echo "optimizer state")
    if [ "$(digest "$a" $section)" = "$(digest "$b" $section)" ]; then
      echo "$model: $what identical"
    else
      echo "kill-resume: $model: $what differ from the uninterrupted run (seed $seed)" >&2
      failed=1
    fi
  done
done
exit $failed
