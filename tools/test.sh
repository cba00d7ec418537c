#!/usr/bin/env bash
# Quick start 2, the full gate CI runs: install what is needed, build, and
# run every test twice: in ./build (release), and in ./build-sanitize under
# AddressSanitizer and UndefinedBehaviorSanitizer; the MPI tests under
# mpirun; the S3 tests against a local S3 server (moto); the fuzz seeds
# replayed in the sanitizer build; then a short run
# of every fuzz target under libFuzzer (tools/fuzz.sh); and the
# format and size checks. Ends with one line "N passed, N failed" counting
# the test cases that ran (each fuzz target is one).
#
# tools/test.sh --quick: the release build and the fast suite only (meson
# test -C build --suite fast), the inner loop.
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; fi
set -e
ckpt_install_packages "${CKPT_TEST_PACKAGES[@]}"
ckpt_python_env
export CKPT_TEST_PYTHON=$CKPT_VENV_PYTHON
# The Python package too, for the pinned .venv (python/tests).
ckpt_build build -Dtests=enabled -Dpython=build \
  -Dpython_path="$CKPT_VENV_PYTHON"
if [ "$quick" = 1 ]; then
  set +e
  meson test -C build --suite fast --print-errorlogs
  rc=$?
  # Test cases, from each test's Catch2 summary.
  log=build/meson-logs/testlog.txt
  p=$(grep -oE 'All tests passed \([0-9]+ assertions? in [0-9]+ test case' "$log" |
    awk '{s += $(NF-2)} END {print s + 0}')
  p2=$(grep -oE 'test cases: +[0-9]+ \| +[0-9]+ passed' "$log" |
    awk '{s += $(NF-1)} END {print s + 0}')
  f=$(grep -E '^test cases:' "$log" | grep -oE '[0-9]+ failed' |
    awk '{s += $1} END {print s + 0}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  echo "$((p + p2)) passed, $f failed"
  exit $rc
fi
ckpt_build build-sanitize -Dtests=enabled -Db_sanitize=address,undefined \
  -Db_lundef=false -Dbuildtype=debug -Dpython=build \
  -Dpython_path="$CKPT_VENV_PYTHON"
set +e

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1
export CKPT_LOG_LEVEL=${CKPT_LOG_LEVEL:-error}

passed=0
failed=0
status=0

# catch_counts LOG WHAT RC: sets p and f to the test cases passed and
# failed from the Catch2 summary in LOG (one failure when there is none).
catch_counts() {
  local summary
  summary=$(grep -E '^(test cases:|All tests passed)' "$1" | tail -1)
  if [[ $summary =~ All\ tests\ passed.*in\ ([0-9]+)\ test\ case ]]; then
    p=${BASH_REMATCH[1]}; f=0
  elif [[ $summary =~ test\ cases:\ +([0-9]+)\ \|\ +([0-9]+)\ passed\ \|\ +([0-9]+)\ failed ]]; then
    p=${BASH_REMATCH[2]}; f=${BASH_REMATCH[3]}
  elif [[ $summary =~ test\ cases:\ +([0-9]+)\ \|\ +([0-9]+)\ failed ]]; then
    p=0; f=${BASH_REMATCH[2]}
  else
    echo "ckpt: $2 ended without a summary (exit $3)"
    p=0; f=1
  fi
}

# run_counted LOG OK_RE FAIL_RE COMMAND...: runs COMMAND into LOG and adds
# the lines matching OK_RE and FAIL_RE to the counts (one failure when the
# command fails and no line says so).
run_counted() {
  local log=$1 ok=$2 bad=$3 rc p f
  shift 3
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  p=$(grep -cE "$ok" "$log")
  f=$(grep -cE "$bad" "$log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$rc" -ne 0 ]; then status=1; fi
}

# Formatting and sizes are part of the build: an unformatted file, or one
# too long, fails the run.
echo "== formatting"
if ./tools/check-format.sh; then
  echo "every file is formatted"
else
  failed=$((failed + 1))
  status=1
fi
echo "== sizes"
if ! ./tools/check-size.sh; then
  failed=$((failed + 1))
  status=1
fi

# run_catch LOG NAME COMMAND...: runs a Catch2 test binary (COMMAND) into
# LOG and adds its test cases to the counts.
run_catch() {
  local log=$1 name=$2 rc
  shift 2
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  catch_counts "$log" "$name" "$rc"
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$rc" -ne 0 ]; then status=1; fi
}

for dir in build build-sanitize; do
  echo "== tests in $dir"
  run_catch "$dir/test-output.txt" "$dir/tests/ckpt_tests" \
    "$dir/tests/ckpt_tests" --order lex
  # ckpt-s3 against moto's S3 server and the fault-injecting proxy, which
  # tests/s3/s3_env.py starts and stops around the run.
  echo "== S3 tests in $dir"
  run_catch "$dir/test-output-s3.txt" "$dir/tests/s3_tests" \
    "$CKPT_VENV_PYTHON" tests/s3/s3_env.py -- "$dir/tests/s3_tests" --order lex
done
# ckpt-s3's request signatures against botocore's; each request counts.
run_counted build/test-output-s3-signer.txt '^ok  ' '^FAIL  ' \
  "$CKPT_VENV_PYTHON" tests/s3/sigv4_check.py build/tests/sigv4_vectors
# The multi-process tests: one run per process count, counted from process
# 0's report (a failure on another process fails the run and is named),
# with an S3 server for the remote tier's (tests/s3/s3_env.py).
# Open MPI leaks at exit: LeakSanitizer stays off under mpirun.
for dir in build build-sanitize; do
  exe="$dir/tests/mpi/ckpt_mpi_tests"
  if [ ! -x "$exe" ]; then
    echo "ckpt: $exe was not built (is Open MPI installed?)"
    failed=$((failed + 1))
    status=1
    continue
  fi
  for np in 1 2 4; do
    echo "== MPI tests in $dir, $np processes"
    log="$dir/test-output-mpi-$np.txt"
    ASAN_OPTIONS=detect_leaks=0 timeout 600 "$CKPT_VENV_PYTHON" \
      tests/s3/s3_env.py -- mpirun --allow-run-as-root --oversubscribe \
      -np "$np" "$exe" --order lex --use-colour no 2>&1 |
      tee "$log"
    rc=${PIPESTATUS[0]}
    catch_counts "$log" "$exe with $np processes" "$rc"
    # All passed on process 0, but another process failed: count one.
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      if [ "$p" -gt 0 ]; then p=$((p - 1)); fi
      f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -ne 0 ]; then status=1; fi
  done
done

# The sharded_training example, run as README shows: saved by P processes,
# loaded by Q, for P and Q in {1, 2, 4}; each pair counts as one test case,
# passed when the run exits 0 and every process printed "ok".
echo "== sharded_training example"
example=build/examples/sharded_training
work=$(mktemp -d)
mpi_run() { mpirun --allow-run-as-root --oversubscribe -np "$@"; }
for writers in 1 2 4; do
  if ! mpi_run "$writers" "$example" save "$work/p$writers" >"$work/log" 2>&1; then
    cat "$work/log"
  fi
  for readers in 1 2 4; do
    if mpi_run "$readers" "$example" load "$work/p$writers" >"$work/log" 2>&1; then
      rc=0
    else
      rc=$?
    fi
    oks=$(grep -c "^process [0-9]* of $readers: ok\$" "$work/log" || true)
    if [ "$rc" -eq 0 ] && [ "$oks" -eq "$readers" ]; then
      echo "sharded_training: saved by $writers, loaded by $readers: ok"
      passed=$((passed + 1))
    else
      cat "$work/log"
      echo "sharded_training: saved by $writers, loaded by $readers: FAILED"
      failed=$((failed + 1))
      status=1
    fi
  done
done
rm -rf "$work"

# The benchmark's verdict rules; each case counts.
echo "== benchmark verdict rules"
run_counted build/test-output-bench-verdict.txt '^bench verdict [a-z0-9_]+: ok' \
  '^bench verdict [a-z0-9_]+: FAILED' /usr/bin/python3 tests/tools/bench_verdict_test.py

# Orbax -> ckpt: the pinned Orbax of .venv saves every case, ckpt loads
# each (tests/plugins/pytree/orbax/orbax_interop.py); each case counts.
echo "== Orbax interop"
run_counted build/test-output-orbax.txt '^(orbax -> ckpt|ckpt -> orbax) [a-z0-9_]+: ok' \
  '^(orbax -> ckpt|ckpt -> orbax) [a-z0-9_]+: FAILED' \
  meson test -C build --suite orbax --print-errorlogs --verbose

# The Python package: its pytest suite on the build in build/python (each
# test counts; with an S3 server for ckpt.remote's), then `pip install .`
# into a fresh venv (one case).
echo "== Python package"
run_counted build/test-output-python.txt '^python/tests/.*::.* PASSED' \
  '^python/tests/.*::.* (FAILED|ERROR)' \
  env PYTHONPATH=build/python CKPT_TOOL=build/tools/ckpt \
  "$CKPT_VENV_PYTHON" tests/s3/s3_env.py -- \
  "$CKPT_VENV_PYTHON" -m pytest python/tests -v -p no:cacheprovider --color=no
run_counted build/test-output-wheel.txt '^python wheel: ok' \
  '^python wheel: FAILED' tools/wheel-test.sh
# The same suite on the package of build-sanitize, under ASan and UBSan
# (python/meson.build preloads their runtime into the interpreter).
echo "== Python package in build-sanitize"
run_counted build-sanitize/test-output-python.txt \
  '^\.\./python/tests/.*::.* PASSED' '^\.\./python/tests/.*::.* (FAILED|ERROR)' \
  meson test -C build-sanitize --suite python --print-errorlogs --verbose

# The fuzz targets' seeds replayed by gcc under ASan+UBSan (the fuzz
# suite of build-sanitize: replay_main.cpp, no libFuzzer); each target
# counts as one test case.
echo "== fuzz seed replay in build-sanitize"
run_counted build-sanitize/test-output-fuzz-replay.txt \
  '^ *[0-9]+/[0-9]+ +ckpt:fuzz / fuzz_[a-z0-9_]+ +OK' \
  '^ *[0-9]+/[0-9]+ +ckpt:fuzz / fuzz_[a-z0-9_]+ +(FAIL|TIMEOUT|ERROR)' \
  meson test -C build-sanitize --suite fuzz --print-errorlogs

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
