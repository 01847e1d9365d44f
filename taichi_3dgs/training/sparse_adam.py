"""Sparse Adam: an Adam step for the Gaussians visible in the step's renders only.

The sparse Adam of Taming 3DGS (Mallick et al., SIGGRAPH Asia 2024), which the official 3DGS code
ships as `SparseGaussianAdam` and gsplat as `SelectiveAdam` (`gsplat/optimizers/selective_adam.py`):
each parameter is a tensor with one row per Gaussian, and a step given a visibility mask [N]
(radius > 0 in any render of the step) updates the rows of the visible Gaussians only. An invisible
Gaussian keeps its parameters and both Adam moments bit for bit, where dense Adam would still move
it with its decaying first moment. Only the visible rows are gathered, updated and written back, so
the step's cost grows with the visible count, plus one pass over the mask (BENCHMARKS.md: on the
CPU, 1.6-1.7x faster than dense Adam with 23 % of the Gaussians visible, the gathers costing about
as much as the update).

Bias correction: the kernels of both references skip it (their `step` stays 0). Here each step
counts once for every parameter, visible rows or not (as `torch.optim.SparseAdam` and TensorFlow's
LazyAdam count), and the update is torch Adam's (Kingma & Ba 2015, Algorithm 1):

    m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g^2,
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps),

in the same operations as `torch.optim.Adam`'s single-tensor loop, so with every Gaussian visible a
step equals torch Adam's (bit for bit on the CPU). The state has torch Adam's layout (`step`,
`exp_avg`, `exp_avg_sq` per parameter), so checkpoints and the densification row surgery of
`strategies.ops` (`keep_rows`, `append_rows`, `replace_rows`) work unchanged.
"""
from __future__ import annotations

from typing import Optional

import torch


class SparseGaussianAdam(torch.optim.Adam):
    """torch Adam whose `step(visibility)` updates the visible Gaussians' rows only.

    Every param group holds one tensor whose first dimension indexes the Gaussians ([N, ...],
    any float dtype, any device); the groups' lr, betas and eps apply as in torch Adam (set them
    with the usual param-group keys). Adam's amsgrad, weight decay and maximize are not supported.

    Raises (constructor):
        ValueError: a param group with not exactly one tensor, or amsgrad / weight_decay /
            maximize set.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr=lr, betas=betas, eps=eps)
        for index, group in enumerate(self.param_groups):
            if len(group["params"]) != 1:
                raise ValueError(f"SparseGaussianAdam: param group {index} holds {len(group['params'])} tensors; "
                                 "expected one tensor with a row per Gaussian")
            if group["amsgrad"] or group["weight_decay"] or group["maximize"]:
                raise ValueError(f"SparseGaussianAdam: param group {index} sets amsgrad, weight_decay or "
                                 "maximize, which it does not support")

    @torch.no_grad()
    def step(self, visibility: Optional[torch.Tensor] = None, closure=None):  # type: ignore[override]
        """One Adam step of the rows where `visibility` is true.

        Args:
            visibility: bool [N] on the parameters' device, true for the Gaussians seen in this
                step; None updates every row (then the step is torch Adam's).
            closure: as torch's (re-evaluates the loss), or None.

        Returns:
            The closure's loss, or None.

        Raises:
            ValueError: `visibility` is not a bool [N] tensor with N the parameters' row count.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        rows = None
        if visibility is not None:
            if visibility.dtype != torch.bool or visibility.dim() != 1:
                raise ValueError(f"SparseGaussianAdam.step: visibility must be a bool [N] tensor, got "
                                 f"{visibility.dtype} of shape {list(visibility.shape)}")
            # One index list for every parameter (on CUDA this syncs with the host once per step).
            rows = visibility.nonzero().squeeze(1)
        for group in self.param_groups:
            (param,) = group["params"]
            if param.grad is None:
                continue
            if visibility is not None and param.shape[0] != visibility.shape[0]:
                raise ValueError(f"SparseGaussianAdam.step: visibility has {visibility.shape[0]} entries but "
                                 f"param group {group.get('name', '?')!r} has {param.shape[0]} rows")
            state = self.state[param]
            if not state:  # torch Adam's lazy initialisation and layout (step on the CPU)
                state["step"] = torch.tensor(0.0, dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["step"] += 1
            _adam_rows(param, param.grad, state["exp_avg"], state["exp_avg_sq"], rows, float(state["step"]),
                       group["lr"], *group["betas"], group["eps"])
        return loss


def _adam_rows(param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor,
               rows: Optional[torch.Tensor], step: float, lr: float, beta1: float, beta2: float,
               eps: float) -> None:
    """torch Adam's update (`_single_tensor_adam`, same operations in the same order) of `rows`
    (int64 [V]; None = all) of `param` and its moments, in place."""
    if rows is not None:
        whole = (param, exp_avg, exp_avg_sq)
        param, grad, exp_avg, exp_avg_sq = (t.index_select(0, rows) for t in (param, grad, exp_avg, exp_avg_sq))
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5  # torch's `** 0.5`, not sqrt: the same float
    if rows is None:
        denom = exp_avg_sq.sqrt()
    else:  # the gathered gradient is a copy used up above: its memory holds the denominator
        denom = torch.sqrt(exp_avg_sq, out=grad)
    denom.div_(bias_correction2_sqrt).add_(eps)
    param.addcdiv_(exp_avg, denom, value=-(lr / bias_correction1))
    if rows is not None:
        for target, updated in zip(whole, (param, exp_avg, exp_avg_sq)):
            target.index_copy_(0, rows, updated)
