#!/usr/bin/env bash
# Cross-check mnemo's safetensors export against a plain PyTorch implementation
# (scripts/torch_reference.py): mnemo writes small seeded Feedback and Transformer LMs and their
# logits over two segments (the #[ignore]d test weights::tests::write_torch_reference_cases of
# mnemo-train), PyTorch loads the files with `safetensors` and recomputes the logits from the
# tensor-name mapping of docs/models.md ("Weights in PyTorch"). Fails if any logit differs by
# more than 1e-5 relative.
#
# Needs the torch venv of scripts/setup-tch.sh (${MNEMO_TORCH_VENV:-~/.cache/mnemo/torch-venv});
# installs `safetensors` and `numpy` into it when missing. Without the venv it prints
# "SKIPPED: <reason>" and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/torch-venv.sh
source scripts/torch-venv.sh torch-reference
if ! "$python" -c 'import safetensors, numpy' 2>/dev/null; then
  echo "torch-reference: installing safetensors and numpy into $venv"
  if ! "$python" -m pip install --quiet --disable-pip-version-check safetensors numpy >&2; then
    echo "torch-reference: SKIPPED: cannot install safetensors/numpy into $venv (no package registry?)"
    exit 0
  fi
fi

cases=$(mktemp -d)
trap 'rm -rf "$cases"' EXIT
# --workspace --lib: the build of the README's `cargo test --workspace --release` (same
# features), so CI rebuilds nothing; the other lib test binaries run no test.
MNEMO_TORCH_REFERENCE_DIR="$cases" cargo test --release --quiet --workspace --lib \
  weights::tests::write_torch_reference_cases -- --ignored --exact
"$python" scripts/torch_reference.py "$cases"
