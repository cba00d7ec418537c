#!/usr/bin/env bash
# Quick start 1: install what is needed, build into ./build, run the main
# example.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
ckpt_install_packages
ckpt_build build
./build/examples/training_loop "${1:-./build/demo-checkpoints}"
