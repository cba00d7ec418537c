#!/usr/bin/env bash
# Quick start 1: install what the demo needs (Debian packages, and the
# pinned Python packages of .venv), build the library, the shipped plugins
# and the training_loop example into ./build (not the tests), and run the
# example.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
ckpt_install_packages "${CKPT_DEMO_PACKAGES[@]}"
ckpt_python_env
ckpt_configure build
ninja -C build examples/training_loop plugins/ckpt-plugin-json.so \
  plugins/ckpt-plugin-proto.so plugins/ckpt-plugin-pytree.so
./build/examples/training_loop "${1:-./build/demo-checkpoints}"
