"""Saves checkpoints with Python Orbax, every way it writes them, for ckpt to
load (orbax_interop.py runs this with the repository's .venv Python).

    python orbax_write_cases.py OUT [--large]

For each case, OUT/<case>/ is what Orbax wrote and OUT/<case>.expected/ is
what was saved, in orbax_dump.cpp's spec format (spec.json + N.bin), with
the checkpointables (or, for a Checkpointer root, the steps and metrics)
as ckpt should load them. OUT/cases.json lists the cases:
{"name", "kind": "checkpoint" | "checkpointer", "note"}.

JAX runs on 4 CPU devices so that sharded arrays have real shards.
"""
import json
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=4").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

jax.config.update("jax_enable_x64", True)

import orbax.checkpoint as ocp0  # noqa: E402
from orbax.checkpoint import v1 as ocp  # noqa: E402

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
          "uint32", "uint64", "float16", "bfloat16", "float32", "float64",
          "complex64", "complex128"]


def sample(dtype, shape, seed):
    """Deterministic elements of every kind a dtype holds: negatives,
    extremes, and for floats NaN, infinities, -0 and subnormals."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if dtype == "bool":
        return (rng.integers(0, 2, n) == 1).reshape(shape)
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
        if n >= 2:
            x[0], x[1] = info.min, info.max
        return x.reshape(shape)
    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    if dtype.startswith("complex"):
        real = rng.standard_normal(n) * 1e3
        imag = rng.standard_normal(n)
        x = (real + 1j * imag).astype(np_dtype)
        if n >= 2:
            x[0] = complex(np.nan, np.inf)
        return x.reshape(shape)
    x = (rng.standard_normal(n) * 100).astype(np_dtype)
    specials = [np.nan, np.inf, -np.inf, -0.0, 1e-45 if dtype == "float32" else 0.0]
    for k, v in enumerate(specials[:n]):
        x[k] = v
    return x.reshape(shape)


class Expect:
    """Writes what was saved, as orbax_dump.cpp writes what ckpt loads."""

    def __init__(self, folder):
        self.folder = folder
        self.next = 0
        os.makedirs(folder, exist_ok=True)

    def spec(self, v):
        if v is None:
            return {"none": True}
        if isinstance(v, bool):
            return {"bool": v}
        if isinstance(v, int):
            return {"int": v}
        if isinstance(v, float):
            return {"float": self.real(v)}
        if isinstance(v, str):
            return {"str": v}
        if isinstance(v, dict):
            return {"dict": [[str(k), self.spec(c)] for k, c in v.items()]}
        if isinstance(v, (list, tuple)):
            return {"list": [self.spec(c) for c in v]}
        a = np.asarray(v)
        if a.ndim == 0 and isinstance(v, np.generic):
            pass  # a NumPy scalar is saved as a 0-d array
        name = "bfloat16" if a.dtype == ml_dtypes.bfloat16 else a.dtype.name
        file = f"{self.next}.bin"
        self.next += 1
        np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tofile(
            os.path.join(self.folder, file))
        return {"array": {"dtype": name, "shape": list(a.shape), "file": file}}

    @staticmethod
    def real(v):
        if np.isnan(v):
            return "nan"
        if np.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v

    def write(self, spec):
        with open(os.path.join(self.folder, "spec.json"), "w") as f:
            json.dump(spec, f, indent=1)


def context(use_ocdbt=True, use_zarr3=True, use_compression=True):
    saving = ocp.options.ArrayOptions.Saving(
        use_ocdbt=use_ocdbt, use_zarr3=use_zarr3,
        use_compression=use_compression)
    return ocp.Context(array_options=ocp.options.ArrayOptions(saving=saving))


def every_dtype_tree():
    """Every dtype, shapes of every rank, 0-d arrays, NumPy and Python
    scalars, strings, None, nested dicts and lists. (Orbax 0.12.8 refuses
    zero-size arrays itself: "Cannot save arrays with zero size".)"""
    tree = {"dtypes": {d: sample(d, (3, 5), k) for k, d in enumerate(DTYPES)}}
    tree["shapes"] = {
        "zero_d": np.array(2.5, dtype=np.float32),
        "vector": np.arange(7, dtype=np.int32),
        "rank4": sample("float32", (2, 3, 2, 2), 99),
        # Above ckpt's pack threshold: a dataset of their own after
        # `ckpt convert`, which h5py then reads.
        "matrix": sample("float32", (256, 300), 98),
        "wide": sample("int64", (3, 10000), 97),
        "halves": sample("bfloat16", (512, 130), 96),
    }
    tree["scalars"] = {"int": 7, "neg": -3, "float": 0.25, "big": 2 ** 40,
                       "np_float": np.float64(1.5)}
    tree["text"] = {"name": "run-7", "unicode": "läuft ✓"}
    tree["nested"] = {"layers": [
        {"w": sample("float32", (4, 4), 5), "b": sample("float32", (4,), 6)},
        {"w": sample("float32", (4, 2), 7), "b": sample("float32", (2,), 8)},
    ], "none_leaf": None}
    return tree


def jax_tree():
    """JAX arrays on 4 CPU devices, each sharded another way."""
    devices = np.array(jax.devices()[:4]).reshape(2, 2)
    mesh = Mesh(devices, ("x", "y"))

    def put(a, spec):
        return jax.device_put(jnp.asarray(a), NamedSharding(mesh, spec))

    return {
        "rows": put(sample("float32", (8, 6), 21), P("x", None)),
        "big": put(sample("float32", (512, 256), 20), P("x", "y")),
        "cols": put(sample("float32", (8, 6), 22), P(None, "y")),
        "grid": put(sample("float32", (8, 6), 23), P("x", "y")),
        "replicated": put(sample("float32", (5, 3), 24), P()),
        "bf16": put(sample("bfloat16", (4, 8), 25), P("y", "x")),
        "int64": put(sample("int64", (8,), 26), P("x")),
        "scalar": put(np.float32(3.0), P()),
    }


def to_host(tree):
    return jax.tree_util.tree_map(
        lambda v: np.asarray(v) if isinstance(v, jax.Array) else v, tree,
        is_leaf=lambda v: v is None)


class Cases:
    def __init__(self, out):
        self.out = out
        self.listed = []

    def path(self, name):
        return os.path.join(self.out, name)

    def expect(self, name, kind, spec_of, note):
        e = Expect(self.path(name) + ".expected")
        e.write(spec_of(e))
        self.listed.append({"name": name, "kind": kind, "note": note})

    def checkpointables(self, name, items, note):
        self.expect(name, "checkpoint", lambda e: {"checkpointables": {
            k: e.spec(to_host(v)) for k, v in items.items()}}, note)

    def finish(self):
        with open(os.path.join(self.out, "cases.json"), "w") as f:
            json.dump(self.listed, f, indent=1)


def write_all(out, large):
    cases = Cases(out)
    tree = every_dtype_tree()
    # v1 save_pytree (the `state` checkpointable), every storage option.
    for ocdbt in (True, False):
        for zarr3 in (True, False):
            for compression in (True, False):
                name = (f"v1_save_pytree_ocdbt{int(ocdbt)}_zarr{3 if zarr3 else 2}"
                        f"_zstd{int(compression)}")
                with context(ocdbt, zarr3, compression):
                    ocp.save_pytree(cases.path(name), tree)
                cases.checkpointables(name, {"state": tree},
                                      f"ocp.save_pytree, use_ocdbt={ocdbt}, "
                                      f"use_zarr3={zarr3}, use_compression={compression}")
    # Sharded JAX arrays (default storage), and a custom checkpointable name.
    jt = jax_tree()
    ocp.save_pytree(cases.path("v1_jax_sharded"), jt)
    cases.checkpointables("v1_jax_sharded", {"state": jt},
                          "JAX arrays sharded 4 ways over 4 CPU devices")
    ocp.save_pytree(cases.path("v1_named"), {"a": np.arange(4.0)},
                    checkpointable_name="params")
    cases.checkpointables("v1_named", {"params": {"a": np.arange(4.0)}},
                          "save_pytree(checkpointable_name='params')")
    # Several checkpointables, one of them JSON.
    items = {"params": {"w": sample("float32", (3, 3), 31)},
             "opt_state": {"mu": sample("float32", (3, 3), 32), "count": 5},
             "config": {"lr": 0.001, "name": "adam", "layers": [1, 2]}}
    ocp.save_checkpointables(cases.path("v1_checkpointables"), items)
    cases.checkpointables("v1_checkpointables", items,
                          "ocp.save_checkpointables, pytrees and a plain dict")
    write_checkpointer(cases)
    write_v0(cases, tree)
    if large:
        write_large(cases)
    cases.finish()
    return cases.listed


def write_checkpointer(cases):
    """A Checkpointer root of four steps with metrics and root metadata."""
    root = cases.path("v1_checkpointer")
    steps = []
    root_metadata = {"run": "orbax-interop", "lr": 0.001, "tags": ["a", "b"]}
    with ocp.training.Checkpointer(root,
                                   custom_metadata=root_metadata) as ckptr:
        for step in range(4):
            state = {"w": sample("float32", (4, 4), 40 + step), "step": step}
            metrics = {"loss": 1.0 / (step + 1), "accuracy": 0.5 + step / 10}
            ckptr.save(step, state, metrics=metrics, force=True)
            ckptr.wait()
            steps.append((step, state, metrics))

    def spec_of(e):
        return {"steps": [{"step": s, "metrics": m,
                           "content": {"checkpointables": {"state": e.spec(st)}}}
                          for s, st, m in steps], "latest": steps[-1][0],
                "root_metadata": root_metadata}

    cases.expect("v1_checkpointer", "checkpointer", spec_of,
                 "ocp.training.Checkpointer, 4 steps with metrics and "
                 "root metadata")


def write_v0(cases, tree):
    """The v0 API, still common: PyTreeCheckpointer and CheckpointManager."""
    small = {"a": sample("float32", (3, 2), 51),
             "b": {"c": sample("int32", (5,), 52), "d": 3}}
    ocp0.PyTreeCheckpointer().save(cases.path("v0_pytree_checkpointer"), small)
    cases.checkpointables("v0_pytree_checkpointer", {"state": small},
                          "v0 PyTreeCheckpointer (a flat pytree folder)")
    root = cases.path("v0_checkpoint_manager")
    with ocp0.CheckpointManager(root) as manager:
        for step in (10, 20):
            manager.save(step, args=ocp0.args.Composite(
                state=ocp0.args.StandardSave(small),
                meta=ocp0.args.JsonSave({"step": step})))
        manager.wait_until_finished()

    def spec_of(e):
        return {"steps": [{"step": s, "metrics": None, "content": {
            "checkpointables": {"meta": e.spec({"step": s}),
                                "state": e.spec(small)}}} for s in (10, 20)],
            "latest": 20}

    cases.expect("v0_checkpoint_manager", "checkpointer", spec_of,
                 "v0 CheckpointManager, Composite(StandardSave, JsonSave)")


def write_large(cases):
    """One array whose chunks hold more than 2 GiB (OCDBT splits its data
    files at 2 GB by default)."""
    n = (2 << 30) // 4 + 4096  # float32 elements: just over 2 GiB
    a = np.arange(n, dtype=np.uint32).astype(np.float32)
    ocp.save_pytree(cases.path("v1_large"), {"big": a})
    cases.checkpointables("v1_large", {"state": {"big": a}},
                          "one float32 array of 2 GiB + 16 KiB")


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    if "--only-large" in sys.argv[2:]:
        cases = Cases(out)
        write_large(cases)
        cases.finish()
        listed = cases.listed
    else:
        listed = write_all(out, "--large" in sys.argv[2:])
    print(f"orbax {ocp0.__version__ if hasattr(ocp0, '__version__') else ''}: "
          f"wrote {len(listed)} cases in {out}")
