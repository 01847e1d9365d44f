"""read_scene / write_scene pick the format by suffix; the scene package stays free of Taichi."""
import re
from pathlib import Path

import pytest
from synthetic_scenes import assert_scenes_identical, random_scene

import taichi_3dgs.scene
from taichi_3dgs.scene.io import read_scene, write_scene


@pytest.mark.parametrize("name", ["scene.parquet", "scene.ply", "SCENE.PLY"])
@pytest.mark.parametrize("antialiased", [False, True])
def test_write_then_read_by_suffix_is_identical(tmp_path, name, antialiased):
    scene = random_scene(num_gaussians=20, sh_degree=2, antialiased=antialiased)
    write_scene(tmp_path / name, scene)
    assert_scenes_identical(read_scene(tmp_path / name), scene)


def test_ply_suffix_holds_official_ply_and_parquet_suffix_parquet(tmp_path):
    write_scene(tmp_path / "a.ply", random_scene(num_gaussians=2))
    write_scene(tmp_path / "a.parquet", random_scene(num_gaussians=2))
    assert (tmp_path / "a.ply").read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\n")
    assert (tmp_path / "a.parquet").read_bytes()[:4] == b"PAR1"


_ALL = r"'\.parquet', '\.ply', '\.compressed\.ply', '\.spz', '\.sog', '\.glb', '\.splat'"


@pytest.mark.parametrize("function, expected", [("read", _ALL), ("write", _ALL)])
def test_unknown_suffix_is_an_error_naming_the_file(tmp_path, function, expected):
    path = tmp_path / "scene.npz"
    with pytest.raises(ValueError, match=r"scene\.npz: unknown scene file suffix '\.npz', "
                                         rf"expected one of \[{expected}\]"):
        if function == "read":
            read_scene(path)
        else:
            write_scene(path, random_scene(num_gaussians=2))
    assert not path.exists()


def test_scene_package_does_not_import_taichi():
    package_dir = Path(taichi_3dgs.scene.__file__).parent
    pattern = re.compile(r"^\s*(import|from)\s+taichi(\s|\.|$)", re.M)  # not taichi_3dgs
    offenders = [p.name for p in package_dir.glob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
