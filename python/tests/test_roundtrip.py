"""Trees round-trip: every dtype from NumPy and JAX, scalars, strings,
nested containers, non-contiguous arrays, abstract trees, metadata."""
import ml_dtypes
import numpy as np
import pytest

import ckpt

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
          "uint32", "uint64", "float16", "float32", "float64", "complex64",
          "complex128", ml_dtypes.bfloat16]


def sample(dtype, shape=(3, 4), seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) +
                1j * rng.standard_normal(shape)).astype(dtype)
    if dtype.kind == "f" or dtype == np.dtype(ml_dtypes.bfloat16):
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype,
                        endpoint=True)


def assert_same(a, b):
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == np.ascontiguousarray(b).tobytes()
    else:
        assert a == b or (a != a and b != b)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_numpy_dtype(path, dtype):
    tree = {"a": sample(dtype), "scalar": sample(dtype, ()),
            "empty": np.zeros((0, 3), dtype)}
    ckpt.save_pytree(path, tree)
    got = ckpt.load_pytree(path)
    for k in tree:
        assert got[k].dtype == np.dtype(dtype)
        assert got[k].shape == tree[k].shape
        assert got[k].tobytes() == tree[k].tobytes()


def test_scalars_strings_and_containers(path):
    tree = {"int": -(2 ** 63), "float": 0.25, "nan": float("nan"),
            "bool": True, "none": None, "str": "café",
            "list": [1, [2.5, {"x": "y"}]], "tuple": (1, 2),
            "nested": {"a": {"b": {"c": np.arange(3)}}}}
    ckpt.save_pytree(path, tree)
    got = ckpt.load_pytree(path)
    expected = dict(tree, tuple=[1, 2])  # tuples come back as lists
    assert_same(expected, got)


def test_non_contiguous_and_fortran_arrays(path):
    base = np.arange(60, dtype=np.float32).reshape(6, 10)
    tree = {"strided": base[::2, 1::3], "fortran": np.asfortranarray(base),
            "transposed": base.T}
    ckpt.save_pytree(path, tree)
    got = ckpt.load_pytree(path)
    for k, v in tree.items():
        np.testing.assert_array_equal(got[k], v)
        assert got[k].flags.c_contiguous


def test_jax_arrays_of_every_dtype(path):
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    tree = {str(np.dtype(d)): jnp.asarray(sample(d, seed=i))
            for i, d in enumerate(DTYPES)}
    ckpt.save_pytree(path, tree)
    got = ckpt.load_pytree(path)
    for k, v in tree.items():
        np.testing.assert_array_equal(got[k], np.asarray(v))
        assert got[k].dtype == v.dtype


def test_metadata_and_abstract_trees(path):
    tree = {"w": np.arange(12.0).reshape(3, 4),
            "b": np.ones(4, ml_dtypes.bfloat16), "step": 7, "name": "x"}
    ckpt.save_pytree(path, tree, custom_metadata={"run": 1})
    meta = ckpt.metadata(path)
    assert meta.metadata == {
        "w": ckpt.ArraySpec((3, 4), np.dtype("float64")),
        "b": ckpt.ArraySpec((4,), np.dtype(ml_dtypes.bfloat16)),
        "step": int, "name": str}
    assert meta.custom_metadata == {"run": 1}
    assert meta.commit_timestamp_nsecs >= meta.init_timestamp_nsecs > 0
    # The metadata is a load target; an ArraySpec of another dtype casts.
    assert_same(tree, ckpt.load_pytree(path, meta))
    got = ckpt.load_pytree(path, {"w": ckpt.ArraySpec((3, 4), np.float32),
                                  "b": meta.metadata["b"], "step": int,
                                  "name": str})
    assert got["w"].dtype == np.float32
    np.testing.assert_array_equal(got["w"], tree["w"])


def test_loading_into_a_numpy_array_fills_it(path):
    ckpt.save_pytree(path, {"w": np.arange(6.0)})
    target = np.zeros(6)
    got = ckpt.load_pytree(path, {"w": target})
    np.testing.assert_array_equal(target, np.arange(6.0))
    assert got["w"] is target
    # A view: filled in place when contiguous, else by a copy; a read-only
    # array is left alone.
    base = np.zeros((2, 6))
    row = base[1]
    assert ckpt.load_pytree(path, {"w": row})["w"] is row
    np.testing.assert_array_equal(base[1], np.arange(6.0))
    strided = np.zeros(12)[::2]
    assert ckpt.load_pytree(path, {"w": strided})["w"] is strided
    np.testing.assert_array_equal(strided, np.arange(6.0))
    read_only = np.zeros(6)
    read_only.flags.writeable = False
    got = ckpt.load_pytree(path, {"w": read_only})["w"]
    assert got is not read_only and not read_only.any()
    np.testing.assert_array_equal(got, np.arange(6.0))


def test_jax_shape_dtype_struct_is_an_abstract_array(path):
    import jax
    ckpt.save_pytree(path, {"w": np.arange(6, dtype=np.float32)})
    got = ckpt.load_pytree(
        path, {"w": jax.ShapeDtypeStruct((6,), np.dtype("float16"))})
    assert got["w"].dtype == np.float16


def test_checkpointables(path):
    ckpt.save_checkpointables(path, {"params": {"w": np.arange(3)},
                                     "opt": {"m": np.zeros(2), "t": 4}})
    both = ckpt.load_checkpointables(path)
    assert sorted(both) == ["opt", "params"]
    assert both["opt"]["t"] == 4
    one = ckpt.load_checkpointables(path, {"params": None})
    assert list(one) == ["params"]
    meta = ckpt.checkpointables_metadata(path)
    assert meta.metadata["params"] == {"w": ckpt.ArraySpec((3,), np.dtype(
        "int64"))}
    assert meta.item_handlers["opt"] == "ckpt.pytree.PyTreeHandler"


def test_overwrite(path):
    ckpt.save_pytree(path, {"v": 1})
    with pytest.raises(FileExistsError):
        ckpt.save_pytree(path, {"v": 2})
    ckpt.save_pytree(path, {"v": 2}, overwrite=True)
    assert ckpt.load_pytree(path) == {"v": 2}


def test_orbax_quick_start_with_ckpt(tmp_path):
    # Orbax v1's "Introduction to Checkpointing" set-up and first steps,
    # `ocp` replaced by `ckpt`: a tree of sharded jax.Arrays saved, loaded
    # as saved, and loaded into an abstract tree of ShapeDtypeStructs
    # carrying the shardings.
    import jax
    ocp = ckpt
    directory = tmp_path / "my-checkpoints"
    pytree = {
        "a": np.arange(64).reshape((8, 8)),
        "b": np.arange(16),
        "c": np.asarray(4.5),
    }
    mesh = jax.sharding.Mesh(jax.devices(), ("x",))
    shardings = {
        "a": jax.sharding.NamedSharding(
            mesh, jax.sharding.PartitionSpec("x", None)),
        "b": jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()),
        "c": jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()),
    }
    pytree = jax.tree.map(
        lambda arr, sharding: jax.make_array_from_callback(
            arr.shape, sharding, lambda idx: arr[idx]),
        pytree, shardings)
    path = directory / "ckpt0"
    ocp.save_pytree(path, pytree)
    loaded = ocp.load_pytree(path)
    for k in pytree:
        np.testing.assert_array_equal(loaded[k], np.asarray(pytree[k]))
    abstract_pytree = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
        pytree)
    loaded = ocp.load_pytree(path, abstract_pytree)
    for k in pytree:
        assert loaded[k].sharding == pytree[k].sharding
        np.testing.assert_array_equal(np.asarray(loaded[k]),
                                      np.asarray(pytree[k]))
    metadata = ocp.metadata(path)
    assert metadata.metadata["a"] == ckpt.ArraySpec(
        (8, 8), np.dtype(pytree["a"].dtype))
    ocp.save_checkpointables(directory / "ckpt1",
                             {"pytree": pytree, "extra": {"step": 1}})
    assert ocp.load_checkpointables(directory / "ckpt1")["extra"] == \
        {"step": 1}


def test_shape_dtype_structs_come_back_as_jax_arrays(tmp_path):
    import jax
    from jax.sharding import NamedSharding, PartitionSpec
    devices = jax.devices()
    assert len(devices) == 4  # conftest.py asks XLA for 4 CPU devices
    mesh = jax.sharding.Mesh(np.array(devices), ("x",))
    sharding = NamedSharding(mesh, PartitionSpec("x"))
    rows = 4 * len(devices)
    tree = {"w": np.arange(rows * 3, dtype=np.float32).reshape(rows, 3),
            "b": np.arange(5, dtype=np.float32)}
    ckpt.save_pytree(tmp_path / "c", tree)
    got = ckpt.load_pytree(tmp_path / "c", {
        "w": jax.ShapeDtypeStruct((rows, 3), np.float32, sharding=sharding),
        "b": jax.ShapeDtypeStruct((5,), np.float32)})
    assert isinstance(got["w"], jax.Array) and got["w"].sharding == sharding
    assert isinstance(got["b"], jax.Array)
    np.testing.assert_array_equal(np.asarray(got["w"]), tree["w"])
    np.testing.assert_array_equal(np.asarray(got["b"]), tree["b"])


class DLPackOnly:
    """An array that speaks only DLPack (as a PyTorch tensor does)."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def test_anything_with_dlpack_saves(path):
    w = np.arange(12, dtype=np.int16).reshape(3, 4)
    ckpt.save_pytree(path, {"w": DLPackOnly(w)})
    np.testing.assert_array_equal(ckpt.load_pytree(path)["w"], w)
