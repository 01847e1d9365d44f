"""Every constant of the rasterizer, in one dataclass.

Defaults follow the official 3DGS rasterizer (graphdeco-inria/diff-gaussian-rasterization) and
docs/FORMATS.md "Rasterization semantics".
"""

from dataclasses import dataclass, field

from taichi_3dgs.color_model import COLOR_ACTIVATIONS

# How the GPU blending layout ("per_pixel") sums the blend's gradients (`blend_backward`).
BLEND_BACKWARDS = ("atomic", "reproducible")


class ConfigValueError(ValueError):
    """A config field out of its range: `field` (its name), `value` and `expected` (in words), so
    that a config loader can name the key as its file spells it."""

    def __init__(self, owner: str, field: str, value: object, expected: str) -> None:
        super().__init__(f"{owner}.{field} = {value!r}; expected {expected}")
        self.field, self.value, self.expected = field, value, expected


@dataclass(frozen=True)
class RasterizerConfig:
    """Constants of projection, binning and blending.

    Attributes:
        tile_size: tile edge in pixels (tiles are tile_size x tile_size).
        eps2d: px^2 added to the diagonal of every 2D covariance (low-pass filter, EWA dilation).
        near_plane: camera-z (world units) at or below which a Gaussian is culled.
        far_plane: camera-z (world units) at or above which a Gaussian is culled.
        fov_clamp: x/z and y/z are clamped to fov_clamp * tan(half field of view) when building the
            projection Jacobian J (official code: 1.3), so Gaussians far outside the view do not
            get huge footprints.
        radius_sigmas: screen radius = ceil(radius_sigmas * sqrt(largest eigenvalue)) px.
        alpha_threshold: a Gaussian whose alpha at a pixel is below this is skipped there.
        max_alpha: alpha is clamped to this (keeps 1 - alpha invertible for the backward pass).
        transmittance_threshold: blending stops before the Gaussian that would bring the
            transmittance below this.
        color_activation: "linear" (official: rgb = max(0, SH + 0.5)) or "sigmoid" (original
            Taichi project: rgb = sigmoid(SH)).
        antialiased: multiply opacity by sqrt(det(cov) / det(cov + eps2d I)) (Mip-Splatting,
            Yu et al. 2024, eq. 9 as implemented in gsplat).
        blend_backward: how the GPU blending layout (CUDA, Vulkan) sums each Gaussian's gradient
            over pixels: "atomic" (every pixel adds to global memory atomically; the float sums
            depend on thread timing, so repeated runs differ in the last bits) or "reproducible"
            (summed inside the tile's block in a fixed order, one row per (tile, Gaussian) pair
            without atomics, then the rows per Gaussian in a fixed order: the same inputs give
            bit-identical gradients; tile_size <= 16). The CPU layout is always reproducible and
            ignores it. "atomic" stays the default until a GPU measurement compares the two.

    Raises:
        ConfigValueError (a ValueError): from __post_init__, when a field is out of its range.
    """

    tile_size: int = 16
    eps2d: float = 0.3
    near_plane: float = 0.01
    far_plane: float = 1e10
    fov_clamp: float = 1.3
    radius_sigmas: float = 3.0
    alpha_threshold: float = 1.0 / 255.0
    max_alpha: float = 0.99
    transmittance_threshold: float = 1e-4
    # Not a setting of a training config (metadata "derived"): the scene being rendered decides it.
    color_activation: str = field(default="linear", metadata={"derived": "the scene's colour activation"})
    antialiased: bool = False
    blend_backward: str = "atomic"

    def __post_init__(self) -> None:
        checks = [
            ("tile_size", 1 <= self.tile_size <= 32, "an integer in [1, 32]"),
            ("eps2d", self.eps2d >= 0.0, ">= 0"),
            ("near_plane", 0.0 < self.near_plane < self.far_plane, "> 0 and < far_plane"),
            ("fov_clamp", self.fov_clamp > 0.0, "> 0"),
            ("radius_sigmas", self.radius_sigmas > 0.0, "> 0"),
            ("alpha_threshold", 0.0 <= self.alpha_threshold < self.max_alpha, ">= 0 and < max_alpha"),
            ("max_alpha", 0.0 < self.max_alpha < 1.0, "in (0, 1)"),
            ("transmittance_threshold", 0.0 <= self.transmittance_threshold < 1.0, "in [0, 1)"),
            ("color_activation", self.color_activation in COLOR_ACTIVATIONS, f"one of {COLOR_ACTIVATIONS}"),
            ("blend_backward", self.blend_backward in BLEND_BACKWARDS, f"one of {BLEND_BACKWARDS}"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigValueError("RasterizerConfig", name, getattr(self, name), expected)
