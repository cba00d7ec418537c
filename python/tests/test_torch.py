"""PyTorch tensors (on the CPU): every dtype round-trips, a load fills
tensors of the abstract tree (a model's state_dict), an async save
snapshots what may change, and what ckpt cannot store is refused by key
path."""
import numpy as np
import pytest

import ckpt
from ckpt import training

torch = pytest.importorskip("torch")

DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32,
          torch.int64, torch.uint16, torch.uint32, torch.uint64,
          torch.float16, torch.bfloat16, torch.float32, torch.float64,
          torch.complex64, torch.complex128]


def sample(dtype, shape=(3, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    if dtype.is_floating_point or dtype.is_complex:
        return torch.randn(shape, generator=g, dtype=dtype)
    info = torch.iinfo(dtype)
    # randint's bounds are int64: the unsigned 64-bit range through bits.
    low, high = max(info.min, -2 ** 63), min(info.max, 2 ** 63 - 1)
    values = torch.randint(low, high, shape, generator=g, dtype=torch.int64)
    return values.view(dtype) if dtype == torch.uint64 else values.to(dtype)


def raw(tensor):
    """The tensor's bytes (NumPy cannot take bfloat16 from torch)."""
    t = tensor.contiguous()
    return t.view(torch.uint8).numpy().tobytes() if t.dim() else \
        t.reshape(1).view(torch.uint8).numpy().tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_torch_dtype(path, dtype):
    tree = {"a": sample(dtype), "scalar": sample(dtype, ()),
            "empty": torch.zeros((0, 3), dtype=dtype)}
    ckpt.save_pytree(path, tree)
    # As NumPy arrays over ckpt's buffers...
    got = ckpt.load_pytree(path)
    for k, t in tree.items():
        assert got[k].shape == tuple(t.shape)
        assert got[k].dtype.itemsize == t.element_size()
        assert got[k].tobytes() == raw(t)
    # ...and into tensors of the abstract tree, which come back filled.
    targets = {k: torch.zeros_like(t) for k, t in tree.items()}
    got = ckpt.load_pytree(path, targets)
    for k, t in tree.items():
        assert got[k] is targets[k]
        assert raw(got[k]) == raw(t)


def test_views_parameters_and_scalars(path):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tree = {"transposed": base.T, "strided": base[:, ::2],
            "parameter": torch.nn.Parameter(torch.ones(3)),
            "requires_grad": torch.ones(2, requires_grad=True) * 2,
            "zero_d": torch.tensor(7, dtype=torch.int64)}
    ckpt.save_pytree(path, tree)
    got = ckpt.load_pytree(path)
    for k, t in tree.items():
        np.testing.assert_array_equal(got[k], t.detach().numpy())


def test_a_load_fills_a_models_state_dict(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(),
                                torch.nn.Linear(4, 2))
    state = model.state_dict()  # an OrderedDict of tensors
    with training.Checkpointer(tmp_path / "run") as c:
        c.save_pytree(1, {"model": state, "epoch": 1})
    fresh = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(),
                                torch.nn.Linear(4, 2))
    targets = fresh.state_dict()
    pointers = {k: t.data_ptr() for k, t in targets.items()}
    with training.Checkpointer(tmp_path / "run") as c:
        got = c.load_pytree(abstract_pytree={"model": targets, "epoch": int})
    assert got["epoch"] == 1
    for k, t in state.items():
        assert got["model"][k] is targets[k]
        assert targets[k].data_ptr() == pointers[k]  # in place, no copy
        assert torch.equal(targets[k], t)
    x = torch.randn(5, 8)
    assert torch.equal(fresh(x), model(x))


def test_a_target_that_cannot_be_filled_in_place(path):
    ckpt.save_pytree(path, {"w": torch.arange(6.0).reshape(2, 3)})
    # Strided: filled by a copy. Another dtype: the saved values cast.
    base = torch.zeros(3, 2)
    strided, half = base.T, torch.zeros(2, 3, dtype=torch.float16)
    assert ckpt.load_pytree(path, {"w": strided})["w"] is strided
    assert torch.equal(base.T, torch.arange(6.0).reshape(2, 3))
    assert ckpt.load_pytree(path, {"w": half})["w"] is half
    assert torch.equal(half, torch.arange(6.0).reshape(2, 3).half())
    # A tensor on the meta device is a spec: a new tensor comes back.
    got = ckpt.load_pytree(path, {"w": torch.empty(2, 3, device="meta",
                                                   dtype=torch.bfloat16)})
    assert isinstance(got["w"], torch.Tensor) and got["w"].device.type == "cpu"
    assert torch.equal(got["w"], torch.arange(6.0).reshape(2, 3).bfloat16())
    with pytest.raises(ckpt.InvalidArgumentError,
                       match=r"\('w',\).*shape mismatch.*\[2, 3\]"):
        ckpt.load_pytree(path, {"w": torch.zeros(6)})


def test_an_async_save_snapshots_a_tensor(path):
    w = torch.zeros(1 << 20)
    pending = ckpt.save_pytree_async(path, {"w": w})
    w += 1  # after the call returned: not in the checkpoint
    pending.result()
    assert float(ckpt.load_pytree(path)["w"].sum()) == 0.0


def test_what_ckpt_cannot_store_is_refused_by_key_path(path):
    with pytest.raises(ckpt.InvalidArgumentError,
                       match=r"\['layers'\]\[1\].*dtype ckpt does not store"):
        ckpt.save_pytree(path, {"layers": [
            torch.ones(2), torch.ones(2, dtype=torch.float8_e4m3fn)]})
    with pytest.raises(ckpt.InvalidArgumentError, match="device .meta.*cpu"):
        ckpt.save_pytree(path, {"w": torch.ones(2, device="meta")})
    assert not path.exists()
