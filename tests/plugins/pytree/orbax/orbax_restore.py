"""ckpt -> Orbax: restores one pytree checkpointable of a checkpoint ckpt
wrote in Orbax's storage, with the pinned Orbax, and writes what Orbax
returned in orbax_dump.cpp's spec format (spec.json + N.bin) for
orbax_interop.py to compare with what was saved.

    python orbax_restore.py CHECKPOINT NAME OUT [--how plain,sharded,partial]

Each way writes OUT/<way>/spec.json ({"error": text} when Orbax raised).

--how plain: ocp.load_pytree without an abstract tree.
--how sharded: with an abstract tree of jax.ShapeDtypeStruct leaves sharded
    over 4 CPU devices along the first dimension where it divides by 4
    (replicated otherwise), a sharding the saver never had; every restored
    array must be a jax.Array with that sharding.
--how partial: with partial_load and an abstract tree of every other leaf.
--how checkpointer: CHECKPOINT is a root of steps a ckpt Checkpointer
    wrote (NAME is ignored): ocp.training.Checkpointer lists its steps,
    their metrics, the latest and the root's metadata, and loads each step;
    OUT/checkpointer/spec.json has orbax_dump.cpp's checkpointer format.
"""
import argparse
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=4").strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

jax.config.update("jax_enable_x64", True)

from orbax.checkpoint import v1 as ocp  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from orbax_write_cases import Expect  # noqa: E402


def is_array_meta(m):
    return hasattr(m, "shape") and hasattr(m, "dtype")


def sharded_abstract(meta):
    mesh = Mesh(np.array(jax.devices()[:4]), ("x",))

    def leaf(m):
        if not is_array_meta(m) or not m.shape:
            return m
        spec = P("x") if m.shape[0] % 4 == 0 else P()
        return jax.ShapeDtypeStruct(m.shape, m.dtype,
                                    sharding=NamedSharding(mesh, spec))
    return jax.tree_util.tree_map(leaf, meta), mesh


def every_other(tree, state):
    """The tree with every other dict entry's leaf kept (lists whole)."""
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            sub = every_other(v, state)
            if sub is not SKIP and not (isinstance(sub, dict) and not sub):
                out[k] = sub
        return out
    if isinstance(tree, (list, tuple)):
        return tree  # a partial load keeps or drops dict entries only
    state[0] += 1
    return tree if state[0] % 2 == 1 else SKIP


SKIP = object()


def restore(checkpoint, name, how):
    """(tree, problems) of one way of restoring."""
    problems = []
    if how == "plain":
        return ocp.load_pytree(checkpoint, checkpointable_name=name), problems
    meta = ocp.pytree_metadata(checkpoint, checkpointable_name=name).metadata
    if meta is None:
        # Orbax's metadata cannot describe a bool scalar (its scalar leaf
        # handler knows ints and floats only; it logs "Unsupported dtype:
        # bool" and returns None, for trees it saved itself too): the
        # abstract tree is then a plain restore (NumPy arrays for arrays).
        meta = ocp.load_pytree(checkpoint, checkpointable_name=name)
    if how == "sharded":
        abstract, _ = sharded_abstract(meta)
        tree = ocp.load_pytree(checkpoint, abstract, checkpointable_name=name)
        want = jax.tree_util.tree_leaves(abstract)
        got = jax.tree_util.tree_leaves(tree)
        for w, g in zip(want, got):
            if isinstance(w, jax.ShapeDtypeStruct):
                if not isinstance(g, jax.Array) or g.sharding != w.sharding:
                    problems.append(f"a leaf restored as {type(g).__name__}"
                                    f" with {getattr(g, 'sharding', None)},"
                                    f" not {w.sharding}")
        return tree, problems
    abstract = every_other(meta, [0])
    options = ocp.options.PyTreeOptions(
        loading=ocp.options.PyTreeOptions.Loading(partial_load=True))
    with ocp.Context(pytree_options=options):
        tree = ocp.load_pytree(checkpoint, abstract, checkpointable_name=name)
    return tree, problems


def restore_checkpointer(root, out):
    """What Orbax's own Checkpointer finds in a root ckpt wrote."""
    e = Expect(out)
    with ocp.training.Checkpointer(root) as c:
        steps = [{"step": m.step, "metrics": m.metrics,
                  "content": {"checkpointables": {"state": e.spec(c.load(m.step))}}}
                 for m in c.checkpoints]
        latest = c.latest.step if c.latest else None
        root_metadata = dict(c.root_metadata().custom_metadata or {})
    e.write({"steps": steps, "latest": latest, "root_metadata": root_metadata})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("name")
    parser.add_argument("out")
    parser.add_argument("--how", default="plain",
                        help="comma-separated: plain, sharded, partial, "
                        "checkpointer")
    a = parser.parse_args()
    checkpoint = os.path.abspath(a.checkpoint)  # Orbax wants it absolute
    for how in a.how.split(","):
        out = os.path.join(a.out, how)
        try:
            if how == "checkpointer":
                restore_checkpointer(checkpoint, out)
                continue
            tree, problems = restore(checkpoint, a.name, how)
        except Exception as e:  # reported, compared as a failure
            os.makedirs(out, exist_ok=True)
            Expect(out).write({"error": f"{type(e).__name__}: {e}"[:1000]})
            continue
        e = Expect(out)
        e.write({"checkpointables": {a.name: e.spec(tree)},
                 "problems": problems})
    return 0


if __name__ == "__main__":
    sys.exit(main())
