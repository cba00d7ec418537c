"""ckpt's errors: one base, ``ckpt.Error``, and a class per kind of failure.

Each kind is also a subclass of the builtin exception a Python user would
catch for it (``NotFoundError`` is a ``FileNotFoundError``,
``InvalidArgumentError`` a ``ValueError``, ...), and carries the message
ckpt gives in C++, which names the path, checkpointable, key or plugin.
"""

import builtins


class Error(Exception):
    """Every failure of a ckpt call."""


class InternalError(Error):
    """A failure inside ckpt (out of memory, a bug)."""


class InvalidArgumentError(Error, ValueError):
    """A bad name, path, value or option: nothing was written."""


class NotFoundError(Error, FileNotFoundError):
    """A checkpoint, file or checkpointable that should be there is not."""


class AlreadyExistsError(Error, FileExistsError):
    """The destination exists (pass overwrite=True), or a duplicate."""


class NoEntryError(Error, LookupError):
    """No handler for a checkpointable."""


class InvalidLayoutError(Error, ValueError):
    """Not a (complete) checkpoint folder."""


class TimeoutError(Error, builtins.TimeoutError):
    """A save past its deadline, or a checkpoint that kept changing."""


class PluginError(Error):
    """A plugin failed to load, or a handler failed."""


class DataLossError(Error):
    """Bytes differ from what was recorded: the checkpoint is damaged."""


class UnimplementedError(Error, NotImplementedError):
    """Something ckpt does not do (yet); the message says what."""


class PermissionDeniedError(Error, PermissionError):
    """The operating system refused access (EACCES, EPERM, EROFS)."""


class NoSpaceError(Error, OSError):
    """No space left on the device (ENOSPC, EDQUOT, EFBIG)."""


class IOError(Error, OSError):  # noqa: A001 (ckpt.errors.IOError)
    """Any other failure of the operating system."""


__all__ = [name for name, value in dict(globals()).items()
           if isinstance(value, type) and issubclass(value, Error)]

# ckpt's kinds (ckpt::error_kind_name) and their classes.
_BY_KIND = {
    "internal": InternalError,
    "invalid argument": InvalidArgumentError,
    "not found": NotFoundError,
    "already exists": AlreadyExistsError,
    "no entry": NoEntryError,
    "invalid layout": InvalidLayoutError,
    "timeout": TimeoutError,
    "plugin error": PluginError,
    "data loss": DataLossError,
    "unimplemented": UnimplementedError,
    "permission denied": PermissionDeniedError,
    "no space": NoSpaceError,
    "I/O error": IOError,
}


def kind_class(kind: str) -> type:
    """The class of ckpt's error kind ``kind`` ("not found", ...)."""
    return _BY_KIND.get(kind, Error)
