"""Handlers and registries (Orbax's ``ocp.handlers``).

A handler saves one checkpointable into its own folder and loads it back.
Besides the shipped plugins' (pytree, JSON, proto) and any ``.so`` plugin,
a Python class with Orbax's ``CheckpointableHandler`` methods is a handler::

    class TextHandler:
        typestr = "my.TextHandler"          # recorded in checkpoints
        def is_handleable(self, value):     # can it save this value?
            return isinstance(value, Text)
        def is_abstract_handleable(self, abstract):  # can it load into it?
            return abstract is Text          # None: "only if it saved it"
        async def save(self, directory, value):
            text = value.text                # the blocking part: a snapshot
            async def write():               # the background part
                (directory / "text.txt").write_text(text)
            return write()
        async def load(self, directory, abstract=None):
            async def read():
                return Text((directory / "text.txt").read_text())
            return read()
        async def metadata(self, directory):
            return None

    ckpt.handlers.register_handler(TextHandler)   # every Context sees it

The coroutines may be plain functions too: ``save`` returning None (all
written) or a callable (the background part), ``load`` returning the value.
ckpt calls ``save`` on the caller's thread and runs its background part on
its own threads, taking the GIL. Resolution is Orbax's: the newest
registration first, a name scope before general entries, secondary
typestrs for loading what another handler saved.
"""
import asyncio
import inspect
import json
import os
import pathlib
import threading
from typing import Optional, Sequence

from . import _ckpt

__all__ = ["Registry", "local_registry", "register_handler",
           "create_with_handlers", "make_handler", "load_plugin",
           "handler_types", "Handler"]

Handler = _ckpt.Handler


def _run(awaitable):
    """Runs `awaitable` to its result: in a fresh event loop, or, on a
    thread whose loop is running, on a thread of its own."""
    async def wait():
        return await awaitable
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wait())
    out = {}

    def run():
        try:
            out["value"] = asyncio.run(wait())
        except BaseException as e:  # re-raised on the caller's thread
            out["error"] = e
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def _result(value):
    return _run(value) if inspect.isawaitable(value) else value


def _save_blocking(handler, directory, value):
    """The blocking part of a save; returns its background part (a callable)
    or None."""
    background = _result(handler.save(pathlib.Path(directory), value))
    if background is None:
        return None
    if inspect.isawaitable(background):
        return lambda: _run(background)
    if callable(background):
        return background
    raise TypeError(f"{type(handler).__name__}.save returned "
                    f"{type(background).__name__}: return None, an "
                    "awaitable or a callable (the background part)")


def _load_blocking(handler, directory, abstract):
    """The blocking part of a load; returns its background part, a callable
    returning the value."""
    result = _result(handler.load(pathlib.Path(directory), abstract))
    if inspect.isawaitable(result):
        return lambda: _run(result)
    return lambda: result


def _metadata(handler, directory):
    return _result(handler.metadata(pathlib.Path(directory)))


def _as_handler(handler, typestr: Optional[str] = None,
                secondary_typestrs: Sequence[str] = ()) -> Handler:
    """A Handler of ckpt for a Handler, a Python handler class or instance,
    or a plugin handler's typestr."""
    if isinstance(handler, Handler):
        return handler
    if isinstance(handler, str):
        return make_handler(handler)
    if inspect.isclass(handler):
        handler = handler()
    for method in ("is_handleable", "save", "load"):
        if not callable(getattr(handler, method, None)):
            raise TypeError(f"{type(handler).__name__} is not a handler: it "
                            f"has no {method}()")
    cls = type(handler)
    typestr = typestr or getattr(handler, "typestr", None) or \
        f"{cls.__module__}.{cls.__qualname__}"
    secondary = list(secondary_typestrs) or \
        list(getattr(handler, "secondary_typestrs", ()))
    doc = (cls.__doc__ or "").strip().splitlines()
    return _ckpt.python_handler(handler, typestr, secondary,
                                doc[0] if doc else "")


def make_handler(typestr: str, config: Optional[dict] = None) -> Handler:
    """An instance of a plugin's handler type, with its configuration (e.g.
    ``make_handler("ckpt.json.JsonHandler", {"filename": "cfg.json"})``)."""
    return _ckpt.make_handler(typestr, json.dumps(config or {}))


class Registry:
    """A local registry: a copy of the global entries (unless
    ``include_global`` is False), then what ``add`` adds. Give it to
    ``ckpt.Context(registry=...)``."""

    def __init__(self, include_global: bool = True):
        self._registry = _ckpt.Registry(include_global)

    def add(self, handler, checkpointable_name: Optional[str] = None, *,
            secondary_typestrs: Sequence[str] = ()) -> "Registry":
        """Adds ``handler`` (a Python handler class or instance, or a
        plugin's typestr), for every checkpointable or, named, for that one;
        AlreadyExistsError when that name has an entry."""
        h = _as_handler(handler, secondary_typestrs=secondary_typestrs)
        self._registry.add(h, checkpointable_name,
                           list(secondary_typestrs) or None)
        return self

    def entries(self) -> list:
        """(typestr, checkpointable name or None), oldest first."""
        return [(e["typestr"], e["name"])
                for e in map(json.loads, self._registry.entries())]


def local_registry(include_global: bool = True) -> Registry:
    return Registry(include_global)


def create_with_handlers(**handlers) -> Registry:
    """A local registry with each handler under its checkpointable name
    (Orbax's ``CheckpointablesOptions.create_with_handlers``)."""
    registry = Registry()
    for name, handler in handlers.items():
        registry.add(handler, name)
    return registry


def register_handler(handler, checkpointable_name: Optional[str] = None, *,
                     secondary_typestrs: Sequence[str] = ()):
    """Adds ``handler`` to the global registry (Contexts made afterwards
    see it); returns it."""
    h = _as_handler(handler, secondary_typestrs=secondary_typestrs)
    _ckpt.register_handler(h, checkpointable_name,
                           list(secondary_typestrs) or None)
    return handler


def load_plugin(path) -> str:
    """Loads a handler plugin (``ckpt-plugin-*.so``) into the global
    registry; returns its name."""
    return _ckpt.load_plugin(os.fspath(path))


def handler_types() -> list:
    """Every handler type known: typestr, secondary typestrs, description,
    origin (plugin file, "built-in" or "python")."""
    return [json.loads(t) for t in _ckpt.handler_types()]
