#!/usr/bin/env bash
# Installs the Debian packages ckpt needs (only when one is missing), then
# configures and builds into ./build. Sourced by demo.sh and test.sh.
set -euo pipefail

CKPT_PACKAGES=(
  meson ninja-build pkg-config cmake g++ gcc
  libboost-dev libboost-filesystem-dev
  nlohmann-json3-dev libdlpack-dev libcli11-dev
  libprotobuf-dev protobuf-compiler
  libhdf5-dev libxxhash-dev libzstd-dev
  catch2 clang-format
  # tools/fuzz.sh: clang, and its libFuzzer and sanitizer runtimes (only a
  # Recommends of clang, so named here).
  clang libclang-rt-14-dev
  python3-h5py python3-numpy python3-protobuf
  # Many processes: ckpt-mpi and its tests (mpirun).
  libopenmpi-dev openmpi-bin
)

ckpt_install_packages() {
  local missing=()
  for p in "${CKPT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "ckpt: installing ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q -o DPkg::Lock::Timeout=600
  $sudo apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}"
}

# ckpt_build DIR [meson options...]: configure (once) and build.
ckpt_build() {
  local dir=$1
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@"
  fi
  ninja -C "$dir"
}
