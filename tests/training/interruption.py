"""Stopping a training run the way a user does: Ctrl-C (SIGINT) in the middle of a step."""
from __future__ import annotations

import signal

import taichi_3dgs.training.trainer as trainer_module


def press_ctrl_c_at_render(monkeypatch, render_number: int) -> None:
    """Make the trainer send itself SIGINT just before its `render_number`-th training render
    (1-based), i.e. during that step, as a Ctrl-C there would; undo with `monkeypatch.undo()`."""
    calls = {"n": 0}
    real_render = trainer_module.render_model_view

    def render_then_press_ctrl_c(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == render_number:
            signal.raise_signal(signal.SIGINT)
        return real_render(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "render_model_view", render_then_press_ctrl_c)
