"""Row operations shared by the densification strategies (gsplat `strategy/ops.py`).

Densification changes the number of rows: `keep_rows`, `append_rows` and `replace_rows` swap each
parameter for a resized one and resize its Adam moments the same way (kept rows keep their
moments, new rows start at zero), as the official `_prune_optimizer` / `cat_tensors_to_optimizer`
/ `replace_tensor_to_optimizer`.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch

from taichi_3dgs.scene.model import PARAMETER_NAMES, GaussianModel
from taichi_3dgs.training.optimization import param_group

_MOMENT_KEYS = ("exp_avg", "exp_avg_sq")


def _swap(
    model: GaussianModel,
    optimizer: torch.optim.Optimizer,
    names: Iterable[str],
    new_value: Callable[[str, torch.Tensor], torch.Tensor],
    new_moment: Callable[[str, torch.Tensor], torch.Tensor],
) -> None:
    for name in names:
        group = param_group(optimizer, name)
        old = group["params"][0]
        state = optimizer.state.pop(old, None)
        new = model.set_parameter(name, new_value(name, old.detach()))
        group["params"][0] = new
        if state:
            for key in _MOMENT_KEYS:
                state[key] = new_moment(name, state[key])
            optimizer.state[new] = state


@torch.no_grad()
def keep_rows(model: GaussianModel, optimizer: torch.optim.Optimizer, keep: torch.Tensor) -> None:
    """Keep only the Gaussians where keep [N] (bool) is true, with their Adam moments."""
    _swap(model, optimizer, PARAMETER_NAMES, lambda _, v: v[keep], lambda _, m: m[keep])


@torch.no_grad()
def append_rows(model: GaussianModel, optimizer: torch.optim.Optimizer, rows: dict[str, torch.Tensor]) -> None:
    """Append new Gaussians (rows[name]: [M, ...] for every parameter); their Adam moments are zero."""
    _swap(
        model,
        optimizer,
        PARAMETER_NAMES,
        lambda name, v: torch.cat([v, rows[name].to(v.dtype)]),
        lambda name, m: torch.cat([m, torch.zeros_like(rows[name], dtype=m.dtype)]),
    )


@torch.no_grad()
def replace_rows(
    model: GaussianModel,
    optimizer: torch.optim.Optimizer,
    indices: torch.Tensor | slice,
    values: dict[str, torch.Tensor],
) -> None:
    """Set rows `indices` (int64 [M], bool [N], or a slice) of each parameter in `values` to `values[name]`
    ([M, ...] or broadcastable) and zero those rows' Adam moments (official
    `replace_tensor_to_optimizer` zeroes them for the rows it rewrites)."""

    def value(name: str, v: torch.Tensor) -> torch.Tensor:
        v = v.clone()
        v[indices] = values[name].to(v.dtype)
        return v

    def moment(_, m: torch.Tensor) -> torch.Tensor:
        m = m.clone()
        m[indices] = 0
        return m

    _swap(model, optimizer, list(values), value, moment)
