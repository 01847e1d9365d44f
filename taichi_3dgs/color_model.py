"""A Gaussian's colour model: real spherical harmonics up to band 3 and the activation to RGB.

The one home of these constants for the rasterizer's Taichi kernels and the Taichi-free scene,
training and viewer code (plain Python, no imports). A Gaussian's colour seen along the unit
direction `dir` is `activation(sum_k sh_coeffs[k] * Y_k(dir))` (docs/FORMATS.md "Gaussian parameters").
The basis order, constants and signs are those of graphdeco-inria/gaussian-splatting
`utils/sh_utils.py::eval_sh` (Sloan, "Stupid Spherical Harmonics Tricks", 2008): index
k = l * (l + 1) + m for band l and order m, DC first.
"""

MAX_SH_DEGREE = 3
"""Highest SH band the package stores (16 coefficients per colour channel)."""

# graphdeco utils/sh_utils.py constants: SH_C0 is Y_0^0 = 1 / (2 sqrt(pi)), SH_C1 band 1's
# factor, SH_C2 and SH_C3 the factors of the 5 and 7 functions of bands 2 and 3.
SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
         0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
         -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


def num_sh_coeffs(degree: int) -> int:
    """Number of SH coefficients per colour channel up to band `degree`: (degree + 1)^2."""
    return (degree + 1) ** 2


NUM_SH_COEFFS = num_sh_coeffs(MAX_SH_DEGREE)
"""SH coefficients stored per colour channel (bands 0..3), whatever a scene's `sh_degree`."""

COLOR_ACTIVATIONS = ("linear", "sigmoid")
"""`linear`: rgb = max(0, SH + 0.5) (official 3DGS); `sigmoid`: rgb = sigmoid(SH) (original
Taichi project)."""
