"""ckpt: fast, atomic, checksummed checkpoints of trees of arrays.

Orbax's v1 API shape over ckpt's C++ core::

    import ckpt, numpy as np
    ckpt.save_pytree("/tmp/c", {"w": np.arange(6.0), "step": 3})
    tree = ckpt.load_pytree("/tmp/c")

Trees are dicts (str keys), lists, tuples (restored as lists), None, bool,
int, float, str and arrays: NumPy arrays, JAX arrays on the CPU, PyTorch
tensors, anything with ``__dlpack__`` or the buffer protocol. A save writes
from the arrays' own memory (no copy); an async save copies only what may
change while it runs (NumPy arrays; JAX arrays are immutable). Loads return
NumPy arrays that own ckpt's buffers (bfloat16 as ``ml_dtypes.bfloat16``).
The GIL is released while ckpt reads and writes.

Errors are ``ckpt.Error`` subclasses, each also the builtin a Python user
expects (``ckpt.NotFoundError`` is a ``FileNotFoundError``): see
``ckpt.errors``.
"""

import atexit
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Optional

from . import errors, handlers
from ._ckpt import AsyncSave, wait_for_pending_saves
from . import _ckpt
from .errors import (AlreadyExistsError, DataLossError, Error,  # noqa: F401
                     InternalError, InvalidArgumentError, InvalidLayoutError,
                     IOError, NoEntryError, NoSpaceError, NotFoundError,
                     PermissionDeniedError, PluginError, TimeoutError,
                     UnimplementedError)

__all__ = [
    "save_pytree", "save_pytree_async", "load_pytree", "load_pytree_async",
    "save", "save_async", "load", "load_async", "save_checkpointables",
    "save_checkpointables_async", "load_checkpointables",
    "load_checkpointables_async", "metadata", "pytree_metadata",
    "checkpointables_metadata", "Context", "ArraySpec", "CheckpointMetadata",
    "AsyncSave", "AsyncLoad", "wait_for_pending_saves", "errors", "handlers", "training",
    "remote",
    "Error",
] + errors.__all__

#: The name a pytree is saved under: Orbax's ``checkpointable_name``.
STATE = "state"


@dataclass(frozen=True)
class ArraySpec:
    """An array's shape and dtype without its data: what metadata returns
    for an array leaf, and a load target (``dtype`` None: as saved)."""
    shape: tuple
    dtype: Any = None


@dataclass(frozen=True)
class CheckpointMetadata:
    """What a checkpoint records besides its data (Orbax's
    ``CheckpointMetadata``): ``metadata`` is the abstract tree (ArraySpec
    for arrays, the type for scalars) or, for ``checkpointables_metadata``,
    a dict of them by checkpointable."""
    metadata: Any
    path: str = ""
    item_handlers: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    custom_metadata: dict = field(default_factory=dict)
    init_timestamp_nsecs: Optional[int] = None
    commit_timestamp_nsecs: Optional[int] = None


def _path(path) -> str:
    return os.fspath(path)


def _metadata_json(custom_metadata) -> str:
    try:
        return json.dumps({} if custom_metadata is None else custom_metadata)
    except TypeError as e:
        raise InvalidArgumentError(f"custom_metadata is not JSON: {e}") from e


def save_checkpointables(path, checkpointables: dict, *,
                         overwrite: bool = False,
                         custom_metadata: Optional[dict] = None) -> None:
    """Saves several named objects (a dict name -> tree or value) into one
    checkpoint, atomically: ``path`` appears once every one is written.
    AlreadyExistsError when ``path`` exists, unless ``overwrite``."""
    _ckpt.save(_path(path), dict(checkpointables), overwrite,
               _metadata_json(custom_metadata), False)


def save_checkpointables_async(path, checkpointables: dict, *,
                               overwrite: bool = False,
                               custom_metadata: Optional[dict] = None
                               ) -> AsyncSave:
    """As save_checkpointables, returning once the values are snapshotted:
    ``.result()`` waits for the commit (and raises what failed)."""
    return _ckpt.save(_path(path), dict(checkpointables), overwrite,
                      _metadata_json(custom_metadata), True)


def save_pytree(path, pytree, *, checkpointable_name: str = STATE,
                overwrite: bool = False,
                custom_metadata: Optional[dict] = None) -> None:
    """Saves a tree of arrays and scalars; returns once it is committed."""
    save_checkpointables(path, {checkpointable_name: pytree},
                         overwrite=overwrite, custom_metadata=custom_metadata)


def save_pytree_async(path, pytree, *, checkpointable_name: str = STATE,
                      overwrite: bool = False,
                      custom_metadata: Optional[dict] = None) -> AsyncSave:
    """As save_pytree, returning an AsyncSave once the tree is snapshotted
    (NumPy arrays copied; JAX arrays, immutable, are not)."""
    return save_checkpointables_async(
        path, {checkpointable_name: pytree}, overwrite=overwrite,
        custom_metadata=custom_metadata)


def load_pytree(path, abstract_tree=None, *,
                checkpointable_name: Optional[str] = None):
    """Loads a tree. ``abstract_tree`` (None: as saved) gives the leaves to
    load and their target: ``ArraySpec`` or ``jax.ShapeDtypeStruct`` (an
    array of that dtype; a ``jax.Array`` comes back), a writable NumPy array
    or ``torch.Tensor`` on the CPU (filled and returned: in place when
    C-contiguous of the saved dtype, else by a copy), a ``torch.Tensor``
    on the "meta" device (a new tensor of its dtype), a
    scalar's type. ``checkpointable_name`` None: ``state``, or the first
    pytree of the checkpoint."""
    if isinstance(abstract_tree, CheckpointMetadata):
        abstract_tree = abstract_tree.metadata
    tree = _ckpt.load(_path(path), abstract_tree,
                      checkpointable_name or _ckpt.AUTO)
    return _as_targets(abstract_tree, tree)


def _is_shape_dtype_struct(leaf) -> bool:
    return type(leaf).__name__ == "ShapeDtypeStruct" and \
        type(leaf).__module__.startswith("jax")


def _is_torch_tensor(leaf) -> bool:
    return type(leaf).__module__.startswith("torch") and \
        hasattr(leaf, "data_ptr")


def _as_targets(abstract, tree):
    """`tree` with each array loaded for a target of another library as
    that library's array: for a jax.ShapeDtypeStruct a jax.Array, with its
    sharding when it has one (each device gets its slice), else on the
    default device through DLPack (no copy on the CPU); for a NumPy array
    or a torch.Tensor, that array, filled."""
    if isinstance(abstract, dict) and isinstance(tree, dict):
        return {k: _as_targets(abstract.get(k), v) for k, v in tree.items()}
    if isinstance(abstract, (list, tuple)) and isinstance(tree, list):
        return [_as_targets(a, v) for a, v in zip(abstract, tree)] + \
            tree[len(abstract):]
    if _is_torch_tensor(abstract):
        return _as_torch(abstract, tree)
    if _is_numpy_array(abstract):
        return _filled(abstract, tree)
    if not _is_shape_dtype_struct(abstract):
        return tree
    import jax
    sharding = getattr(abstract, "sharding", None)
    if sharding is None:
        try:
            return jax.dlpack.from_dlpack(tree)
        except Exception:  # alignment or dtype DLPack cannot carry
            return jax.numpy.asarray(tree)
    return jax.make_array_from_callback(tree.shape, sharding,
                                        lambda index: tree[index])


def _is_numpy_array(leaf) -> bool:
    return type(leaf).__module__ == "numpy" and hasattr(leaf, "flags")


def _filled(target, array):
    """`target` (a NumPy array of the abstract tree) holding `array`, what
    was loaded for it: the same memory when the load could fill it in
    place (C-contiguous), else copied into it."""
    import numpy as np
    if not isinstance(array, np.ndarray) or not target.flags.writeable or \
            target.shape != array.shape:
        return array
    if array.__array_interface__["data"][0] != \
            target.__array_interface__["data"][0]:
        np.copyto(target, array, casting="unsafe")
    return target


def _as_torch(target, array):
    """As _filled, for a torch.Tensor on the CPU (a Parameter too)."""
    import numpy as np
    import torch
    if not isinstance(array, np.ndarray):
        return array
    if array.dtype.name == "bfloat16":  # NumPy's bfloat16 speaks no DLPack
        loaded = torch.from_numpy(array.view(np.uint16)).view(torch.bfloat16)
    else:
        loaded = torch.from_numpy(array)
    if tuple(target.shape) != array.shape or target.device.type != "cpu":
        return loaded
    if array.__array_interface__["data"][0] != target.data_ptr():
        with torch.no_grad():
            target.copy_(loaded)
    return target


def load_checkpointables(path, abstract_checkpointables: Optional[dict] = None
                         ) -> dict:
    """Loads the named checkpointables (None as a value: as saved), or every
    one when ``abstract_checkpointables`` is None."""
    if isinstance(abstract_checkpointables, CheckpointMetadata):
        abstract_checkpointables = abstract_checkpointables.metadata
    loaded = _ckpt.load_checkpointables(_path(path), abstract_checkpointables)
    return _as_targets(abstract_checkpointables, loaded)


class AsyncLoad:
    """A load running on a thread of its own (the GIL released while ckpt
    reads): ``result()`` returns what it loaded or raises what failed;
    ``timeout`` in seconds (TimeoutError past it; the load goes on)."""

    def __init__(self, load, *args, **kwargs):
        self._done = threading.Event()
        self._value = self._error = None

        def run():
            try:
                self._value = load(*args, **kwargs)
            except BaseException as e:  # raised by result()
                self._error = e
            finally:
                self._done.set()
        threading.Thread(target=run, daemon=True).start()

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: Optional[float] = None):
        if not self._done.wait(timeout):
            raise TimeoutError(f"the load did not finish within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._value


def load_pytree_async(path, abstract_tree=None, *,
                      checkpointable_name: Optional[str] = None) -> AsyncLoad:
    """As load_pytree, in the background: ``.result()`` gives the tree."""
    return AsyncLoad(load_pytree, path, abstract_tree,
                     checkpointable_name=checkpointable_name)


def load_checkpointables_async(path, abstract_checkpointables=None
                               ) -> AsyncLoad:
    """As load_checkpointables, in the background."""
    return AsyncLoad(load_checkpointables, path, abstract_checkpointables)


def _checkpoint_metadata(tree, info_json: str) -> CheckpointMetadata:
    info = json.loads(info_json)
    return CheckpointMetadata(metadata=tree, **info)


def pytree_metadata(path, *, checkpointable_name: Optional[str] = None
                    ) -> CheckpointMetadata:
    """The abstract tree of a saved pytree (ArraySpec leaves), with what the
    checkpoint records; loads no array."""
    tree, info, _ = _ckpt.metadata(_path(path),
                                   checkpointable_name or _ckpt.AUTO)
    return _checkpoint_metadata(tree, info)


def checkpointables_metadata(path) -> CheckpointMetadata:
    """Every checkpointable's metadata (None for handlers without), by
    name, with what the checkpoint records."""
    items, info = _ckpt.checkpointables_metadata(_path(path))
    return _checkpoint_metadata(items, info)


# Orbax 0.12's names (save_pytree / load_pytree are its older ones).
save = save_pytree
save_async = save_pytree_async
load = load_pytree
load_async = load_pytree_async
metadata = pytree_metadata


class Context:
    """Options for the ckpt calls made inside ``with ckpt.Context(...):`` on
    this thread (Orbax's ``ocp.Context``).

    handler_options: per handler, e.g. ``{"pytree": {"storage": "orbax"}}``
        (write Orbax's own storage) or ``{"pytree": {"compression":
        "zstd"}}``.
    fsync: make each commit durable (default True).
    file_mode: permission bits of new files (default 0o644).
    async_timeout: seconds a save may take (default 1200).
    plugin_paths: folders of handler plugins to load.
    registry: a ``ckpt.handlers.Registry`` to resolve handlers in (default:
        the global registry as it is when the Context is made).
    """

    def __init__(self, *, registry=None,
                 handler_options: Optional[dict] = None,
                 fsync: Optional[bool] = None,
                 file_mode: Optional[int] = None,
                 async_timeout: Optional[float] = None,
                 plugin_paths=None):
        options = {}
        if handler_options is not None:
            options["handler_options"] = handler_options
        if fsync is not None:
            options["fsync"] = bool(fsync)
        if file_mode is not None:
            options["file_mode"] = int(file_mode)
        if async_timeout is not None:
            options["async_timeout"] = float(async_timeout)
        if plugin_paths is not None:
            options["plugin_paths"] = [os.fspath(p) for p in plugin_paths]
        try:
            text = json.dumps(options)
        except TypeError as e:
            raise InvalidArgumentError(f"Context options are not JSON: {e}") \
                from e
        self._context = _ckpt.Context(
            text, None if registry is None else registry._registry)

    def __enter__(self):
        self._context.enter()
        return self

    def __exit__(self, *exc):
        self._context.exit()
        return False


from . import remote, training  # noqa: E402 (they use the helpers above)

# Saves still in flight when the interpreter exits are finished first:
# their arrays are Python objects.
atexit.register(wait_for_pending_saves)
