#!/usr/bin/env bash
# Prepare libtorch for mnemo's `tch` backend (burn-tch 0.22.1 -> tch/torch-sys 0.22.0, which
# is written against PyTorch 2.9.0): a Python venv holding PyPI's torch==2.9.0 wheel, whose
# libtorch torch-sys links. Creates the venv only if it is missing (or lacks torch 2.9.0), then
# prints the variables to export:
#
#   scripts/setup-tch.sh                 # create/check the venv, print the export line
#   eval "$(scripts/setup-tch.sh --env)" # create/check it and export the variables in this shell
#   scripts/setup-tch.sh --check         # install nothing: print the export line if the venv
#                                        # is ready, else say why and exit 1
#
# The venv lives in ${MNEMO_TORCH_VENV:-$HOME/.cache/mnemo/torch-venv}. The wheel is large
# (PyPI's Linux build of torch 2.9.0 bundles CUDA 12.8 libraries, ~3 GB installed); it runs on
# the CPU when there is no GPU. Set MNEMO_TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# to install the CPU-only build instead where that index is reachable.
set -euo pipefail
TORCH_VERSION=2.9.0
venv="${MNEMO_TORCH_VENV:-$HOME/.cache/mnemo/torch-venv}"
env_only=false
check_only=false
case "${1:-}" in
  --env) env_only=true ;;
  --check) env_only=true; check_only=true ;;
  "") ;;
  *) echo "setup-tch: unknown argument \`$1\` (use --env or --check)" >&2; exit 2 ;;
esac
say() { if $env_only; then echo "$*" >&2; else echo "$*"; fi; }

has_torch() {
  [ -x "$venv/bin/python3" ] &&
    [ "$("$venv/bin/python3" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)" = "$TORCH_VERSION" ]
}

if has_torch; then
  say "setup-tch: $venv already has torch $TORCH_VERSION"
elif $check_only; then
  echo "setup-tch: no torch $TORCH_VERSION in $venv (run scripts/setup-tch.sh)" >&2
  exit 1
else
  python=$(command -v python3 || true)
  if [ -z "$python" ]; then
    echo "setup-tch: python3 is not installed (apt-get install python3 python3-venv)" >&2
    exit 1
  fi
  if [ ! -x "$venv/bin/python3" ]; then
    say "setup-tch: creating the venv $venv"
    mkdir -p "$(dirname "$venv")"
    if ! "$python" -m venv "$venv" >&2; then
      echo "setup-tch: \`python3 -m venv\` failed; install python3-venv (apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
  say "setup-tch: installing torch==$TORCH_VERSION into $venv (large download, several minutes)"
  index=()
  [ -n "${MNEMO_TORCH_INDEX_URL:-}" ] && index=(--index-url "$MNEMO_TORCH_INDEX_URL")
  "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check "${index[@]}" \
    "torch==$TORCH_VERSION" >&2
  if ! has_torch; then
    echo "setup-tch: $venv still has no importable torch $TORCH_VERSION" >&2
    exit 1
  fi
fi

torch_lib=$("$venv/bin/python3" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
line="export LIBTORCH_USE_PYTORCH=1 PATH=\"$venv/bin:\$PATH\" LD_LIBRARY_PATH=\"$torch_lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
if $env_only; then
  echo "$line"
else
  echo
  echo "Export these before building or running with --features tch (torch-sys finds libtorch"
  echo "through the venv's python3 at build time; the binary loads it from LD_LIBRARY_PATH):"
  echo
  echo "  $line"
  echo
  echo "or run: eval \"\$(scripts/setup-tch.sh --env)\""
fi
