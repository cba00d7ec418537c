#!/usr/bin/env bash
# `pip install .` of the Python package into a fresh venv (Debian's Python
# 3), then README's first Python lines in it, ckpt.remote and the ckpt
# tool. Prints "python wheel: ok" or
# "python wheel: FAILED" (tools/test.sh counts the line).
set -uo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "$1"
  echo "python wheel: FAILED"
  exit 1
}
/usr/bin/python3 -m venv "$work/venv" || fail "no venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check --no-input . \
  > "$work/pip.log" 2>&1 || fail "$(tail -30 "$work/pip.log")"
out=$(cd "$work" && "$work/venv/bin/python" -c "
import ckpt, numpy as np
ckpt.save_pytree('$work/c', {'w': np.arange(6.0)})
print(ckpt.load_pytree('$work/c'))" 2>&1) || fail "$out"
echo "$out"
[ "$out" = "{'w': array([0., 1., 2., 3., 4., 5.])}" ] || fail "unexpected output"
# ckpt.remote: ckpt-s3 is in the wheel too (here on a folder store).
out=$(cd "$work" && "$work/venv/bin/python" -c "
import ckpt.remote
ckpt.remote.upload_checkpoint('$work/c', '$work/store/c')
print(ckpt.remote.list_checkpoints('$work/store'))" 2>&1) || fail "$out"
echo "$out"
[ "$out" = "['c']" ] || fail "unexpected output"
# The ckpt tool, as the package's script.
out=$("$work/venv/bin/ckpt" info "$work/c" 2>&1) || fail "$out"
echo "$out"
case "$out" in
  *"checkpoint  $work/c"*ckpt.pytree.PyTreeHandler*) ;;
  *) fail "unexpected output of ckpt info" ;;
esac
echo "python wheel: ok"
