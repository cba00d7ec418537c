"""Python handlers: a class with Orbax's CheckpointableHandler methods is
resolved like a plugin's (LIFO, name scopes, secondary typestrs), runs its
blocking part on the caller's thread and its background part on ckpt's
threads, and its errors keep their kind."""
import json
import threading

import numpy as np
import pytest

import ckpt
from ckpt import handlers


class Text:
    def __init__(self, text):
        self.text = text


class TextHandler:
    """Saves Text as text.txt."""
    typestr = "test.TextHandler"
    threads = []

    def is_handleable(self, value):
        return isinstance(value, Text)

    def is_abstract_handleable(self, abstract):
        return abstract is Text or None

    async def save(self, directory, value):
        TextHandler.threads.append(("blocking", threading.get_ident()))
        text = value.text  # the snapshot

        async def write():
            TextHandler.threads.append(("background", threading.get_ident()))
            (directory / "text.txt").write_text(text)
        return write()

    async def load(self, directory, abstract=None):
        async def read():
            return Text((directory / "text.txt").read_text())
        return read()

    async def metadata(self, directory):
        return {"bytes": (directory / "text.txt").stat().st_size}


class UpperHandler:
    """A plain (not async) handler: saves str values upper-cased."""
    typestr = "test.UpperHandler"

    def is_handleable(self, value):
        return isinstance(value, str)

    def save(self, directory, value):
        (directory / "u.txt").write_text(value.upper())

    def load(self, directory, abstract=None):
        return (directory / "u.txt").read_text()


class FailingHandler(UpperHandler):
    typestr = "test.FailingHandler"

    def save(self, directory, value):
        if value == "missing":
            raise FileNotFoundError("no such thing")
        raise RuntimeError("the handler broke")


def test_a_python_handler_saves_and_loads_in_two_tiers(tmp_path):
    TextHandler.threads.clear()
    registry = handlers.Registry().add(TextHandler)
    with ckpt.Context(registry=registry):
        t = Text("hello")
        ckpt.save_checkpointables(tmp_path / "c", {"notes": t,
                                                   "w": {"a": np.ones(3)}})
        got = ckpt.load_checkpointables(tmp_path / "c")
        assert isinstance(got["notes"], Text) and got["notes"].text == "hello"
        np.testing.assert_array_equal(got["w"]["a"], np.ones(3))
        meta = ckpt.checkpointables_metadata(tmp_path / "c")
        assert meta.metadata["notes"] == {"bytes": 5}
        assert meta.item_handlers["notes"] == "test.TextHandler"
    tiers = dict(TextHandler.threads)
    assert tiers["blocking"] == threading.get_ident()
    assert tiers["background"] != threading.get_ident()


def test_async_save_snapshots_in_the_blocking_tier(tmp_path):
    registry = handlers.create_with_handlers(notes=TextHandler)
    with ckpt.Context(registry=registry):
        t = Text("before")
        pending = ckpt.save_checkpointables_async(tmp_path / "c",
                                                  {"notes": t})
        t.text = "after"
        pending.result()
        assert ckpt.load_checkpointables(tmp_path / "c")["notes"].text == \
            "before"


def test_lifo_scopes_and_plain_handlers(tmp_path):
    registry = handlers.Registry()
    registry.add(UpperHandler)  # general: every str
    with ckpt.Context(registry=registry):
        ckpt.save_checkpointables(tmp_path / "c", {"title": "abc"})
        assert (tmp_path / "c" / "title" / "u.txt").read_text() == "ABC"
        assert ckpt.load_checkpointables(tmp_path / "c") == {"title": "ABC"}
    # A name scope wins over a general entry, whatever their order.
    scoped = handlers.Registry().add(FailingHandler, "other").add(UpperHandler)
    with ckpt.Context(registry=scoped):
        ckpt.save_checkpointables(tmp_path / "d", {"title": "x"})
        with pytest.raises(ckpt.PluginError, match="the handler broke"):
            ckpt.save_checkpointables(tmp_path / "e", {"other": "x"})
        with pytest.raises(ckpt.NotFoundError, match="no such thing"):
            ckpt.save_checkpointables(tmp_path / "f", {"other": "missing"})
    assert not (tmp_path / "e").exists() and not (tmp_path / "f").exists()
    entries = scoped.entries()
    assert ("test.FailingHandler", "other") in entries
    assert entries[-1] == ("test.UpperHandler", None)


def test_secondary_typestrs_load_what_another_handler_saved(tmp_path):
    with ckpt.Context(registry=handlers.Registry().add(UpperHandler)):
        ckpt.save_checkpointables(tmp_path / "c", {"title": "abc"})

    class Renamed(UpperHandler):
        typestr = "test.Renamed"

        def load(self, directory, abstract=None):
            return "renamed:" + (directory / "u.txt").read_text()

    registry = handlers.Registry(include_global=False).add(
        Renamed, secondary_typestrs=["test.UpperHandler"])
    with ckpt.Context(registry=registry):
        got = ckpt.load_checkpointables(tmp_path / "c")
    assert got == {"title": "renamed:ABC"}


def test_plugin_handlers_by_typestr(tmp_path):
    registry = handlers.Registry()
    registry.add(handlers.make_handler("ckpt.json.JsonHandler",
                                       {"filename": "cfg.json"}), "cfg")
    with ckpt.Context(registry=registry):
        ckpt.save_checkpointables(tmp_path / "c", {"cfg": {"lr": 0.5}})
    assert json.loads((tmp_path / "c" / "cfg" / "cfg.json").read_text()) == \
        {"lr": 0.5}
    types = {t["typestr"] for t in handlers.handler_types()}
    assert {"ckpt.pytree.PyTreeHandler", "ckpt.json.JsonHandler"} <= types
    with pytest.raises(ckpt.NoEntryError):
        handlers.make_handler("no.SuchHandler")


def test_not_a_handler():
    with pytest.raises(TypeError, match="is not a handler"):
        handlers.Registry().add(object())


def test_a_value_no_handler_takes(tmp_path):
    with pytest.raises(ckpt.NoEntryError):
        ckpt.save_checkpointables(tmp_path / "c", {"x": Text("t")})


class Marker:
    pass


class MarkerHandler:
    typestr = "test.MarkerHandler"

    def is_handleable(self, value):
        return isinstance(value, Marker)

    def is_abstract_handleable(self, abstract):
        return abstract is Marker

    def save(self, directory, value):
        (directory / "marker").write_text("m")

    def load(self, directory, abstract=None):
        assert (directory / "marker").read_text() == "m"
        return Marker()


def test_register_handler_globally(tmp_path):
    handlers.register_handler(MarkerHandler)
    ckpt.save_checkpointables(tmp_path / "c", {"m": Marker()})
    got = ckpt.load_checkpointables(tmp_path / "c", {"m": Marker})
    assert isinstance(got["m"], Marker)
    assert ckpt.checkpointables_metadata(tmp_path / "c").item_handlers == \
        {"m": "test.MarkerHandler"}
