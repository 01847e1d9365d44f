"""training.image_grid: the labelled prediction | ground truth | depth | error grid of TensorBoard."""
from __future__ import annotations

import torch

from taichi_3dgs.training.image_grid import LABEL_HEIGHT, image_grid, turbo

# Turbo's published 256-entry table (Google, 2019) at its ends and middle; the polynomial fit is
# within about 0.13 of it (worst at the dark ends).
TURBO_TABLE = {0: (0.18995, 0.07176, 0.23217), 128: (0.64362, 0.98999, 0.23356), 255: (0.47960, 0.01583, 0.01055)}


def test_turbo_follows_the_published_table_from_dark_blue_to_dark_red():
    for index, colour in TURBO_TABLE.items():
        assert torch.allclose(turbo(torch.tensor(index / 255.0)), torch.tensor(colour), atol=0.13), index


def test_the_grid_holds_labelled_panels_with_the_error_in_turbo_up_to_its_largest_value():
    h, w = 20, 30
    generator = torch.Generator().manual_seed(0)
    prediction = torch.rand(h, w, 3, generator=generator)
    target = prediction.clone()
    target[5, 7] += torch.tensor([0.3, 0.0, 0.0])  # the largest error, 0.1 over the channels
    target[9, 4] -= torch.tensor([0.15, 0.0, 0.0])  # half of it
    depth = torch.linspace(1.0, 2.0, h * w).reshape(h, w)
    alpha = torch.ones(h, w)
    grid = image_grid(prediction, target, depth, alpha)
    assert grid.shape == (LABEL_HEIGHT + h, 4 * w, 3) and grid.dtype == torch.float32
    panels = grid[LABEL_HEIGHT:]
    assert torch.equal(panels[:, :w], prediction) and torch.equal(panels[:, w:2 * w], target)
    assert torch.allclose(panels[:, 2 * w:3 * w, 0], depth / 2.0)  # grey, normalised by the farthest
    error = panels[:, 3 * w:]
    assert torch.allclose(error[5, 7], turbo(torch.tensor(1.0)))
    assert torch.allclose(error[9, 4], turbo(torch.tensor(0.5)), atol=1e-5)
    assert torch.allclose(error[0, 0], turbo(torch.tensor(0.0)))
    for panel in range(4):  # each label strip holds drawn text
        assert grid[:LABEL_HEIGHT, panel * w:(panel + 1) * w].max() > 0.5, panel
