#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang under ASan+UBSan
# into ./build-fuzz and runs them over their seed corpora.
#
#   tools/fuzz.sh                      every target: replay its seeds (and
#                                      any saved crash), then fuzz ~5 s
#                                      (CKPT_FUZZ_SECONDS)
#   tools/fuzz.sh --runs N [TARGET..]  N executions per target
#   tools/fuzz.sh --seconds S [TARGET..]
#   tools/fuzz.sh --corpus             rewrite tests/fuzz/corpus/ from
#                                      freshly saved checkpoints
#   tools/fuzz.sh --list               the targets
#   tools/fuzz.sh --build [--all]      build only (--all: the whole project,
#                                      tests included, with clang -Werror)
#   tools/fuzz.sh --no-build ...       run what is built
#   tools/fuzz.sh ... -- ARGS          extra libFuzzer arguments
#
# A target that finds a crash (a sanitizer report, an uncaught non-ckpt
# exception, a leak, a timeout or an out-of-memory) fails; its input is
# kept in tests/fuzz/crashes/<target>/ and is replayed by every later run.
# Reproduce one with build-fuzz/tests/fuzz/fuzz_<target> <file>.
# Short runs (no --runs) start from a fresh work corpus; --runs and
# --seconds keep what they find in build-fuzz/fuzz-corpus/<target>/.
# Logs: build-fuzz/fuzz-logs/<target>.log. Ends with "fuzz: N passed,
# N failed" (one per target).
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
set -e

BUILD=build-fuzz
FUZZ_DIR=tests/fuzz
TARGETS=(checkpoint_metadata checkpoint_metadata_sealed checksums
  pytree_metadata pytree_metadata_load pytree_tree_index
  pytree_tree_index_load pytree_arrays orbax_format orbax_load json_data
  proto_pbtxt)

runs=""
seconds=""
mode=run
build_all=0
build=1
selected=()
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --corpus) mode=corpus; shift ;;
    --list) printf '%s\n' "${TARGETS[@]}"; exit 0 ;;
    --build) mode=build; shift ;;
    --all) build_all=1; shift ;;
    --no-build) build=0; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "tools/fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *)
      if [[ " ${TARGETS[*]} " != *" $1 "* ]]; then
        echo "tools/fuzz.sh: no target $1 (tools/fuzz.sh --list)" >&2
        exit 2
      fi
      selected+=("$1"); shift ;;
  esac
done
if [ ${#selected[@]} -eq 0 ]; then selected=("${TARGETS[@]}"); fi

if [ "$build" = 1 ]; then
  ckpt_install_packages "${CKPT_TEST_PACKAGES[@]}"

  # Configure (once): clang, ASan+UBSan, coverage instrumentation in libckpt
  # and the plugins too (-fsanitize=fuzzer-no-link), so that the fuzzer sees
  # what the readers do, not only the targets.
  if [ ! -f "$BUILD/build.ninja" ]; then
    CC=clang CXX=clang++ meson setup "$BUILD" -Dfuzz=true \
      -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug \
      -Dc_args=-fsanitize=fuzzer-no-link -Dcpp_args=-fsanitize=fuzzer-no-link
  elif ! grep -q '"name": "fuzz", "value": true' \
      "$BUILD/meson-info/intro-buildoptions.json"; then
    meson configure "$BUILD" -Dfuzz=true
  fi

  # The targets, and the plugins they load at run time.
  if [ "$build_all" = 1 ]; then
    ninja -C "$BUILD"
  else
    ninja -C "$BUILD" build.ninja >/dev/null
    mapfile -t plugins < <(ninja -C "$BUILD" -t targets all |
      sed -n 's/^\(plugins\/ckpt-plugin-[^:]*\.so\): .*/\1/p')
    ninja -C "$BUILD" fuzz "${plugins[@]}"
  fi
fi
set +e
if [ "$mode" = build ]; then exit 0; fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export CKPT_LOG_LEVEL=${CKPT_LOG_LEVEL:-error}

if [ "$mode" = corpus ]; then
  rm -rf "$FUZZ_DIR/corpus"
  fixtures=../shared/fixtures/orbax
  if [ -d "$fixtures" ]; then
    exec "$BUILD/tests/fuzz/fuzz_corpus_gen" "$FUZZ_DIR/corpus" "$fixtures"
  fi
  exec "$BUILD/tests/fuzz/fuzz_corpus_gen" "$FUZZ_DIR/corpus"
fi

mkdir -p "$BUILD/fuzz-logs"
passed=0
failed=0
for target in "${selected[@]}"; do
  exe="$BUILD/tests/fuzz/fuzz_$target"
  log="$BUILD/fuzz-logs/$target.log"
  crashes="$FUZZ_DIR/crashes/$target"
  # Entropic scheduling is off: in clang 14 its bookkeeping costs up to 8x
  # the executions of these targets (-- -entropic=1 turns it back on).
  args=(-timeout=30 -rss_limit_mb=2048 -entropic=0 -print_final_stats=1
    -artifact_prefix="$crashes/")
  if [ -n "$runs$seconds" ]; then
    work="$BUILD/fuzz-corpus/$target"
    if [ -n "$runs" ]; then args+=(-runs="$runs"); fi
    if [ -n "$seconds" ]; then args+=(-max_total_time="$seconds"); fi
  else
    work="$BUILD/fuzz-corpus-short/$target"
    rm -rf "$work"
    args+=(-max_total_time="${CKPT_FUZZ_SECONDS:-5}")
  fi
  mkdir -p "$work" "$crashes"
  # Saved crashes first: one that still crashes fails the target at once.
  inputs=()
  for f in "$crashes"/*; do [ -f "$f" ] && inputs+=("$f"); done
  rc=0
  : >"$log"
  if [ ${#inputs[@]} -gt 0 ]; then
    "$exe" "${args[@]}" "${extra[@]}" "${inputs[@]}" >>"$log" 2>&1 || rc=$?
  fi
  start=$(date +%s)
  if [ "$rc" -eq 0 ]; then
    "$exe" "${args[@]}" "${extra[@]}" "$work" "$FUZZ_DIR/corpus/$target" \
      >>"$log" 2>&1 || rc=$?
  fi
  elapsed=$(($(date +%s) - start))
  rmdir "$crashes" "$FUZZ_DIR/crashes" 2>/dev/null
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    echo "fuzz_$target: ok, ${execs:-?} runs in ${elapsed} s (${rate:-?}/s)"
  else
    failed=$((failed + 1))
    echo "fuzz_$target: FAILED (exit $rc), log $log:"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|ckpt fuzz:|.*runtime error:|    #[0-9]+ )' \
      "$log" | head -30 | sed 's/^/  /'
    ls "$crashes" 2>/dev/null | sed "s|^|  input: $crashes/|"
  fi
  if [ "$rc" -eq 0 ] && [ -z "$runs$seconds" ]; then rm -rf "$work"; fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
