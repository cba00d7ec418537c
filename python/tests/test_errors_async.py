"""Errors as Python users expect them, async saves, Contexts, threads, and
the C++ side reading what Python wrote and the reverse."""
import json
import os
import subprocess
import threading

import numpy as np
import pytest

import ckpt


def test_error_classes_are_the_builtins_too():
    assert issubclass(ckpt.NotFoundError, FileNotFoundError)
    assert issubclass(ckpt.AlreadyExistsError, FileExistsError)
    assert issubclass(ckpt.PermissionDeniedError, PermissionError)
    assert issubclass(ckpt.InvalidArgumentError, ValueError)
    assert issubclass(ckpt.TimeoutError, TimeoutError)
    for cls in (ckpt.NotFoundError, ckpt.DataLossError, ckpt.IOError):
        assert issubclass(cls, ckpt.Error)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ckpt.NotFoundError, match="does not exist"):
        ckpt.load_pytree(tmp_path / "nope")


@pytest.mark.parametrize("tree, text", [
    ({"a": {1: np.zeros(2)}}, r"state\['a'\]: the key 1 is a int"),
    ({"a": [0, 2 ** 70]}, r"state\['a'\]\[1\]: the int .* 64 bits"),
    ({"a": object()}, r"state\['a'\]: a object, which ckpt cannot save"),
    ({"a": np.array(["x"])}, r"state\['a'\]: .*dtype"),
    ({"a": np.arange(4)[::-1]}, r"state\['a'\]: .*negative or uneven strides"),
    ({"a": b"bytes"}, r"state\['a'\]"),
], ids=["int_key", "big_int", "object", "str_array", "reversed", "bytes"])
def test_bad_leaves_name_their_key_path(path, tree, text):
    with pytest.raises(ckpt.InvalidArgumentError, match=text):
        ckpt.save_pytree(path, tree)
    assert not path.exists()


def test_damaged_checkpoint_is_data_loss(path):
    ckpt.save_pytree(path, {"w": np.arange(1000.0)})
    data = path / "state" / "arrays.h5"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x55
    data.write_bytes(bytes(raw))
    with pytest.raises(ckpt.DataLossError, match="arrays.h5"):
        ckpt.load_pytree(path)


def test_custom_metadata_must_be_json(path):
    with pytest.raises(ckpt.InvalidArgumentError, match="custom_metadata"):
        ckpt.save_pytree(path, {"a": 1}, custom_metadata={"x": object()})


def test_async_save_snapshots_numpy_arrays(path):
    w = np.arange(1 << 20, dtype=np.float64)
    pending = ckpt.save_pytree_async(path, {"w": w})
    w[:] = -1  # after the call returns: not in the checkpoint
    pending.result()
    assert pending.done()
    np.testing.assert_array_equal(ckpt.load_pytree(path)["w"],
                                  np.arange(1 << 20, dtype=np.float64))


def test_async_loads(path):
    ckpt.save_checkpointables(path, {"a": {"w": np.arange(5)}, "b": {"n": 1}})
    pending = ckpt.load_pytree_async(path, checkpointable_name="a")
    np.testing.assert_array_equal(pending.result(timeout=60)["w"],
                                  np.arange(5))
    assert pending.done()
    both = ckpt.load_checkpointables_async(path).result()
    assert both["b"] == {"n": 1}
    with pytest.raises(ckpt.NotFoundError):
        ckpt.load_pytree_async(path / "nope").result()


def test_async_save_error_comes_from_result(path):
    ckpt.save_pytree(path, {"a": 1})
    with pytest.raises(ckpt.AlreadyExistsError):
        ckpt.save_pytree_async(path, {"a": 2}).result()


def test_context_options_apply_inside_only(path, tmp_path):
    with ckpt.Context(handler_options={"pytree": {"storage": "orbax"}},
                      fsync=False):
        ckpt.save_pytree(path, {"w": np.arange(4.0), "n": 3})
    assert (path / "state" / "manifest.ocdbt").exists()
    ckpt.save_pytree(tmp_path / "plain", {"w": np.arange(4.0)})
    assert (tmp_path / "plain" / "state" / "arrays.h5").exists()
    got = ckpt.load_pytree(path)
    np.testing.assert_array_equal(got["w"], np.arange(4.0))


def test_orbax_restores_what_python_ckpt_wrote_in_its_storage(path):
    from orbax.checkpoint import v1 as ocp
    tree = {"w": np.arange(12.0).reshape(3, 4), "step": 5}
    with ckpt.Context(handler_options={"pytree": {"storage": "orbax"}}):
        ckpt.save_pytree(path, tree)
    got = ocp.load(path, checkpointable_name="state")
    np.testing.assert_array_equal(got["w"], tree["w"])
    assert int(got["step"]) == 5


def test_concurrent_async_saves_from_threads(tmp_path):
    errors = []

    def worker(t):
        try:
            saves = []
            for i in range(8):
                tree = {"w": np.full(1000, t * 100 + i), "i": i}
                saves.append(ckpt.save_pytree_async(
                    tmp_path / f"t{t}" / str(i), tree))
            for s in saves:
                s.result()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for t in range(6):
        for i in range(8):
            got = ckpt.load_pytree(tmp_path / f"t{t}" / str(i))
            assert got["i"] == i
            np.testing.assert_array_equal(got["w"], np.full(1000, t * 100 + i))


def test_the_cpp_tool_reads_python_and_python_reads_its_conversion(
        path, tmp_path, ckpt_tool):
    tree = {"w": np.arange(6, dtype=np.int32).reshape(2, 3), "s": "hi"}
    ckpt.save_pytree(path, tree)
    out = subprocess.run([ckpt_tool, "cat", "--json", str(path), "state"],
                         capture_output=True, text=True, check=True).stdout
    doc = json.loads(out)
    assert doc["s"] == "hi"
    assert np.array(doc["w"]["data"] if isinstance(doc["w"], dict)
                    else doc["w"]).ravel().tolist() == list(range(6))
    # Written by C++ (ckpt convert), read by Python.
    converted = tmp_path / "converted"
    subprocess.run([ckpt_tool, "convert", "--to", "orbax", str(path),
                    str(converted)], check=True, capture_output=True)
    got = ckpt.load_pytree(converted)
    np.testing.assert_array_equal(got["w"], tree["w"])
    assert got["s"] == "hi"


def test_contexts_are_left_innermost_first(path, tmp_path):
    outer = ckpt.Context(handler_options={"pytree": {"storage": "orbax"}})
    inner = ckpt.Context(fsync=False)
    outer.__enter__()
    inner.__enter__()
    with pytest.raises(ckpt.InvalidArgumentError, match="innermost first"):
        outer.__exit__(None, None, None)
    inner.__exit__(None, None, None)
    ckpt.save_pytree(path, {"w": np.arange(3.0)})  # outer's options still
    assert (path / "state" / "manifest.ocdbt").exists()
    outer.__exit__(None, None, None)
    ckpt.save_pytree(tmp_path / "plain", {"w": np.arange(3.0)})
    assert (tmp_path / "plain" / "state" / "arrays.h5").exists()


def test_a_context_dropped_while_entered(tmp_path):
    # Entered on another thread and dropped here, or dropped under a
    # Context entered later: left when it is innermost on its thread, never
    # freed under that thread's feet.
    box = {}

    def enter_elsewhere():
        box["c"] = ckpt.Context(handler_options={"pytree": {"storage": "orbax"}})
        box["c"].__enter__()
        ckpt.save_pytree(tmp_path / "there", {"w": np.arange(3.0)})

    t = threading.Thread(target=enter_elsewhere)
    t.start()
    t.join()
    with pytest.raises(ckpt.InvalidArgumentError, match="thread"):
        box["c"].__exit__(None, None, None)
    del box["c"]
    outer = ckpt.Context(handler_options={"pytree": {"storage": "orbax"}})
    outer.__enter__()
    inner = ckpt.Context(fsync=False)
    inner.__enter__()
    del outer  # dropped under `inner`: left with it
    inner.__exit__(None, None, None)
    ckpt.save_pytree(tmp_path / "later", {"w": np.arange(3.0)})
    assert (tmp_path / "later" / "state" / "arrays.h5").exists()
    np.testing.assert_array_equal(
        ckpt.load_pytree(tmp_path / "there")["w"], np.arange(3.0))
