"""Checkpoints in object storage: copied whole to an S3 bucket (or an
S3-compatible store, or another folder) and back, every byte checked::

    import ckpt.remote
    ckpt.remote.upload_checkpoint("/ckpt/step_10", "s3://bucket/run/step_10")
    ckpt.remote.list_checkpoints("s3://bucket/run")      # ["step_10"]
    ckpt.remote.download_checkpoint("s3://bucket/run/step_10", "/tmp/s10")

A URL is ``s3://BUCKET/PATH`` or a local folder (a store of files, e.g. a
mounted network share). In a store a checkpoint appears whole or not at
all: its files go up first, its commit record last, and a second upload to
the same place is ``AlreadyExistsError``. Credentials, region and endpoint
come from where every AWS tool finds them (``AWS_ACCESS_KEY_ID``,
``AWS_PROFILE`` and ``~/.aws``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``).

A training run's steps go to a store with
``ckpt.training.Checkpointer(..., remote="s3://bucket/run")``.
"""
import os
from typing import Optional, Sequence

from . import _ckpt
from .errors import InvalidArgumentError

__all__ = ["upload_checkpoint", "download_checkpoint", "remove_checkpoint",
           "list_checkpoints"]


def _split(url) -> tuple:
    """``s3://bucket/run/step_10`` -> (``s3://bucket/run``, ``step_10``)."""
    text = os.fspath(url).rstrip("/")
    start = len("s3://") if text.startswith("s3://") else 0
    store, slash, name = text.rpartition("/")
    if not slash or len(store) <= start or not name:
        raise InvalidArgumentError(
            f"'{os.fspath(url)}' names no checkpoint in a store "
            "(s3://BUCKET/PATH or FOLDER/NAME)")
    return store, name


def upload_checkpoint(local_dir, url) -> None:
    """Uploads the committed checkpoint ``local_dir`` to ``url``."""
    store, name = _split(url)
    _ckpt.upload_checkpoint(os.fspath(local_dir), store, name)


def download_checkpoint(url, local_dir,
                        only: Optional[Sequence[str]] = None) -> None:
    """Downloads the checkpoint at ``url`` into ``local_dir`` (which must
    not exist; it appears whole or not at all). ``only``: the
    checkpointables to fetch (default: all)."""
    store, name = _split(url)
    _ckpt.download_checkpoint(store, name, os.fspath(local_dir),
                              [str(n) for n in (only or [])])


def remove_checkpoint(url) -> None:
    """Removes the checkpoint at ``url`` (its record first); other keys
    under it stay."""
    store, name = _split(url)
    _ckpt.remove_checkpoint(store, name)


def list_checkpoints(url) -> list:
    """The names of the checkpoints committed directly below ``url``,
    sorted."""
    return _ckpt.list_checkpoints(os.fspath(url).rstrip("/") or "/")
