"""ckpt.training.Checkpointer from Python: policies, metrics, root
metadata, and a training loop killed with SIGKILL that resumes."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import ckpt
from ckpt import training
from ckpt.training import preservation_policies as pp
from ckpt.training import save_decision_policies as sdp


def state_of(step):
    return {"w": np.full((64, 64), float(step)), "step": step}


def test_steps_metrics_and_policies(tmp_path):
    root = tmp_path / "run"
    with training.Checkpointer(
            root, save_decision_policy=sdp.FixedIntervalPolicy(2),
            preservation_policy=pp.AnyPreservationPolicy(
                [pp.LatestN(2), pp.BestN("loss", reverse=True, n=1)]),
            custom_metadata={"lr": 0.1}) as c:
        saved = [s for s in range(10)
                 if c.save_pytree(s, state_of(s),
                                  metrics={"loss": abs(s - 4) + 0.5})]
        assert saved == [0, 2, 4, 6, 8]
        c.wait()
        assert [s.step for s in c.checkpoints] == [4, 6, 8]  # best + latest 2
        assert c.latest.step == 8
        assert c.checkpoints[0].metrics == {"loss": 0.5}
        assert c.root_metadata().custom_metadata == {"lr": 0.1}
        got = c.load_pytree(4)
        assert got["step"] == 4
        np.testing.assert_array_equal(got["w"], state_of(4)["w"])
        assert c.load_pytree()["step"] == 8
        meta = c.pytree_metadata(6)
        assert meta.metadata["w"] == ckpt.ArraySpec((64, 64),
                                                    np.dtype("float64"))
        assert meta.metrics == {"loss": 2.5}
        with pytest.raises(ckpt.NotFoundError):
            c.load_pytree(5)
        with pytest.raises(ckpt.AlreadyExistsError):
            c.save_pytree(8, state_of(8), force=True)
    # A second run finds what the first committed.
    c = training.Checkpointer(root)
    assert [s.step for s in c.checkpoints] == [4, 6, 8]
    c.close()
    assert c.load_pytree()["step"] == 8  # loads still work
    with pytest.raises(ckpt.Error, match="closed"):
        c.save_pytree(10, state_of(10), force=True)


def test_best_n_by_a_python_function_of_the_metrics(tmp_path):
    seen = []

    def accuracy(metrics):  # Orbax's get_metric_fn
        seen.append(metrics)
        if metrics.get("broken"):
            raise KeyError("no accuracy")
        return metrics["eval"]["accuracy"]

    policy = pp.AnyPreservationPolicy([
        pp.LatestN(1),
        pp.BestN(get_metric_fn=accuracy, n=2,
                 keep_checkpoints_without_metrics=False)])
    accuracies = {1: 0.5, 2: 0.9, 3: 0.7, 4: 0.8, 5: 0.1}
    with training.Checkpointer(tmp_path / "run",
                               preservation_policy=policy) as c:
        for step, acc in accuracies.items():
            c.save_pytree_async(step, state_of(step), force=True,
                                metrics={"eval": {"accuracy": acc}})
        c.save_pytree(6, state_of(6), force=True, metrics={"broken": True})
        c.save_pytree(7, state_of(7), force=True,
                      metrics={"eval": {"accuracy": 0.0}})
        # The two most accurate, and the newest; step 6's function raised:
        # a step without the metric, not kept.
        assert [s.step for s in c.checkpoints] == [2, 4, 7]
    assert {"eval": {"accuracy": 0.9}} in seen
    # By position, as a name or a function; one of them only.
    smallest = pp.BestN(lambda m: m["loss"], reverse=True, n=1)
    with training.Checkpointer(tmp_path / "loss",
                               preservation_policy=smallest) as c:
        for step, loss in [(1, 0.3), (2, 0.1), (3, 0.2)]:
            c.save_pytree(step, state_of(step), force=True,
                          metrics={"loss": loss})
        assert [s.step for s in c.checkpoints] == [2, 3]
    with pytest.raises(ValueError, match="one of"):
        pp.BestN("loss", get_metric_fn=len)
    with pytest.raises(ValueError, match="one of"):
        pp.BestN()
    with pytest.raises(ValueError, match="no JSON form"):
        smallest.to_json()


def test_async_saves_and_bad_policies(tmp_path):
    with training.Checkpointer(tmp_path / "r",
                               preservation_policy=pp.LatestN(3)) as c:
        for s in range(6):
            c.save_pytree_async(s, state_of(s), force=True)
        c.wait()
        assert [s.step for s in c.checkpoints] == [3, 4, 5]
    with pytest.raises(ckpt.InvalidArgumentError, match="LatestN"):
        training.Checkpointer(tmp_path / "bad",
                              preservation_policy=pp.LatestN(-1))


LOOP = r"""
import sys, time
import numpy as np
from ckpt import training
from ckpt.training import preservation_policies as pp
root, last = sys.argv[1], int(sys.argv[2])
with training.Checkpointer(root, preservation_policy=pp.LatestN(4)) as c:
    start = c.latest.step + 1 if c.latest else 0
    print("start", start, flush=True)
    for step in range(start, last + 1):
        state = {"w": np.full(1 << 20, float(step)), "step": step}
        c.save_pytree_async(step, state, metrics={"step": step}, force=True)
        print("saved", step, flush=True)
"""


def test_a_loop_killed_mid_save_resumes(tmp_path):
    root = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", LOOP, str(root), "1000"],
                             stdout=subprocess.PIPE, text=True)
    # Let it commit a few steps, then kill it while it saves.
    for line in child.stdout:
        if line.startswith("saved") and int(line.split()[1]) >= 6:
            break
    time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    before = training.Checkpointer(root)
    committed = [s.step for s in before.checkpoints]
    before.close()
    assert committed, "nothing committed before the kill"
    # Every step listed loads whole; the next run resumes after the newest.
    out = subprocess.run([sys.executable, "-c", LOOP, str(root),
                          str(committed[-1] + 3)],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == f"start {committed[-1] + 1}"
    with training.Checkpointer(root) as c:
        steps = [s.step for s in c.checkpoints]
        assert steps[-1] == committed[-1] + 3
        for s in steps:
            got = c.load_pytree(s)
            assert got["step"] == s
            assert float(got["w"][0]) == s and float(got["w"][-1]) == s
    leftovers = [p for p in os.listdir(root) if "tmp" in p]
    assert leftovers == []


DROPPED = r"""
import sys, time
import ckpt
from ckpt import training
from ckpt.training import preservation_policies as pp

class Note:
    def __init__(self, text):
        self.text = text

class SlowNoteHandler:
    typestr = "test.SlowNoteHandler"
    def is_handleable(self, value):
        return isinstance(value, Note)
    def is_abstract_handleable(self, abstract):
        return abstract is Note or None
    async def save(self, directory, value):
        text = value.text
        async def write():
            time.sleep(0.3)  # still writing when the Checkpointer is dropped
            (directory / "note.txt").write_text(text)
        return write()
    async def load(self, directory, abstract=None):
        async def read():
            return Note((directory / "note.txt").read_text())
        return read()
    async def metadata(self, directory):
        return {}

ckpt.handlers.register_handler(SlowNoteHandler)
c = training.Checkpointer(sys.argv[1], preservation_policy=pp.BestN(
    lambda m: m["loss"], reverse=True, n=1))
for step in (1, 2):
    c.save_checkpointables_async(step, {"note": Note(str(step))},
                                 force=True, metrics={"loss": 3 - step})
del c  # without close(): the save in flight finishes, under the GIL
print("dropped", flush=True)
"""


def test_a_checkpointer_dropped_mid_save_finishes_it(tmp_path):
    # The background tier of a Python handler and BestN's function both
    # take the GIL while the Checkpointer waits for them.
    root = tmp_path / "run"
    out = subprocess.run([sys.executable, "-c", DROPPED, str(root)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "dropped\n"
    assert (root / "2" / "note" / "note.txt").read_text() == "2"
    assert not (root / "1").exists()  # step 2's loss is lower
