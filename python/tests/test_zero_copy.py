"""Arrays cross the binding without copies: the peak memory of a save and
of a load, each in a fresh process, grows by about the array's size once
(the array itself), never twice. An async save copies a NumPy array or a
torch tensor (they may change) but not a JAX array (immutable)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ckpt

MIB = 1 << 20
SIZE = 256 * MIB

PROGRAM = r"""
import json, sys
import numpy as np
import ckpt
def peak():
    # The high-water mark of this process's memory since exec (unlike
    # ru_maxrss, which a child inherits from its parent).
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
path, what = sys.argv[1], sys.argv[2]
size = int(sys.argv[3])
if what == "load":
    before = peak()
    w = ckpt.load_pytree(path)["w"]
    total = float(w.sum())  # every page touched (a load may map the file)
    after = peak()
    print(json.dumps({"growth": after - before,
                      "owndata": bool(w.flags.owndata),
                      "sum": total}))
    sys.exit(0)
if what == "jax_async":
    import jax.numpy as jnp
    w = jnp.ones(size // 4, dtype=jnp.float32)
elif what.startswith("torch"):
    import torch
    w = torch.ones(size // 4, dtype=torch.float32)
    what = what[len("torch_"):]
else:
    w = np.ones(size // 4, dtype=np.float32)
before = peak()
if what == "save":
    ckpt.save_pytree(path, {"w": w})
else:
    ckpt.save_pytree_async(path, {"w": w}).result()
print(json.dumps({"growth": peak() - before}))
"""


def run(what, path):
    out = subprocess.run([sys.executable, "-c", PROGRAM, str(path), what,
                          str(SIZE)], capture_output=True, text=True,
                         env=dict(os.environ), check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_a_save_writes_from_the_arrays_memory(tmp_path):
    growth = run("save", tmp_path / "a")["growth"]
    assert growth < SIZE // 4, f"a save grew by {growth / MIB:.0f} MiB"


def test_a_save_writes_from_a_torch_tensors_memory(tmp_path):
    pytest.importorskip("torch")
    growth = run("torch_save", tmp_path / "a")["growth"]
    assert growth < SIZE // 4, f"a save grew by {growth / MIB:.0f} MiB"
    # A tensor may change: an async save snapshots it.
    growth = run("torch_async", tmp_path / "b")["growth"]
    assert growth > SIZE * 3 // 4, "the snapshot of a mutable tensor"


def test_an_async_save_copies_numpy_but_not_jax(tmp_path):
    numpy_growth = run("async", tmp_path / "a")["growth"]
    jax_growth = run("jax_async", tmp_path / "b")["growth"]
    assert numpy_growth > SIZE * 3 // 4, "the snapshot of a mutable array"
    assert jax_growth < SIZE // 4, \
        f"an async save of a JAX array grew by {jax_growth / MIB:.0f} MiB"


def test_a_load_returns_ckpts_buffer(tmp_path):
    path = tmp_path / "a"
    ckpt.save_pytree(path, {"w": np.ones(SIZE // 4, dtype=np.float32)})
    got = run("load", path)
    assert SIZE * 3 // 4 < got["growth"] < SIZE * 5 // 4, \
        f"a load of {SIZE // MIB} MiB grew by {got['growth'] / MIB:.0f} MiB"
    assert not got["owndata"]  # NumPy's view of ckpt's buffer
    assert got["sum"] == SIZE // 4
