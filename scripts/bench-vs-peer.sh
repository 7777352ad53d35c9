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
# build, and the table adds its ratio, so a change is measured before and after side by side),
# OFFICIAL_TREE (an extracted copy of facebookresearch/transformer-sequential, the paper's own
# code: the fb_train_chunk1 round then also times it with ../shared/bench/official_feedback.py,
# on a patched copy as that script's docstring says, and the table adds mnemo/official, the
# stricter anchor; nothing of that code is copied into mnemo). Writes the results and a figure
# (`mnemo report` of summary.json: <folder>-vs-peer.svg/.png) to OUT_DIR.
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

# 2b. The paper's own code, patched for PyTorch >= 2 in a scratch copy (the user's tree is left
# as it is): BufferWrite keeps its tensors on ctx instead of save_for_backward.
OFFICIAL_SCRIPT="${OFFICIAL_SCRIPT:-../shared/bench/official_feedback.py}"
OFFICIAL_COPY=""
if [[ -n "${OFFICIAL_TREE:-}" ]]; then
  [[ -f "$OFFICIAL_TREE/models/feedback.py" ]] ||
    { echo "error: OFFICIAL_TREE=$OFFICIAL_TREE has no models/feedback.py" >&2; exit 2; }
  [[ -f "$OFFICIAL_SCRIPT" ]] || { echo "error: $OFFICIAL_SCRIPT not found (set OFFICIAL_SCRIPT)" >&2; exit 2; }
  OFFICIAL_COPY=$(mktemp -d)
  trap 'rm -rf "$OFFICIAL_COPY"' EXIT
  cp -r "$OFFICIAL_TREE/." "$OFFICIAL_COPY"
  sed -i 's/ctx.save_for_backward(state, buffer_grad)/ctx.state, ctx.buffer_grad = state, buffer_grad/;
          s/state, buffer_grad = ctx.saved_tensors/state, buffer_grad = ctx.state, ctx.buffer_grad/' \
    "$OFFICIAL_COPY/models/feedback.py"
fi

# 3. Alternate: for each phase, the peer then mnemo (SUMMARY_ONLY=1 re-prints the last results).
IFS=',' read -ra LIST <<< "$PHASES"
if [[ -n "${SUMMARY_ONLY:-}" ]]; then
  LIST=()
else
  # A run without a baseline or the official code must not report an older run's results.
  [[ -n "${MNEMO_BASELINE:-}" ]] || rm -f "$OUT_DIR"/baseline_*.json
  [[ -n "$OFFICIAL_COPY" ]] || rm -f "$OUT_DIR"/official_*.json
fi
for phase in "${LIST[@]}"; do
  echo "== $phase: peer" >&2
  "$VENV/bin/python" "$PEER_SCRIPT" --only "$phase" --wait-idle "$WAIT" "${QUICK[@]}" \
    --out "$OUT_DIR/peer_$phase.json" > /dev/null
  echo "== $phase: mnemo" >&2
  "$MNEMO" bench --backend "$BACKEND" --only "$phase" --wait-idle "$WAIT" "${QUICK[@]}" \
    --out "$OUT_DIR/mnemo_$phase.json" > /dev/null
  if [[ -n "$OFFICIAL_COPY" && "$phase" == fb_train_chunk1 ]]; then
    echo "== $phase: official (the paper's code, shared K/V)" >&2
    # A failure here (another version of that code) must not end the run: the table goes on
    # without the official ratio.
    if ! "$VENV/bin/python" "$OFFICIAL_SCRIPT" "$OFFICIAL_COPY" share > "$OUT_DIR/official_$phase.json.part"; then
      echo "== official: FAILED ($OFFICIAL_SCRIPT on $OFFICIAL_TREE, see above); no official ratio" >&2
      rm -f "$OUT_DIR/official_$phase.json.part"
    else
      mv "$OUT_DIR/official_$phase.json.part" "$OUT_DIR/official_$phase.json"
    fi
  fi
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
rows, merged = [], {"benchmark": "mnemo_vs_peer", "peer": {}, "mnemo": {}}
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
off_path = os.path.join(out, "official_fb_train_chunk1.json")
fb = merged["mnemo"].get("fb_train_chunk1")
if fb and os.path.exists(off_path):
    with open(off_path) as f:
        off = json.loads(f.read().strip().splitlines()[-1])
    r = fb["tokens_per_s"] / off["fb_train_tok_s"]
    print(f"fb_train_chunk1 against the paper's own code (shared K/V): official "
          f"{off['fb_train_tok_s']} tok/s, mnemo {fb['tokens_per_s']}, ratio {r:.2f}")
    merged["official"] = {"fb_train_chunk1": off}
    merged.setdefault("ratios", {})["official_fb_train_chunk1"] = round(r, 3)
tf = merged["mnemo"].get("tf_train")
if fb and tf:
    r = tf["tokens_per_s"] / fb["tokens_per_s"]
    print(f"mnemo Transformer/Feedback training time per token: {r:.2f}x")
    merged["mnemo_tf_over_fb_train"] = round(r, 3)
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(merged, f, indent=2)
print(f"(tf_gen_*: mnemo uses a KV cache, the peer re-runs its context; not like for like)")
print(f"details: {out}/summary.json")
PY

# 5. The figure: speed against the peer and peak memory per phase (mnemo-analysis' peer_figure).
"$MNEMO" report "$OUT_DIR/summary.json" --out "$OUT_DIR"
