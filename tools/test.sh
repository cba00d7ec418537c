#!/usr/bin/env bash
# Quick start 2: install what is needed, build, and run every test twice:
# in ./build, and in ./build-sanitize under AddressSanitizer and
# UndefinedBehaviorSanitizer; then a short run of every fuzz target
# (tools/fuzz.sh). Ends with one line "N passed, N failed" counting the
# test cases that ran (each fuzz target is one).
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
set -e
ckpt_install_packages
ckpt_build build
ckpt_build build-sanitize -Db_sanitize=address,undefined -Db_lundef=false \
  -Dbuildtype=debug
set +e

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1
export CKPT_LOG_LEVEL=${CKPT_LOG_LEVEL:-error}

passed=0
failed=0
status=0

# Formatting is part of the build: an unformatted file fails the run.
echo "== formatting"
if ./tools/check-format.sh; then
  echo "every file is formatted"
else
  failed=$((failed + 1))
  status=1
fi

for dir in build build-sanitize; do
  echo "== tests in $dir"
  log="$dir/test-output.txt"
  "$dir/tests/ckpt_tests" --order lex 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  summary=$(grep -E '^(test cases:|All tests passed)' "$log" | tail -1)
  if [[ $summary =~ All\ tests\ passed.*in\ ([0-9]+)\ test\ case ]]; then
    p=${BASH_REMATCH[1]}; f=0
  elif [[ $summary =~ test\ cases:\ +([0-9]+)\ \|\ +([0-9]+)\ passed\ \|\ +([0-9]+)\ failed ]]; then
    p=${BASH_REMATCH[2]}; f=${BASH_REMATCH[3]}
  elif [[ $summary =~ test\ cases:\ +([0-9]+)\ \|\ +([0-9]+)\ failed ]]; then
    p=0; f=${BASH_REMATCH[2]}
  else
    echo "ckpt: $dir/tests/ckpt_tests ended without a summary (exit $rc)"
    p=0; f=1
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$rc" -ne 0 ]; then status=1; fi
done
# Fuzzing (tools/fuzz.sh, clang in ./build-fuzz): every target of
# tests/fuzz replays its seeds and saved crashes, then fuzzes ~5 s; each
# target counts as one test case.
echo "== fuzz targets in build-fuzz"
log=$(mktemp)
./tools/fuzz.sh 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
p=$(grep -c '^fuzz_[a-z0-9_]*: ok' "$log")
f=$(grep -c '^fuzz_[a-z0-9_]*: FAILED' "$log")
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
  echo "ckpt: tools/fuzz.sh failed (exit $rc) before running its targets"
  f=1
fi
if [ -d build-fuzz ]; then mv "$log" build-fuzz/test-output.txt; else rm -f "$log"; fi
passed=$((passed + p))
failed=$((failed + f))
if [ "$rc" -ne 0 ]; then status=1; fi

echo "$passed passed, $failed failed"
exit $status
