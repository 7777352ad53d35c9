#!/usr/bin/env bash
# Kill-and-resume property test (issue 14): a run killed with SIGKILL at random moments, and
# resumed after each kill, must end exactly where a run that was never interrupted ends.
#
#   scripts/kill-resume.sh [KILLS] [SEED]
#
# Trains both models of the smoke config (120 steps, a checkpoint and a log line every step, so
# many kills land during a checkpoint or log write) once uninterrupted, then again with KILLS
# (default 20) `kill -9`s, each after a random time (uniform up to twice an uninterrupted run's
# duration divided by KILLS, so the kills spread over the whole run) and each followed by
# `mnemo train --resume`; then resumes to the end. It compares, per model, the whole
# `metrics.jsonl` but for its timings (the training loss of every step, every validation and
# the test result, all at full precision: the whole trajectory) and `mnemo eval --json` of the
# final weights on the valid and test splits. (Checkpoint bytes cannot be compared: burn's
# records carry random parameter ids.) Exit 0 when everything matches, 1 otherwise. SEED
# (default: the current time) seeds the kill times; it is printed so a failure can be replayed.
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
sed -e 's/^steps = 12$/steps = 120/' \
    -e 's/^checkpoint_every = 6$/checkpoint_every = 1/' \
    -e 's/^eval_every = 6$/eval_every = 20/' \
    -e 's/^log_every = 3$/log_every = 1/' \
    experiments/smoke/tiny.toml > "$config"
grep -q '^steps = 120$' "$config" || { echo "kill-resume: could not adapt the smoke config" >&2; exit 1; }

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

echo "== kill-resume: $kills kills, seed $seed"
start=$(now_ms)
"$mnemo" train "$config" --out "$work/whole" --quiet > /dev/null
duration=$(( $(now_ms) - start ))
echo "uninterrupted run: ${duration} ms"

killed=0
finished_early=0
for i in $(seq 1 "$kills"); do
  # 30-bit random from two draws of $RANDOM.
  delay=$(( ( (RANDOM << 15) | RANDOM ) % (2 * duration / kills + 1) ))
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

# A metrics log without its timings (which differ from run to run).
untimed() {
  sed -E 's/"(elapsed_s|tokens_per_s)":[^,}]*,?//g; s/,}/}/g' "$1"
}

failed=0
for run in "$work"/whole/*/*/; do
  model=$(basename "$run")
  name=$(basename "$(dirname "$run")")
  other="$work/killed/$name/$model"
  if ! diff <(untimed "$run/metrics.jsonl") <(untimed "$other/metrics.jsonl") > "$work/diff"; then
    echo "kill-resume: $model: metrics.jsonl differs from the uninterrupted run (seed $seed):" >&2
    head -n 20 "$work/diff" >&2
    failed=1
  else
    echo "$model: every logged loss identical ($(grep -c '"train"' "$run/metrics.jsonl") train lines)"
  fi
  for split in valid test; do
    a=$("$mnemo" eval "$run" --split $split --json | sed -E 's/"run_dir":"[^"]*",?//')
    b=$("$mnemo" eval "$other" --split $split --json | sed -E 's/"run_dir":"[^"]*",?//')
    if [ "$a" = "$b" ]; then
      echo "$model: final weights evaluate identically on $split"
    else
      echo "kill-resume: $model: $split differs (seed $seed): $a vs $b" >&2
      failed=1
    fi
  done
done
exit $failed
