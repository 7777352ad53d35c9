#!/usr/bin/env bash
# Run the backend parity tests (crates/mnemo-compare/tests/parity.rs) for every backend that is
# set up on this machine, in one build, and say which ones are skipped and why.
#
#   scripts/test-backends.sh                 # cpu, ndarray, + wgpu and tch where set up
#   scripts/test-backends.sh wgpu            # only these (cpu is always the reference)
#   FEATURES=fusion,autotune scripts/test-backends.sh wgpu   # with burn's fusion and autotune
#   scripts/test-backends.sh --install       # first run setup-wgpu.sh / setup-tch.sh
#
# Backends: ndarray (always possible), wgpu and vulkan (need a Vulkan driver: scripts/setup-wgpu.sh),
# tch (needs libtorch 2.9.0: scripts/setup-tch.sh), cuda (needs an NVIDIA GPU; only when named).
# Exits non-zero if a test fails, or if a backend named explicitly cannot be set up.
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mnemo/target}"
# Without it the Vulkan stack prints a harmless "XDG_RUNTIME_DIR is invalid" per device.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then XDG_RUNTIME_DIR=$(mktemp -d); export XDG_RUNTIME_DIR; fi

install=false
wanted=()
for arg in "$@"; do
  case "$arg" in
    --install) install=true ;;
    ndarray|wgpu|vulkan|tch|cuda) wanted+=("$arg") ;;
    *) echo "test-backends: unknown argument \`$arg\` (backends: ndarray wgpu vulkan tch cuda; --install)" >&2; exit 2 ;;
  esac
done
explicit=true
if [ ${#wanted[@]} -eq 0 ]; then explicit=false; wanted=(ndarray wgpu tch); fi

features=()
skipped=()
for backend in "${wanted[@]}"; do
  case "$backend" in
    ndarray) features+=(ndarray) ;;
    wgpu|vulkan)
      if $install; then scripts/setup-wgpu.sh >/dev/null 2>&1 || true; fi
      if why=$(scripts/setup-wgpu.sh --check 2>&1 >/dev/null); then
        features+=("$backend")
      else
        skipped+=("$backend: $why (run scripts/setup-wgpu.sh)")
      fi ;;
    tch)
      mode=--check
      if $install; then mode=--env; fi
      log=$(mktemp)
      if ! command -v c++ >/dev/null && ! command -v g++ >/dev/null; then
        skipped+=("tch: no C++ compiler (torch-sys compiles a C++ shim; apt-get install g++)")
      elif line=$(scripts/setup-tch.sh $mode 2>"$log"); then
        eval "$line"
        features+=(tch)
      else
        skipped+=("tch: $(tail -n 1 "$log")")
      fi
      rm -f "$log" ;;
    cuda)
      if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
        features+=(cuda)
      else
        skipped+=("cuda: no NVIDIA GPU (nvidia-smi finds none)")
      fi ;;
  esac
done

for s in "${skipped[@]}"; do echo "test-backends: SKIPPING $s"; done
if $explicit && [ ${#skipped[@]} -gt 0 ]; then
  echo "test-backends: a backend named on the command line is not set up" >&2
  exit 1
fi
backends=$(IFS=,; echo "${features[*]}")
# FEATURES adds Cargo features of the GPU backends (fusion, autotune) to the build.
list="$backends${FEATURES:+${backends:+,}$FEATURES}"
echo "test-backends: parity tests with --features ${list:-<none>} (reference: cpu)"
cargo test --release -p mnemo-compare --test parity --features "$list"
status=$?
echo "test-backends: tested: cpu${backends:+,$backends}${FEATURES:+ (with $FEATURES)}; skipped: ${#skipped[@]}"
exit "$status"
