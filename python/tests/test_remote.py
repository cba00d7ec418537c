"""ckpt.remote and the Checkpointer's remote tier from Python: on a folder
store, and on S3 (moto's server, which tests/s3/s3_env.py starts around
the suite)."""
import json
import os
import urllib.request
import uuid

import numpy as np
import pytest

import ckpt
import ckpt.remote
from ckpt import training


@pytest.fixture
def s3_root():
    """A fresh s3:// root of the test bucket, on the server itself."""
    endpoint = os.environ.get("CKPT_TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.fail("CKPT_TEST_S3_ENDPOINT is not set: run the suite under "
                    "tests/s3/s3_env.py")
    old = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    yield f"s3://{os.environ['CKPT_TEST_S3_BUCKET']}/py-{uuid.uuid4().hex[:8]}"
    if old is None:
        del os.environ["AWS_ENDPOINT_URL"]
    else:
        os.environ["AWS_ENDPOINT_URL"] = old


def tree(step):
    return {"w": np.arange(12, dtype=np.float32).reshape(3, 4) * step,
            "step": step, "name": f"step {step}"}


def check_tree(got, step):
    np.testing.assert_array_equal(got["w"], tree(step)["w"])
    assert got["step"] == step and got["name"] == f"step {step}"


@pytest.mark.parametrize("where", ["folder", "s3"])
def test_a_checkpoint_goes_up_and_comes_back(tmp_path, where, request):
    root = (str(tmp_path / "store") if where == "folder"
            else request.getfixturevalue("s3_root"))
    ckpt.save_checkpointables(tmp_path / "c", {"state": tree(1),
                                               "config": {"lr": 0.5}})
    ckpt.remote.upload_checkpoint(tmp_path / "c", root + "/step_1")
    assert ckpt.remote.list_checkpoints(root) == ["step_1"]
    with pytest.raises(ckpt.AlreadyExistsError, match="already committed"):
        ckpt.remote.upload_checkpoint(tmp_path / "c", root + "/step_1")
    ckpt.remote.download_checkpoint(root + "/step_1", tmp_path / "back")
    check_tree(ckpt.load_pytree(tmp_path / "back"), 1)
    # Only the config comes down.
    ckpt.remote.download_checkpoint(root + "/step_1", tmp_path / "config",
                                    only=["config"])
    assert not (tmp_path / "config" / "state").exists()
    assert ckpt.load_checkpointables(tmp_path / "config",
                                     {"config": None}) == {
                                         "config": {"lr": 0.5}}
    with pytest.raises(FileExistsError):
        ckpt.remote.download_checkpoint(root + "/step_1", tmp_path / "back")
    ckpt.remote.remove_checkpoint(root + "/step_1")
    assert ckpt.remote.list_checkpoints(root) == []
    with pytest.raises(ckpt.NotFoundError, match="no checkpoint is committed"):
        ckpt.remote.download_checkpoint(root + "/step_1", tmp_path / "gone")


def test_bad_urls_and_credentials_are_clear_errors(tmp_path, s3_root,
                                                   monkeypatch):
    ckpt.save_pytree(tmp_path / "c", tree(1))
    for url in ("s3://bucket", "s3://", ""):
        with pytest.raises(ValueError, match="names no checkpoint"):
            ckpt.remote.upload_checkpoint(tmp_path / "c", url)
    with pytest.raises(ckpt.InvalidArgumentError):
        ckpt.remote.list_checkpoints("s3://Bad_Bucket/x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(PermissionError) as error:
        ckpt.remote.upload_checkpoint(tmp_path / "c", s3_root + "/step_1")
    assert os.environ["CKPT_TEST_S3_BUCKET"] in str(error.value)
    assert isinstance(error.value, ckpt.PermissionDeniedError)
    monkeypatch.undo()
    os.environ["AWS_ENDPOINT_URL"] = os.environ["CKPT_TEST_S3_ENDPOINT"]
    assert ckpt.remote.list_checkpoints(s3_root) == []


def test_a_run_persists_to_s3_and_resumes_on_an_empty_disk(tmp_path,
                                                           s3_root):
    with training.Checkpointer(
            tmp_path / "a", remote=s3_root, keep_local=1,
            preservation_policy=training.preservation_policies.LatestN(2)
            ) as c:
        for step in range(1, 5):
            c.save_pytree(step, tree(step), force=True,
                          metrics={"loss": 1.0 / step})
        c.wait_for_uploads()
        steps = c.checkpoints
        assert [s.step for s in steps] == [3, 4]
        assert all(s.remote for s in steps)
        assert [s.local for s in steps] == [False, True]
    assert ckpt.remote.list_checkpoints(s3_root) == ["3", "4"]
    # Another machine: nothing local, everything in the store.
    with training.Checkpointer(tmp_path / "b", remote=s3_root) as c:
        latest = c.latest
        assert latest.step == 4 and latest.remote and not latest.local
        assert latest.metrics == {"loss": 0.25}
        check_tree(c.load_pytree(), 4)
        check_tree(c.load_pytree(3), 3)
    # The downloads were temporary: no step folder, no leftover.
    assert [p.name for p in (tmp_path / "b").iterdir()] == [
        ".ckpt_preservation_policy.json"]


def faults(method, rule=None):
    """Adds a fault rule to the proxy (POST), or clears them (DELETE)."""
    body = json.dumps(rule).encode() if rule else None
    request = urllib.request.Request(
        os.environ["CKPT_TEST_S3_CONTROL"] + "/faults", data=body,
        method=method)
    urllib.request.urlopen(request).read()


def test_failed_uploads_are_raised_and_the_next_run_uploads(tmp_path,
                                                            s3_root):
    # Through the proxy, every PUT answered 503 SlowDown.
    os.environ["AWS_ENDPOINT_URL"] = os.environ["CKPT_TEST_S3_PROXY"]
    faults("POST", {"method": "PUT", "fault": "503", "times": 1000})
    try:
        with training.Checkpointer(tmp_path / "a", remote=s3_root) as c:
            c.save_pytree(1, tree(1), force=True)
            with pytest.raises(ckpt.IOError, match="503") as error:
                c.wait_for_uploads()
            assert isinstance(error.value, OSError)
            assert [(s.local, s.remote) for s in c.checkpoints] == [
                (True, False)]
    finally:
        faults("DELETE")
    assert ckpt.remote.list_checkpoints(s3_root) == []
    # The next run finds step 1 only local, and uploads it.
    with training.Checkpointer(tmp_path / "a", remote=s3_root) as c:
        c.wait_for_uploads()
        assert [(s.local, s.remote) for s in c.checkpoints] == [(True, True)]
    assert ckpt.remote.list_checkpoints(s3_root) == ["1"]
