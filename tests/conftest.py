"""Shared test fixtures.

Real scenes live in ../shared/datasets beside the checkout (never copied into the repo). A test
that needs one calls `dataset_path(name)`: under CI=true a missing dataset fails the test loudly,
elsewhere it skips with the reason.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASETS_DIR = Path(os.environ.get("TAICHI_3DGS_DATASETS", REPO_ROOT.parent / "shared" / "datasets"))


def missing_prerequisite(message: str) -> None:
    """Stop a test whose data or system tool is missing: fail under CI=true, else skip, saying why."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def dataset_path(name: str) -> Path:
    """Return ../shared/datasets/<name>; fail under CI=true, else skip, when it is missing."""
    path = DATASETS_DIR / name
    if not path.exists():
        missing_prerequisite(f"real dataset {path} is missing (expected ../shared/datasets beside the checkout)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _taichi_on_cpu():
    """Tests run the kernels on ti.cpu, whatever the machine has."""
    os.environ.setdefault("TAICHI_3DGS_ARCH", "cpu")
    yield
