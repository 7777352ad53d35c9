# Sourced by the scripts that run PyTorch beside mnemo (test-torch-reference.sh,
# test-official-parity.sh): `source scripts/torch-venv.sh NAME` sets `python` to the torch venv's
# interpreter made by scripts/setup-tch.sh (${MNEMO_TORCH_VENV:-~/.cache/mnemo/torch-venv}) and
# CARGO_TARGET_DIR to CI's cache, or prints "NAME: SKIPPED: <reason>" and exits 0 when the venv
# has no torch.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mnemo/target}"
venv="${MNEMO_TORCH_VENV:-$HOME/.cache/mnemo/torch-venv}"
python="$venv/bin/python3"
if [ ! -x "$python" ] || ! "$python" -c 'import torch' 2>/dev/null; then
  echo "$1: SKIPPED: no torch in $venv (run scripts/setup-tch.sh)"
  exit 0
fi
