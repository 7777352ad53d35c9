#!/usr/bin/env bash
# Time mnemo on a GPU beside torch on CUDA, and print the ratios: for each size (`peer`, the
# peer benchmark's config, and `gpu`, D 512 / 6 layers / 8 heads / FFN 2048 / batch 64), the
# torch side (scripts/bench_torch_gpu.py: lucidrains' Feedback Transformer and a torch
# Transformer of the same size) and `mnemo bench --size S` for each kernel language: `wgsl`
# (`--backend wgpu` of a binary built with --features wgpu,fusion,autotune) and `spirv`
# (`--backend vulkan` of one built with --features vulkan,fusion,autotune: with cubecl's Vulkan
# compiler compiled in, every Vulkan adapter gets SPIR-V, so the two need two binaries), with
# each phase's GPU dispatches per step.
#
#   scripts/bench-gpu.sh                       # full run
#   scripts/bench-gpu.sh --quick               # smoke run (a few iterations)
#   MNEMO_WGSL=./mnemo-wgsl MNEMO_SPIRV=./mnemo-spirv scripts/bench-gpu.sh   # prebuilt, no cargo
#
# Env:
#   MNEMO_WGSL, MNEMO_SPIRV  the two mnemo binaries (default: built with cargo into
#                $CARGO_TARGET_DIR, default target/, and copied to $OUT_DIR)
#   PYTHON       a python whose torch sees the GPU and that has feedback-transformer-pytorch
#                (default python3); the torch side is skipped, with a message, when it has not
#   TORCH_DEVICE torch's device (default cuda; `cpu` for a smoke run on a machine without GPU)
#   BACKENDS     kernel languages (default wgsl,spirv)   SIZES   sizes (default peer,gpu)
#   PHASES       phases (default fb_train_chunk1,fb_forward_chunk1,fb_gen_b1,fb_gen_b8,tf_train)
#   OUT_DIR      where the JSON documents and summary.md go (default target/bench-gpu)
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=(--quick); shift ;;
    *) echo "bench-gpu: unknown argument $1 (expected --quick)" >&2; exit 2 ;;
  esac
done

PYTHON="${PYTHON:-python3}"
TORCH_DEVICE="${TORCH_DEVICE:-cuda}"
BACKENDS="${BACKENDS:-wgsl,spirv}"
SIZES="${SIZES:-peer,gpu}"
PHASES="${PHASES:-fb_train_chunk1,fb_forward_chunk1,fb_gen_b1,fb_gen_b8,tf_train}"
OUT_DIR="${OUT_DIR:-target/bench-gpu}"
mkdir -p "$OUT_DIR"

# 1. What this machine has.
{
  echo "date: $(date -u +%FT%TZ)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  if command -v nvidia-smi > /dev/null; then
    echo "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
  else
    echo "gpu: none (no nvidia-smi)"
  fi
} | tee "$OUT_DIR/machine.txt" >&2
if ! scripts/setup-wgpu.sh --check > /dev/null 2>&1; then
  echo "bench-gpu: no Vulkan loader or driver found (scripts/setup-wgpu.sh --check); the mnemo" \
    "backends need one" >&2
  exit 1
fi

# 2. mnemo: one binary per kernel language, and the backend name each runs under.
declare -A BIN=([wgsl]="${MNEMO_WGSL:-}" [spirv]="${MNEMO_SPIRV:-}")
declare -A FEATURES=([wgsl]=wgpu,fusion,autotune [spirv]=vulkan,fusion,autotune)
declare -A NAME=([wgsl]=wgpu [spirv]=vulkan)
IFS=',' read -ra BACKEND_LIST <<< "$BACKENDS"
for lang in "${BACKEND_LIST[@]}"; do
  [[ -n "${FEATURES[$lang]:-}" ]] || { echo "bench-gpu: BACKENDS: unknown \`$lang\` (wgsl, spirv)" >&2; exit 2; }
  if [[ -z "${BIN[$lang]}" ]]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
    cargo build --release -p mnemo-cli --features "${FEATURES[$lang]}" >&2
    cp "$CARGO_TARGET_DIR/release/mnemo" "$OUT_DIR/mnemo-$lang"
    BIN[$lang]="$OUT_DIR/mnemo-$lang"
  fi
  [[ -x "${BIN[$lang]}" ]] || { echo "bench-gpu: ${BIN[$lang]} ($lang) is not an executable" >&2; exit 2; }
done

# 3. Each size: torch, then mnemo on each backend.
IFS=',' read -ra SIZE_LIST <<< "$SIZES"
for size in "${SIZE_LIST[@]}"; do
  echo "== $size: torch on $TORCH_DEVICE" >&2
  if ! "$PYTHON" scripts/bench_torch_gpu.py --device "$TORCH_DEVICE" --size "$size" \
      --only "$PHASES" "${QUICK[@]}" --out "$OUT_DIR/torch_$size.json" > /dev/null; then
    echo "bench-gpu: the torch side failed (PYTHON=$PYTHON needs torch with CUDA and" \
      "feedback-transformer-pytorch); mnemo's numbers follow without ratios" >&2
    rm -f "$OUT_DIR/torch_$size.json"
  fi
  for lang in "${BACKEND_LIST[@]}"; do
    echo "== $size: mnemo ($lang) --backend ${NAME[$lang]}" >&2
    if ! "${BIN[$lang]}" bench --backend "${NAME[$lang]}" --size "$size" --only "$PHASES" \
        "${QUICK[@]}" --out "$OUT_DIR/mnemo_${lang}_$size.json" > /dev/null; then
      echo "bench-gpu: mnemo ($lang) failed (see above)" >&2
      rm -f "$OUT_DIR/mnemo_${lang}_$size.json"
    fi
  done
done

# 4. The table.
python3 - "$OUT_DIR" "$SIZES" "$BACKENDS" "$PHASES" <<'PY' | tee "$OUT_DIR/summary.md"
import json, os, sys
out, sizes, backends, phases = sys.argv[1], *[a.split(",") for a in sys.argv[2:]]
def load(name):
    path = os.path.join(out, name)
    return json.load(open(path))["results"] if os.path.exists(path) else {}
print(open(os.path.join(out, "machine.txt")).read().strip().replace("\n", "  \n"))
print()
head = "| size | phase | torch tok/s |" + "".join(
    f" {b} tok/s | {b}/torch | {b} dispatches/step |" for b in backends)
print(head)
print("|" + "---|" * (head.count("|") - 1))
for size in sizes:
    torch = load(f"torch_{size}.json")
    mnemo = {b: load(f"mnemo_{b}_{size}.json") for b in backends}
    for p in phases:
        t = torch.get(p, {}).get("tokens_per_s")
        row = f"| {size} | {p} | {t if t else 'n/a'} |"
        for b in backends:
            r = mnemo[b].get(p, {})
            m = r.get("tokens_per_s")
            ratio = f"{m / t:.2f}" if m and t else "n/a"
            launches = r.get("launches") or {}
            per = launches.get("per_step") or launches.get("per_iter") or "n/a"
            row += f" {m if m else r.get('error', 'n/a')} | {ratio} | {per} |"
        print(row)
print()
print("dispatches/step: kernels launched per sequential step (per token of a Feedback segment or")
print("generation), or per training step for tf_train; from `mnemo bench`'s `launches`.")
PY
echo "bench-gpu: JSON and summary.md in $OUT_DIR" >&2
