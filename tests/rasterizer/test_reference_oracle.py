"""The float64 reference (reference.py) is itself checked before it judges the rasterizer:
projection against gsplat, compositing against a literal per-pixel loop, gradients against
finite differences."""
from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci

from reference import (
    PARAMETER_NAMES, camera_center, centred, project_reference, random_scene, rasterize_reference, scene_args,
    sh_reference, tile_ranges,
)

# The defaults of FORMATS.md, spelled out so these checks need nothing from taichi_3dgs.
DEFAULTS = SimpleNamespace(
    tile_size=16, eps2d=0.3, near_plane=0.01, far_plane=1e10, fov_clamp=1.3, radius_sigmas=3.0,
    alpha_threshold=1 / 255, max_alpha=0.99,
    transmittance_threshold=1e-4, color_activation="linear", antialiased=False,
)


def test_reference_projection_matches_gsplat():
    scene = centred(random_scene(400, 162, 105, seed=3))
    proj = project_reference(scene["means"], scene["quats"], scene["log_scales"], scene["viewmat"], scene["K"],
                             162, 105, DEFAULTS)
    covars, _ = _quat_scale_to_covar_preci(scene["quats"].double(), scene["log_scales"].double().exp(),
                                           compute_preci=False)
    _, means2d, depths, conics, comps = _fully_fused_projection(
        scene["means"].double(), covars, scene["viewmat"].double()[None], scene["K"].double()[None], 162, 105,
        calc_compensations=True)
    # Gaussians beyond 1.3x the half field of view exercise the J clamp.
    x_over_z = (proj.means2d[:, 0] - 81.0) / scene["K"][0, 0]
    assert (x_over_z.abs() > 1.3 * 0.5 * 162 / scene["K"][0, 0]).sum() > 20
    torch.testing.assert_close(proj.means2d, means2d[0], rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(proj.depths, depths[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(proj.conics, conics[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(proj.compensations, comps[0], rtol=1e-10, atol=1e-12)


def composite_by_loop(scene, config, background):
    """Literal per-pixel transcription of the official renderCUDA loop, in Python floats."""
    means, quats, log_scales, opacity_logits, sh_coeffs, viewmat, K, width, height = scene_args(scene)
    proj = project_reference(means, quats, log_scales, viewmat, K, width, height, config)
    colors = torch.clamp(sh_reference(sh_coeffs, means, camera_center(viewmat.double()), 3) + 0.5, min=0).tolist()
    opacities = torch.sigmoid(opacity_logits.double()).tolist()
    x_min, x_max, y_min, y_max = (t.tolist() for t in tile_ranges(proj.means2d, proj.radii, width, height,
                                                                   config.tile_size))
    order = torch.argsort(proj.depths, stable=True).tolist()
    means2d, conics, depths = proj.means2d.tolist(), proj.conics.tolist(), proj.depths.tolist()
    image = torch.zeros(height, width, 3, dtype=torch.float64)
    alpha_image = torch.zeros(height, width, dtype=torch.float64)
    depth_image = torch.zeros(height, width, dtype=torch.float64)
    events = dict(skipped=0, clamped=0, stopped=0)
    for py in range(height):
        for px in range(width):
            tx, ty = px // config.tile_size, py // config.tile_size
            T, color, depth = 1.0, [0.0, 0.0, 0.0], 0.0
            for i in order:
                if not (x_min[i] <= tx < x_max[i] and y_min[i] <= ty < y_max[i]):
                    continue
                dx, dy = px + 0.5 - means2d[i][0], py + 0.5 - means2d[i][1]
                a, b, c = conics[i]
                power = -0.5 * (a * dx * dx + c * dy * dy) - b * dx * dy
                alpha = opacities[i] * math.exp(power)
                if alpha > config.max_alpha:
                    alpha = config.max_alpha
                    events["clamped"] += 1
                if alpha < config.alpha_threshold:
                    events["skipped"] += 1
                    continue
                test_T = T * (1 - alpha)
                if test_T < config.transmittance_threshold:
                    events["stopped"] += 1
                    break
                for ch in range(3):
                    color[ch] += colors[i][ch] * alpha * T
                depth += depths[i] * alpha * T
                T = test_T
            for ch in range(3):
                image[py, px, ch] = color[ch] + T * float(background[ch])
            alpha_image[py, px] = 1 - T
            depth_image[py, px] = depth / (1 - T) if T < 1 else 0.0
    return image, alpha_image, depth_image, events


def test_reference_compositing_matches_per_pixel_loop():
    # Dense, opaque and partly transparent Gaussians on a 2x2-tile image with a partial tile, so that
    # the alpha skip, the max_alpha clamp and the early stop all happen.
    scene = random_scene(60, 21, 18, seed=5, log_scale_range=(-0.5, 0.5))
    scene["opacity_logits"][:20] = 8.0
    background = torch.tensor([0.2, 0.5, 0.9])
    image, alpha, depth, events = composite_by_loop(scene, DEFAULTS, background)
    assert min(events.values()) >= 10, events
    out = rasterize_reference(*scene_args(scene), background=background, config=DEFAULTS)
    torch.testing.assert_close(out.image, image, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.alpha, alpha, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.depth, depth, rtol=1e-12, atol=1e-12)


def test_reference_gradients_match_finite_differences():
    scene = random_scene(12, 24, 20, seed=7, log_scale_range=(-2.5, -1.0))
    params = {name: scene[name].double().requires_grad_(True) for name in PARAMETER_NAMES}
    g = torch.Generator().manual_seed(0)
    w_image = torch.rand(20, 24, 3, generator=g, dtype=torch.float64)
    w_alpha = torch.rand(20, 24, generator=g, dtype=torch.float64)
    background = torch.tensor([0.3, 0.1, 0.6])

    def loss_of(values):
        out = rasterize_reference(*[values[n] for n in PARAMETER_NAMES], scene["viewmat"], scene["K"], 24, 20,
                                  background=background, config=DEFAULTS)
        return (out.image * w_image).sum() + (out.alpha * w_alpha).sum()

    loss_of(params).backward()
    step = 1e-6
    checked = 0
    for name in PARAMETER_NAMES:
        flat_grad = params[name].grad.reshape(-1)
        # the entries with the largest gradients, plus a random one (may be zero: SH beyond the
        # image, or a culled Gaussian)
        picks = flat_grad.abs().argsort(descending=True)[:3].tolist()
        picks.append(int(torch.randint(len(flat_grad), (1,), generator=g)))
        for index in picks:
            values = {n: p.detach().clone() for n, p in params.items()}
            values[name].view(-1)[index] += step
            plus = loss_of(values).item()
            values[name].view(-1)[index] -= 2 * step
            minus = loss_of(values).item()
            numeric = (plus - minus) / (2 * step)
            assert abs(numeric - flat_grad[index].item()) <= 1e-6 + 1e-5 * abs(numeric), (name, index, numeric,
                                                                                           flat_grad[index].item())
            checked += abs(numeric) > 1e-3
    assert checked >= 10
