"""Shared fixtures of the package's tests: run by meson test (suite python)
with PYTHONPATH=build/python, in the pinned .venv."""
import os

# JAX on the CPU with 4 devices, for the sharded loads (before any import
# of jax).
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=4").strip()

import pytest  # noqa: E402


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
