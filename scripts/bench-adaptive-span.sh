#!/usr/bin/env bash
# scripts/bench-adaptive-span.sh: needs data/enwik8-mini (scripts/setup-data.sh) and a release
# build (cargo build --release); OUT (default /tmp/mnemo-span-speed) holds the configs and logs.
#
# tokens/s of the enwik8-mini Feedback model (S = 2048) at fixed spans: init z0, warm-up so long
# that the spans stay where they start; 30 steps, the log line at steps 20 and 30, then stopped.
cd "$(dirname "$0")/.."
set -uo pipefail
OUT=${OUT:-/tmp/mnemo-span-speed}; mkdir -p "$OUT"
MNEMO=${MNEMO:-target/release/mnemo}
[ -f data/enwik8-mini/enwik8 ] || { echo "data/enwik8-mini/enwik8 missing: run scripts/setup-data.sh" >&2; exit 1; }
[ -x "$MNEMO" ] || { echo "$MNEMO missing: run cargo build --release (or set MNEMO)" >&2; exit 1; }
for z in 0.03 0.125 0.25 0.5 1.0; do
  sed -e "s/^steps = 120/steps = 30/; s/^log_every = 20/log_every = 10/; s/^warmup_steps = 100/warmup_steps = 100000/" \
      -e "s/adaptive_span = { loss = 5e-7 }/adaptive_span = { loss = 5e-7, init = $z }/" \
      experiments/enwik8/adaptive_span.toml > "$OUT/z$z.toml"
  grep -q "init = $z" "$OUT/z$z.toml" && grep -q "^warmup_steps = 100000" "$OUT/z$z.toml" || {
    echo "experiments/enwik8/adaptive_span.toml changed: update the edits of $0" >&2; exit 1; }
  rm -rf "$OUT/out$z"
  "$MNEMO" train "$OUT/z$z.toml" --model trimmed --out "$OUT/out$z" > "$OUT/z$z.log" 2>&1 &
  pid=$!
  while ! grep -q "step 30/30" "$OUT/z$z.log"; do sleep 1; if ! kill -0 $pid 2>/dev/null; then break; fi; done
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  echo "z0=$z: $(grep -E 'step (20|30)/30' "$OUT/z$z.log" | sed 's/.*acc *[0-9.]*% //' | tr '\n' ' ')"
done
