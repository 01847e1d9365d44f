"""sh_basis against gsplat's independent pure-torch SH basis (Sloan's recurrence form)."""
import pytest
import torch
from gsplat.cuda._torch_impl import _eval_sh_bases_fast

from taichi_3dgs.scene.spherical_harmonics import sh_basis


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_sh_basis_matches_gsplat(degree):
    dirs = torch.nn.functional.normalize(
        torch.randn(500, 3, generator=torch.Generator().manual_seed(degree), dtype=torch.float64),
        dim=1)
    expected = _eval_sh_bases_fast((degree + 1) ** 2, dirs)
    actual = sh_basis(dirs, degree)
    assert actual.shape == (500, (degree + 1) ** 2)
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-12)


def test_sh_basis_keeps_leading_dimensions_and_dtype():
    dirs = torch.nn.functional.normalize(torch.randn(4, 5, 3), dim=-1)
    basis = sh_basis(dirs, 2)
    assert basis.shape == (4, 5, 9) and basis.dtype == torch.float32


@pytest.mark.parametrize("degree", [-1, 4])
def test_sh_basis_rejects_degree_outside_0_to_3(degree):
    with pytest.raises(ValueError, match="degree"):
        sh_basis(torch.tensor([[0.0, 0.0, 1.0]]), degree)
