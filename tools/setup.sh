#!/usr/bin/env bash
# The Debian packages ckpt needs (installed only when one is missing), and
# how a build folder is configured and built. Sourced by demo.sh and
# test.sh.
set -euo pipefail

# What building the library, the plugins, the tool and the examples needs
# (tools/demo.sh).
CKPT_DEMO_PACKAGES=(
  meson ninja-build pkg-config cmake g++ gcc
  libboost-dev libboost-filesystem-dev
  nlohmann-json3-dev libdlpack-dev libcli11-dev
  libprotobuf-dev protobuf-compiler
  libhdf5-dev libxxhash-dev libzstd-dev
  # ckpt-s3: HTTP, and the hashes and HMACs of its request signatures.
  libcurl4-openssl-dev libssl-dev
  # The repository's .venv (ckpt_python_env), and the headers the Python
  # package's extension is built against.
  python3-venv python3-dev
)
# What the tests add (tools/test.sh).
CKPT_TEST_PACKAGES=(
  "${CKPT_DEMO_PACKAGES[@]}"
  catch2 clang-format
  # tools/check-size.sh: function lengths.
  universal-ctags
  # tools/fuzz.sh: clang, and its libFuzzer and sanitizer runtimes (only a
  # Recommends of clang, so named here).
  clang libclang-rt-14-dev
  python3-h5py python3-numpy python3-protobuf
  # Many processes: ckpt-mpi and its tests (mpirun).
  libopenmpi-dev openmpi-bin
  # tools/bench/bench.py: its picture, and cycles and instructions where
  # the machine offers hardware counters.
  python3-matplotlib linux-perf
)

# ckpt_install_packages PACKAGE...: installs those not installed yet.
ckpt_install_packages() {
  local missing=()
  for p in "$@"; do
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

# ckpt_python_env: the repository's .venv, made by Debian's Python 3 with
# the packages pinned in tools/python-requirements.txt (from PyPI). Made
# once: skipped when .venv was made from exactly that file.
CKPT_VENV_PYTHON=$PWD/.venv/bin/python
ckpt_python_env() {
  local req=tools/python-requirements.txt stamp=.venv/ckpt-requirements.txt
  if [ -x .venv/bin/python ] && cmp -s "$req" "$stamp"; then
    return 0
  fi
  echo "ckpt: making .venv from $req"
  rm -f "$stamp"
  /usr/bin/python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    --no-input -r "$req"
  cp "$req" "$stamp"
}

# ckpt_configure DIR [meson options...]: configures DIR once; later calls
# apply the options given (meson then reconfigures at the next build).
ckpt_configure() {
  local dir=$1
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@"
  elif [ $# -gt 0 ] && ! meson configure "$dir" "$@"; then
    # Options this build folder cannot take (made by an older ckpt).
    meson setup --wipe "$dir" "$@"
  fi
}

# ckpt_build DIR [meson options...]: configure, then build everything.
ckpt_build() {
  ckpt_configure "$@"
  ninja -C "$1"
}
