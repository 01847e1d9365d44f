"""`init_taichi`: one architecture per process, chosen by argument, environment or torch."""
from __future__ import annotations

import pytest

from taichi_3dgs.backend import ARCH_ENV_VAR, init_taichi, torch_device


def test_tests_run_on_the_cpu():
    assert init_taichi() == "cpu"
    assert torch_device().type == "cpu"


def test_unknown_architecture_argument_is_refused():
    with pytest.raises(ValueError, match=r"argument `arch` is 'metal'; expected one of \['cpu', 'cuda', 'vulkan'\]"):
        init_taichi("metal")


def test_unknown_architecture_in_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv(ARCH_ENV_VAR, "opengl")
    with pytest.raises(ValueError, match=f"environment variable {ARCH_ENV_VAR} is 'opengl'"):
        init_taichi()


def test_switching_architecture_in_one_process_is_refused():
    init_taichi()
    with pytest.raises(RuntimeError, match="already initialised on 'cpu'; cannot switch to 'vulkan'"):
        init_taichi("vulkan")
