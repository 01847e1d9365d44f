"""`evaluate_sh` against gsplat's pure-torch `_spherical_harmonics` (the official code's real SH
basis, Sloan 2013 form), degrees 0-3: values, and gradients w.r.t. the coefficients and, through
the view direction, the means."""
from __future__ import annotations

import pytest
import torch
from gsplat.cuda._torch_impl import _spherical_harmonics

from comparison import relative_l2
from taichi_3dgs.rasterizer import evaluate_sh

N = 500


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(31)
    means = torch.randn(N, 3, generator=g) * 2.0
    sh_coeffs = torch.randn(N, 16, 3, generator=g)
    center = torch.tensor([0.4, -0.3, 0.2])
    weights = torch.randn(N, 3, generator=g, dtype=torch.float64)
    return means, sh_coeffs, center, weights


def _gsplat(sh_coeffs, means, center, degree):
    return _spherical_harmonics(degree, means - center, sh_coeffs)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_sh_values_match_gsplat(inputs, degree):
    means, sh_coeffs, center, _ = inputs
    actual = evaluate_sh(sh_coeffs, means, center, degree)
    expected = _gsplat(sh_coeffs.double(), means.double(), center.double(), degree)
    assert actual.shape == (N, 3) and actual.dtype == torch.float32
    torch.testing.assert_close(actual.double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_sh_gradients_match_gsplat(inputs, degree):
    means, sh_coeffs, center, weights = inputs
    means_t, coeffs_t = means.clone().requires_grad_(True), sh_coeffs.clone().requires_grad_(True)
    (evaluate_sh(coeffs_t, means_t, center, degree).double() * weights).sum().backward()
    means_r, coeffs_r = means.double().requires_grad_(True), sh_coeffs.double().requires_grad_(True)
    (_gsplat(coeffs_r, means_r, center.double(), degree) * weights).sum().backward()
    assert relative_l2(coeffs_t.grad, coeffs_r.grad) < 1e-5
    # coefficients above the degree take no part
    assert (coeffs_t.grad[:, (degree + 1) ** 2:] == 0).all()
    if degree == 0:
        assert (means_t.grad == 0).all()  # the DC term does not depend on the direction
    else:
        assert relative_l2(means_t.grad, means_r.grad) < 1e-4


def test_visible_rows_only_are_evaluated_and_differentiated(inputs):
    # The packed mode of `rasterize` (visible_ids from the projection): the listed rows equal the
    # full evaluation bit for bit, every other row and its gradient is 0.
    means, sh_coeffs, center, weights = inputs
    ids = torch.tensor([3, 17, 18, 250, N - 1])
    coeffs_full, coeffs_packed = sh_coeffs.clone().requires_grad_(True), sh_coeffs.clone().requires_grad_(True)
    full = evaluate_sh(coeffs_full, means, center, 3)
    packed = evaluate_sh(coeffs_packed, means, center, 3, visible_ids=ids)
    listed = torch.zeros(N, dtype=torch.bool).index_fill_(0, ids, True)
    assert torch.equal(packed[listed], full[listed]) and (packed[~listed] == 0).all()
    (full.double() * weights * listed[:, None]).sum().backward()
    (packed.double() * weights).sum().backward()
    assert torch.equal(coeffs_packed.grad, coeffs_full.grad) and coeffs_packed.grad[listed].abs().sum() > 0


def test_visible_ids_of_another_dtype_are_refused(inputs):
    means, sh_coeffs, center, _ = inputs
    with pytest.raises(ValueError, match="visible_ids: expected a 1-D int64 tensor"):
        evaluate_sh(sh_coeffs, means, center, 3, visible_ids=torch.tensor([1, 2], dtype=torch.int32))
