"""Training views: the scene extent the trainer scales by, and the order it draws views in.

The views themselves (images decoded once, cached as uint8) are `taichi_3dgs.data.views`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from taichi_3dgs.data.cameras import CameraRecord


def scene_extent(records: Sequence[CameraRecord]) -> float:
    """1.1 x the largest distance of a camera centre from the centroid of the centres, world units.

    Official `getNerfppNorm` radius; it scales the means' learning rate and the densification
    size thresholds. Falls back to 1.0 when all cameras share one centre (the radius would be 0).
    """
    centres = np.stack([r.camera_center for r in records])
    radius = 1.1 * float(np.linalg.norm(centres - centres.mean(axis=0), axis=1).max())
    return radius if radius > 1e-9 else 1.0


class ViewSampler:
    """One training view per step from a shuffled stack (official `viewpoint_stack`).

    Every view is used once per pass in a random order; a new order is drawn when the stack is
    empty. The state (the views still in the stack) is checkpointed, so a resumed run draws the
    same views as an uninterrupted one.
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

    def state_dict(self) -> dict:
        """The views left in the current pass."""
        return {"remaining": list(self.remaining)}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`'s output."""
        self.remaining = list(state["remaining"])

