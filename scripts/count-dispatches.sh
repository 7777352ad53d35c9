#!/usr/bin/env bash
# Count the GPU compute dispatches (kernel launches) of mnemo's steps on a cubecl backend, at
# the peer config: per Feedback step (one token of a training segment, of a no-gradient
# segment, of generation) and per Transformer layer (the difference between a training step of
# L and of L-1 layers). Works on any Vulkan driver, also Mesa's software one (lavapipe), where
# what counts is the number of kernels, not their speed.
#
#   scripts/count-dispatches.sh                         # builds mnemo with --features wgpu
#   MNEMO=/path/to/mnemo scripts/count-dispatches.sh     # a binary built with other features
#
# Env: MNEMO (binary; default: cargo build --features "${FEATURES:-wgpu}"), BACKEND (default
# wgpu), LAYERS (default 4), OUT_DIR (default target/count-dispatches).
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${BACKEND:-wgpu}"
LAYERS="${LAYERS:-4}"
OUT_DIR="${OUT_DIR:-target/count-dispatches}"
mkdir -p "$OUT_DIR"
if [[ -z "${MNEMO:-}" ]]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
  cargo build --release -p mnemo-cli --features "${FEATURES:-wgpu}" >&2
  MNEMO="$CARGO_TARGET_DIR/release/mnemo"
fi

run() {  # run LAYERS PHASES
  "$MNEMO" bench --backend "$BACKEND" --quick --layers "$1" --only "$2" \
    --out "$OUT_DIR/layers$1.json" > /dev/null
}
run "$LAYERS" fb_train_chunk1,fb_forward_chunk1,fb_gen_b1,tf_train
run "$((LAYERS - 1))" fb_train_chunk1,fb_gen_b1,tf_train

python3 - "$OUT_DIR" "$LAYERS" <<'PY' | tee "$OUT_DIR/summary.md"
import json, os, sys
out, L = sys.argv[1], int(sys.argv[2])
hi = json.load(open(os.path.join(out, f"layers{L}.json")))
lo = json.load(open(os.path.join(out, f"layers{L - 1}.json")))["results"]
print(f"backend {hi['backend']}, peer config with {L} layers, cpu: {hi['cpu']}")
print()
print(f"| phase | dispatches per iteration | per step (token) | per layer and step |")
print("|---|---|---|---|")
for phase, res in hi["results"].items():
    n = (res.get("launches") or {})
    if not n:
        print(f"| {phase} | n/a ({res.get('error', 'not a GPU backend')}) | | |")
        continue
    steps = res["tokens_per_iter"] // res.get("batch", hi["config"]["batch"])
    per_step = n["per_step"] if n["per_step"] is not None else n["per_iter"]
    m = (lo.get(phase, {}).get("launches") or {})
    layer = "n/a"
    if m:
        layer = n["per_iter"] - m["per_iter"]
        layer = round(layer / steps, 2) if n["per_step"] is not None else layer
    print(f"| {phase} | {n['per_iter']} | {per_step} | {layer} |")
print()
print("tf_train is parallel over the segment: its 'per step' is the training step, and its")
print("'per layer' the dispatches one more layer adds to a training step (forward, backward, Adam).")
PY
