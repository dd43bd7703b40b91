"""Fixtures of the Python package's tests: Poisson data from dino-gen-poisson and a briefly
trained checkpoint of specs/poisson.dino, made once per session.

ctest (tests/CMakeLists.txt) runs these with DINO_LIBRARY (the build's libdino), DINO_JIT and
DINO_GEN_POISSON set, and python/ on PYTHONPATH."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
SPEC = ROOT / "specs" / "poisson.dino"


def tool(name: str) -> str:
    path = os.environ.get(name)
    if not path:
        pytest.fail(f"{name} is not set (ctest sets it: run these tests through ctest -R python)")
    return path


@pytest.fixture(scope="session")
def spec() -> Path:
    return SPEC


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """2,000 rows (the spec's split is 1600 + 400) on a coarse grid, so it takes a second."""
    out = tmp_path_factory.mktemp("poisson")
    subprocess.run([tool("DINO_GEN_POISSON"), "--out", str(out), "--grid", "15", "-q"], check=True)
    return out


@pytest.fixture(scope="session")
def checkpoint(data_dir, tmp_path_factory) -> Path:
    import dino
    path = tmp_path_factory.mktemp("ckpt") / "poisson.safetensors"
    history = dino.train(SPEC, data=data_dir, epochs=2, save=path)
    assert len(history) == 2 and path.exists()
    history.model.close()
    return path
