"""Progressive rendering for the web viewer, as gsplat's nerfview does: while a view changes it
is rendered at a low resolution, and once it has rested for `REFINE_DELAY_S` it is rendered once
more at the full one (up to the browser canvas' size). `RefinementSchedule` keeps, per client,
when that full-resolution frame is due. Standard library only.
"""
from __future__ import annotations

import math

REFINE_DELAY_S = 0.25
"""A view is refined once no change arrived for this long after its last low-resolution frame
(a drag sends camera changes every few tens of milliseconds)."""


class RefinementSchedule:
    """When each client's full-resolution frame is due (seconds on one monotonic clock).

    Not thread-safe: the caller holds its lock around every call.
    """

    def __init__(self, delay: float = REFINE_DELAY_S) -> None:
        if not delay >= 0.0:
            raise ValueError(f"refinement delay: expected seconds >= 0, got {delay}")
        self.delay = delay
        self._due: dict[int, float] = {}

    def rendered_coarse(self, client_id: int, now: float) -> None:
        """The client was just sent a low-resolution frame at time `now`: refine at now + delay
        (a later coarse frame moves this on)."""
        self._due[client_id] = now + self.delay

    def cancel(self, client_id: int) -> None:
        """Owe the client no refinement (it was sent a full frame, or it left)."""
        self._due.pop(client_id, None)

    def pop_due(self, now: float) -> set[int]:
        """The clients whose refinement is due at `now`; they are owed nothing more after it."""
        due = {client_id for client_id, time in self._due.items() if time <= now}
        for client_id in due:
            del self._due[client_id]
        return due

    def next_due(self) -> float:
        """The earliest due time, or infinity when no refinement is owed."""
        return min(self._due.values(), default=math.inf)
