"""Checkpoints of a training run: ``ckpt.training.Checkpointer`` keeps a
root folder of numbered steps (Orbax's ``ocp.training.Checkpointer``)::

    from ckpt import training
    with training.Checkpointer(
            "/tmp/run", preservation_policy=
            training.preservation_policies.LatestN(3)) as c:
        start = c.latest.step + 1 if c.latest else 0
        for step in range(start, 100):
            ...
            c.save_pytree_async(step, state, metrics={"loss": loss})

Saves are atomic: a step killed mid-save never shows up, and the next run
resumes from the newest committed one.
"""
import datetime
import json
import os
from dataclasses import dataclass, field
from typing import Optional

from .. import _ckpt
from .. import _as_targets, _checkpoint_metadata, _metadata_json
from . import preservation_policies, save_decision_policies

__all__ = ["Checkpointer", "CheckpointStep", "RootMetadata",
           "preservation_policies", "save_decision_policies",
           "request_preemption"]

STATE = "state"


@dataclass(frozen=True)
class CheckpointStep:
    """One committed step: its number, folder, commit time and metrics,
    and where it is (on the local disk, in the remote store, or both)."""
    step: int
    path: str
    time: datetime.datetime
    metrics: Optional[dict] = None
    local: bool = True
    remote: bool = False


@dataclass(frozen=True)
class RootMetadata:
    """The root's own metadata: what its first run gave as
    ``custom_metadata``."""
    directory: str
    custom_metadata: dict = field(default_factory=dict)


def request_preemption() -> None:
    """Tells every Checkpointer of this process that the job is preempted:
    the next step is saved (PreemptionCheckpointingPolicy), after which
    ``may_exit()`` is true."""
    _ckpt.request_preemption()


class Checkpointer:
    """A root of steps ``<directory>/<step>``.

    save_decision_policy: when to save (save_decision_policies; default:
        the first step, then whenever no save is in flight, and on a
        preemption notice).
    preservation_policy: which steps to keep (preservation_policies;
        default: all).
    custom_metadata: the root's metadata, written by its first run.
    step_prefix: step folders named ``<prefix>_<step>``.
    handle_preemption_signals: SIGTERM is a preemption notice.
    remote: a store the steps are persisted to in the background once
        committed locally (``s3://bucket/run``, or a folder; see
        ckpt.remote). ``checkpoints`` covers the steps of both places; a
        step only in the store is downloaded when loaded; the
        preservation policy prunes both.
    keep_local: with ``remote``, the local copies of persisted steps beyond
        the newest ``keep_local`` are removed (default: all stay).
    max_pending_uploads: with ``remote``, committed steps waiting for their
        upload at most; a save that would make more waits.
    """

    def __init__(self, directory, *, save_decision_policy=None,
                 preservation_policy=None,
                 custom_metadata: Optional[dict] = None,
                 step_prefix: Optional[str] = None,
                 handle_preemption_signals: bool = False,
                 remote=None, keep_local: Optional[int] = None,
                 max_pending_uploads: int = 2):
        options = {"handle_preemption_signals": handle_preemption_signals}
        if remote is not None:
            options["remote"] = {"url": os.fspath(remote),
                                 "keep_local": keep_local,
                                 "max_pending_uploads": max_pending_uploads}
        if save_decision_policy is not None:
            options["save_decision_policy"] = save_decision_policy.to_json()
        # BestN's metric functions go beside the JSON, named by index.
        functions = []
        if preservation_policy is not None:
            options["preservation_policy"] = preservation_policy._to_json(
                functions)
        if custom_metadata is not None:
            options["custom_metadata"] = json.loads(
                _metadata_json(custom_metadata))
        if step_prefix is not None:
            options["step_prefix"] = step_prefix
        self.directory = os.fspath(directory)
        self._c = _ckpt.Checkpointer(self.directory, json.dumps(options),
                                     functions)

    def _save(self, step, checkpointables, force, metrics, overwrite,
              custom_metadata, is_async):
        options = {"force": force, "overwrite": overwrite,
                   "metrics": metrics,
                   "custom_metadata": custom_metadata or {}}
        return self._c.save(int(step), dict(checkpointables),
                            _metadata_json(options), is_async)

    def save_pytree(self, step: int, pytree, *, force: bool = False,
                    metrics: Optional[dict] = None, overwrite: bool = False,
                    custom_metadata: Optional[dict] = None) -> bool:
        """Saves ``pytree`` as ``step`` when the save decision policy says
        so (or ``force``); returns whether it saved. ``metrics`` (a JSON
        object) is saved with the step, for BestN and ``checkpoints``."""
        return self._save(step, {STATE: pytree}, force, metrics, overwrite,
                          custom_metadata, False)

    def save_pytree_async(self, step: int, pytree, *, force: bool = False,
                          metrics: Optional[dict] = None,
                          overwrite: bool = False,
                          custom_metadata: Optional[dict] = None) -> bool:
        """As save_pytree, returning once the tree is snapshotted; the step
        commits in the background (``wait()`` waits for it)."""
        return self._save(step, {STATE: pytree}, force, metrics, overwrite,
                          custom_metadata, True)

    def save_checkpointables(self, step: int, checkpointables: dict, *,
                             force: bool = False,
                             metrics: Optional[dict] = None,
                             overwrite: bool = False,
                             custom_metadata: Optional[dict] = None) -> bool:
        return self._save(step, checkpointables, force, metrics, overwrite,
                          custom_metadata, False)

    def save_checkpointables_async(self, step: int, checkpointables: dict,
                                   *, force: bool = False,
                                   metrics: Optional[dict] = None,
                                   overwrite: bool = False,
                                   custom_metadata: Optional[dict] = None
                                   ) -> bool:
        return self._save(step, checkpointables, force, metrics, overwrite,
                          custom_metadata, True)

    def load_pytree(self, step: Optional[int] = None, abstract_pytree=None):
        """Loads the pytree of ``step`` (default: the newest committed)."""
        return _as_targets(abstract_pytree,
                           self._c.load(step, {STATE: abstract_pytree})[STATE])

    def load_checkpointables(self, step: Optional[int] = None,
                             abstract_checkpointables: Optional[dict] = None
                             ) -> dict:
        return _as_targets(abstract_checkpointables,
                           self._c.load(step, abstract_checkpointables))

    def pytree_metadata(self, step: Optional[int] = None):
        items, info = self._c.metadata(step)
        return _checkpoint_metadata(items.get(STATE), info)

    def checkpointables_metadata(self, step: Optional[int] = None):
        items, info = self._c.metadata(step)
        return _checkpoint_metadata(items, info)

    @property
    def checkpoints(self) -> list:
        """The committed steps, oldest first."""
        out = []
        for text in self._c.checkpoints():
            s = json.loads(text)
            out.append(CheckpointStep(
                step=s["step"], path=s["path"],
                time=datetime.datetime.fromtimestamp(
                    s["time"], tz=datetime.timezone.utc),
                metrics=s["metrics"], local=s["local"],
                remote=s["remote"]))
        return out

    @property
    def latest(self) -> Optional[CheckpointStep]:
        """The newest committed step, or None."""
        steps = self.checkpoints
        return steps[-1] if steps else None

    def should_save(self, step: int) -> bool:
        return self._c.should_save(int(step))

    def root_metadata(self) -> RootMetadata:
        return RootMetadata(self.directory,
                            json.loads(self._c.root_metadata()))

    def is_saving_in_progress(self) -> bool:
        return self._c.is_saving_in_progress()

    def reached_preemption(self) -> bool:
        return self._c.reached_preemption()

    def may_exit(self) -> bool:
        return self._c.may_exit()

    def wait(self) -> None:
        """Waits for the save in flight; raises what it failed with."""
        self._c.wait()

    def reload(self) -> None:
        """Re-reads the root (steps another process added or removed)."""
        self._c.reload()

    def wait_for_uploads(self) -> None:
        """Waits until every committed step is persisted in the remote
        store; raises the first upload failure since the last call (the
        step stays local, and goes up when the root is next opened)."""
        self._c.wait_for_uploads()

    def close(self) -> None:
        """Waits for the save in flight and for the uploads, then takes no
        more saves."""
        self._c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
