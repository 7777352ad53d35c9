#!/usr/bin/env bash
# Official parity, live (issue 18 §4): scripts/official_reference.py (a PyTorch program of
# mnemo's own, written from the official Feedback Transformer / TransformerSeq equations with
# the official parameter names) first checks that it reproduces the official code's own numbers
# (the committed fixtures of scripts/make_official_parity.py), then writes seeded random
# checkpoints with their log-probabilities over two carried blocks; mnemo-train's ignored test
# `official_parity::official_reference_cases` imports each and must match within 1e-5 relative,
# and a corrupted name, shape or value must fail naming the tensor.
#
# Needs the torch venv of scripts/setup-tch.sh (${MNEMO_TORCH_VENV:-~/.cache/mnemo/torch-venv}).
# Without it prints "SKIPPED: <reason>" and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/torch-venv.sh
source scripts/torch-venv.sh official-parity
"$python" scripts/official_reference.py check crates/mnemo-train/tests/fixtures/official
cases=$(mktemp -d)
trap 'rm -rf "$cases"' EXIT
"$python" scripts/official_reference.py write "$cases"
# --workspace: the features of the README's `cargo test --workspace --release`, so the test
# binary it built is reused.
MNEMO_OFFICIAL_REFERENCE_DIR="$cases" cargo test --release --quiet --workspace \
  --test official_parity official_reference_cases -- --ignored --exact --nocapture
