#!/usr/bin/env bash
# Fails, listing the files, when a C or C++ file of the repository is not
# formatted by the project's .clang-format. The frozen ABI 1.0 header under
# tests/abi/1.0/ is kept byte for byte and is exempt.
# Usage: tools/check-format.sh [--fix]
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.c' '*.h' '*.cpp' '*.hpp' |
  grep -v '^tests/abi/1\.0/')
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then bad+=("$f"); fi
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "ckpt: not formatted (run tools/check-format.sh --fix):"
  printf '  %s\n' "${bad[@]}"
  exit 1
fi
