#!/usr/bin/env bash
# Time mnemo against the peer PyTorch Feedback Transformer (lucidrains'
# feedback-transformer-pytorch) on this machine, in one invocation, phase by phase,
# alternating peer and mnemo, and print the ratios mnemo/peer per phase.
#
#   scripts/bench-vs-peer.sh                 # full run (several minutes)
#   scripts/bench-vs-peer.sh --quick         # smoke run
#   scripts/bench-vs-peer.sh --wait-idle 240 # wait for an idle machine before each phase
#
# Env: MNEMO_TORCH_VENV (default ~/.cache/mnemo/torch-venv; created with torch==2.9.0,
# feedback-transformer-pytorch and numpy only if missing), MNEMO_BACKEND (default cpu),
# MNEMO_PHASES (comma list, default all shared phases), MNEMO_FEATURES (Cargo features of the
# mnemo build, e.g. tch), OUT_DIR (default target/bench-vs-peer), MNEMO_BASELINE (a `mnemo`
# binary built from another commit: each phase then also runs it, between the peer and this
# build, and the table adds its ratio, so a change is measured before and after side by side).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=()
WAIT=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=(--quick); shift ;;
    --wait-idle) WAIT="${2:?--wait-idle needs seconds}"; shift 2 ;;
    *) echo "error: unknown argument $1 (expected --quick or --wait-idle S)" >&2; exit 2 ;;
  esac
done

VENV="${MNEMO_TORCH_VENV:-$HOME/.cache/mnemo/torch-venv}"
BACKEND="${MNEMO_BACKEND:-cpu}"
PHASES="${MNEMO_PHASES:-fb_train_chunk1,fb_gen_b1,tf_train,fb_gen_b8,fb_forward_chunk1,ref,tf_gen_b1,tf_gen_b8}"
OUT_DIR="${OUT_DIR:-target/bench-vs-peer}"
# The peer's script lives in ../shared/bench beside the checkout (as in CI).
PEER_SCRIPT="${PEER_SCRIPT:-../shared/bench/peer_feedback.py}"
[[ -f "$PEER_SCRIPT" ]] || { echo "error: peer script not found (set PEER_SCRIPT)" >&2; exit 2; }
mkdir -p "$OUT_DIR"

# 1. The peer's venv (pip install is idempotent; only done when the venv lacks the packages).
if ! "$VENV/bin/python" -c "import torch, feedback_transformer_pytorch" 2>/dev/null; then
  echo "installing the peer into $VENV" >&2
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install torch==2.9.0 feedback-transformer-pytorch numpy >&2
fi

# 2. mnemo, release build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# MNEMO_FEATURES=tch (after `eval "$(scripts/setup-tch.sh --env)"`) builds the libtorch backend in.
cargo build --release -p mnemo-cli ${MNEMO_FEATURES:+--features "$MNEMO_FEATURES"} >&2
MNEMO="$CARGO_TARGET_DIR/release/mnemo"

# 3. Alternate: for each phase, the peer then mnemo (SUMMARY_ONLY=1 re-prints the last results).
IFS=',' read -ra LIST <<< "$PHASES"
[[ -n "${SUMMARY_ONLY:-}" ]] && LIST=()
for phase in "${LIST[@]}"; do
  echo "== $phase: peer" >&2
  "$VENV/bin/python" "$PEER_SCRIPT" --only "$phase" --wait-idle "$WAIT" "${QUICK[@]}" \
    --out "$OUT_DIR/peer_$phase.json" > /dev/null
  echo "== $phase: mnemo" >&2
  "$MNEMO" bench --backend "$BACKEND" --only "$phase" --wait-idle "$WAIT" "${QUICK[@]}" \
    --out "$OUT_DIR/mnemo_$phase.json" > /dev/null
  if [[ -n "${MNEMO_BASELINE:-}" ]]; then
    echo "== $phase: baseline ($MNEMO_BASELINE)" >&2
    "$MNEMO_BASELINE" bench --backend "$BACKEND" --only "$phase" --wait-idle "$WAIT" "${QUICK[@]}" \
      --out "$OUT_DIR/baseline_$phase.json" > /dev/null
  fi
done

# 4. Ratios.
python3 - "$OUT_DIR" "$PHASES" <<'PY'
import json, os, sys
out, phases = sys.argv[1], sys.argv[2].split(",")
def load(who, p):
    path = os.path.join(out, f"{who}_{p}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["results"][p]
rows, merged = [], {"peer": {}, "mnemo": {}}
base = any(os.path.exists(os.path.join(out, f"baseline_{p}.json")) for p in phases)
extra = f" {'base tok/s':>11} {'base ratio':>10}" if base else ""
print(f"{'phase':<20} {'peer tok/s':>11} {'mnemo tok/s':>12} {'ratio':>7} {'peer MB':>8} {'mnemo MB':>9} {'foreign p/m':>12}{extra}")
for p in phases:
    a, b = load("peer", p), load("mnemo", p)
    if a is None or b is None:
        print(f"{p:<20} (not run)")
        continue
    merged["peer"][p], merged["mnemo"][p] = a, b
    if p == "ref":
        print(f"{'ref':<20} peer: {a}\n{'':<20} mnemo: {b}")
        continue
    ta, tb = a.get("tokens_per_s"), b.get("tokens_per_s")
    ratio = tb / ta if ta and tb else float("nan")
    c = load("baseline", p) if base else None
    tc = c.get("tokens_per_s") if c else None
    extra = f" {tc:>11} {tc / ta:>10.2f}" if tc and ta else ""
    print(f"{p:<20} {ta:>11} {tb:>12} {ratio:>7.2f} {a.get('peak_rss_mb'):>8} {b.get('peak_rss_mb'):>9} "
          f"{a.get('foreign_cpu_frac')}/{b.get('foreign_cpu_frac')}{extra}")
    merged.setdefault("ratios", {})[p] = round(ratio, 3)
    if tc and ta:
        merged.setdefault("baseline", {})[p] = c
        merged.setdefault("baseline_ratios", {})[p] = round(tc / ta, 3)
fb, tf = merged["mnemo"].get("fb_train_chunk1"), merged["mnemo"].get("tf_train")
if fb and tf:
    r = tf["tokens_per_s"] / fb["tokens_per_s"]
    print(f"mnemo Transformer/Feedback training time per token: {r:.2f}x")
    merged["mnemo_tf_over_fb_train"] = round(r, 3)
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(merged, f, indent=2)
print(f"(tf_gen_*: mnemo uses a KV cache, the peer re-runs its context; not like for like)")
print(f"details: {out}/summary.json")
PY
