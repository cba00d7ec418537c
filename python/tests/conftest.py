"""Shared fixtures of the package's tests: run by meson test (suite python)
with PYTHONPATH=build/python, in the pinned .venv."""
import os

import pytest


@pytest.fixture
def path(tmp_path):
    """A checkpoint path that does not exist yet."""
    return tmp_path / "ckpt"


@pytest.fixture(scope="session")
def ckpt_tool():
    tool = os.environ.get("CKPT_TOOL")
    if not tool:
        pytest.skip("CKPT_TOOL is not set (meson test sets it)")
    return tool
