"""Training views: the scene extent the trainer scales by, and the order it draws views in.

The views themselves (images decoded once, cached as uint8) are `taichi_3dgs.data.views`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from taichi_3dgs.data.cameras import CameraRecord


def scene_centre(records: Sequence[CameraRecord]) -> np.ndarray:
    """[3] float64 centroid of the camera centres, world frame (official `getNerfppNorm` centre)."""
    return np.stack([r.camera_center for r in records]).mean(axis=0)


def scene_extent(records: Sequence[CameraRecord]) -> float:
    """1.1 x the largest distance of a camera centre from `scene_centre`, world units.

    Official `getNerfppNorm` radius; it scales the means' learning rate and the densification
    size thresholds. Falls back to 1.0 when all cameras share one centre (the radius would be 0).
    """
    centres = np.stack([r.camera_center for r in records])
    radius = 1.1 * float(np.linalg.norm(centres - scene_centre(records), axis=1).max())
    return radius if radius > 1e-9 else 1.0


class ViewSampler:
    """Training views from a shuffled stack (official `viewpoint_stack`), one or a batch per step.

    Every view is used once per pass in a random order; a new order is drawn when the stack is
    empty. A batch takes distinct views off the stack (`next_batch`). The state (the views still
    in the stack) is checkpointed, so a resumed run draws the same views as an uninterrupted one.
    """

    def __init__(self, num_views: int):
        if num_views < 1:
            raise ValueError("ViewSampler: there are no training views")
        self.num_views = num_views
        self.remaining: list[int] = []

    def next(self, generator: torch.Generator) -> int:
        """Index of the next view, drawn with the run's CPU generator."""
        if not self.remaining:
            self.remaining = torch.randperm(self.num_views, generator=generator).tolist()
        return self.remaining.pop()

    def next_batch(self, generator: torch.Generator, count: int) -> list[int]:
        """Indices of the next `count` distinct views, in the order drawn.

        Views come off the stack as `next` takes them. When the stack runs out within a batch, a
        new pass starts; a view of the new pass already in the batch is put back on the stack and
        is the first of the next batch, so no view appears twice in a batch and every view still
        comes once per pass. `next_batch(generator, 1)` is `[next(generator)]`.

        Raises:
            ValueError: `count` is not in 1..num_views.
        """
        if not 1 <= count <= self.num_views:
            raise ValueError(f"ViewSampler: cannot draw {count} distinct views out of {self.num_views}")
        batch: list[int] = []
        held_back: list[int] = []
        while len(batch) < count:
            index = self.next(generator)
            (held_back if index in batch else batch).append(index)
        self.remaining.extend(reversed(held_back))  # `pop` takes from the end: first held back, first out
        return batch

    def state_dict(self) -> dict:
        """The views left in the current pass."""
        return {"remaining": list(self.remaining)}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`'s output."""
        self.remaining = list(state["remaining"])

