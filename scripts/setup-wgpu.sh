#!/usr/bin/env bash
# Install what burn's wgpu backend needs on a machine without a GPU: the Vulkan loader
# (libvulkan1) and Mesa's software Vulkan driver, lavapipe (mesa-vulkan-drivers), from Debian or
# Ubuntu apt. Then check that the loader finds a Vulkan device.
#
#   scripts/setup-wgpu.sh            # installs (as root, or with sudo) and checks
#   scripts/setup-wgpu.sh --check    # only checks; exits 1 if no Vulkan driver is installed
#
# No environment variable is needed afterwards: wgpu finds lavapipe through the Vulkan loader's
# standard ICD directory (/usr/share/vulkan/icd.d/lvp_icd.*.json). On a machine that also has a
# real GPU, `CUBECL_WGPU_DEFAULT_DEVICE=Cpu` makes mnemo's `wgpu` backend use lavapipe anyway.
set -euo pipefail

# The drivers the loader will use: those named by VK_DRIVER_FILES / VK_ICD_FILENAMES when set
# (e.g. an NVIDIA driver's ICD under /usr/local/nvidia), else the standard ICD directories.
icd_files() {
  local named="${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-}}"
  if [ -n "$named" ]; then
    tr ':' '\n' <<< "$named" | while read -r f; do if [ -f "$f" ]; then echo "$f"; fi; done
    return 0
  fi
  ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json 2>/dev/null || true
}
# Not `grep -q`: it exits at the first match, ldconfig then dies of SIGPIPE, and under pipefail
# the pipeline fails — an intermittent "not installed" (seen once in CI).
loader_present() { ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' > /dev/null; }

check() {
  if ! loader_present; then
    echo "setup-wgpu: the Vulkan loader libvulkan.so.1 is not installed (apt package libvulkan1)" >&2
    return 1
  fi
  local icds
  icds=$(icd_files)
  if [ -z "$icds" ]; then
    echo "setup-wgpu: no Vulkan driver (ICD) is installed (apt package mesa-vulkan-drivers)" >&2
    return 1
  fi
  echo "setup-wgpu: Vulkan loader found; drivers:"
  echo "$icds" | sed 's/^/  /'
}

if [ "${1:-}" = "--check" ]; then
  check
  exit $?
fi

if ! command -v apt-get >/dev/null; then
  echo "setup-wgpu: no apt-get here; install the Vulkan loader and Mesa's lavapipe driver with" \
       "your package manager (e.g. vulkan-loader and mesa-vulkan-drivers / vulkan-swrast)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then sudo="sudo"; else
    echo "setup-wgpu: run as root or install sudo (needs apt-get install)" >&2
    exit 1
  fi
fi
if check >/dev/null 2>&1 && ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1; then
  echo "setup-wgpu: lavapipe already installed"
else
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends libvulkan1 mesa-vulkan-drivers
fi
check
echo "setup-wgpu: done; build with e.g. \`cargo run --release --features wgpu -- compare-backends\`"
