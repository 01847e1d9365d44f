"""tools/prepare_images.py on real captures, against the COLMAP models that came with them.

The registered cameras are compared with the scene's own model after a similarity alignment
(benchmarks/structure_from_motion.py `compare`: rotation error in degrees, camera-centre error as a
fraction of the reference cameras' scene extent). The bounds are a little looser than what was
measured (in the comments; BENCHMARKS.md "Structure from motion"): the mapper draws random samples.
Images are downscaled (--max_image_size) and few, to keep the suite short.
"""
import re

import numpy as np
import pycolmap
import pytest
import yaml

from benchmarks.structure_from_motion import compare, model_poses
from conftest import dataset_path
from taichi_3dgs.data import read_cameras_json, read_point_cloud
from taichi_3dgs.data.colmap import convert_colmap
from tool_runner import run_tool


def _registered(output):
    """'registered N of M images' of the tool's output, as (N, M)."""
    match = re.search(r"registered (\d+) of (\d+) images", output)
    return int(match.group(1)), int(match.group(2))


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    """Every 3rd photo of colmap_desk (10) through prepare_images at 400 px: (output dir, photos, stdout)."""
    scene = dataset_path("colmap_desk")
    work = tmp_path_factory.mktemp("desk")
    photos = work / "photos"
    photos.mkdir()
    for path in sorted((scene / "images").glob("*.jpg"))[::3]:
        (photos / path.name).symlink_to(path)
    return work / "out", photos


def test_desk_photos_match_the_colmap_model(desk, capsys):
    output, photos = desk
    assert run_tool("prepare_images", "--images", photos, "--output_dir", output, "--max_image_size", "400") == 0
    printed = capsys.readouterr().out
    assert _registered(printed) == (10, 10)
    figures = compare(output, model_poses(dataset_path("colmap_desk") / "sparse" / "0"), video=False)
    # Measured: 10 of 10 agree; rotation median 0.39 deg, max 0.51; centre median 0.67 %, max 0.95 %.
    assert figures["agree"] == 10
    assert figures["rotation_median_deg"] < 1.0 and figures["rotation_max_deg"] < 1.5
    assert figures["centre_median"] < 0.015 and figures["centre_max"] < 0.025


def test_desk_output_is_what_prepare_colmap_writes_for_its_model(desk, tmp_path):
    output, photos = desk
    if not (output / "train.json").is_file():
        pytest.skip("test_desk_photos_match_the_colmap_model did not write the output")
    model = {path.name for path in (output / "colmap" / "sparse" / "0").iterdir()}
    assert {"cameras.bin", "images.bin", "points3D.bin"} <= model
    database = pycolmap.Database.open(str(output / "colmap" / "database.db"))
    assert (database.num_images(), database.num_cameras()) == (10, 1)  # photos of one size share a camera
    database.close()
    again = convert_colmap(output / "colmap" / "sparse" / "0", tmp_path / "again", image_path=photos)
    for name in ("train.json", "val.json"):
        ours, theirs = read_cameras_json(output / name), read_cameras_json(tmp_path / "again" / name)
        assert [r.image_path.name for r in ours] == [r.image_path.name for r in theirs]
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a.K, b.K)
            np.testing.assert_array_equal(a.T_pointcloud_camera, b.T_pointcloud_camera)
    assert (yaml.safe_load((output / "train_config.yaml").read_text())
            == yaml.safe_load((tmp_path / "again" / "train_config.yaml").read_text()))
    assert len(read_point_cloud(output / "point_cloud.parquet")) == again.num_points > 100


def test_a_second_run_reuses_every_stage_and_keeps_a_training_run(desk, capsys):
    output, photos = desk
    if not (output / "train.json").is_file():
        pytest.skip("test_desk_photos_match_the_colmap_model did not write the output")
    before = (output / "train.json").read_bytes()
    (output / "output").mkdir()
    (output / "output" / "scene_1000.parquet").write_text("a trained scene")
    assert run_tool("prepare_images", "--images", photos, "--output_dir", output, "--max_image_size", "400") == 0
    printed = capsys.readouterr().out
    assert printed.count("(reused)") == 3, printed
    assert (output / "train.json").read_bytes() == before
    assert (output / "output" / "scene_1000.parquet").read_text() == "a trained scene"
    assert not list(output.parent.glob(".out.*")), "a staging folder was left behind"


def test_raw_plush_photos_register_and_the_others_are_listed(tmp_path, capsys):
    photos = dataset_path("raw_plush") / "images"
    assert run_tool("prepare_images", "--images", photos, "--output_dir", tmp_path / "out",
                    "--max_image_size", "800") == 0
    printed = capsys.readouterr().out
    registered, total = _registered(printed)
    # Measured: 7 of 12 at 800 px (8 at 1,000 px and at full size, as the upstream COLMAP model).
    assert total == 12 and registered >= 6
    cameras = read_cameras_json(tmp_path / "out" / "train.json") + read_cameras_json(tmp_path / "out" / "val.json")
    assert len(cameras) == registered
    # Each photo not in the output is named: unregistered, or in a smaller model left out.
    named = set()
    for line in re.findall(r"(?:not registered \(\d+\)|are left out): (.*)", printed):
        named |= set(line.split(", "))
    assert named == {p.name for p in photos.glob("*.jpg")} - {r.image_path.name for r in cameras}


def test_beer_can_video_frames_match_the_model_of_its_frames(tmp_path, capsys):
    video = dataset_path("colmap_beer_can") / "video" / "Beer.mp4"
    assert run_tool("prepare_images", "--video", video, "--num_frames", "12", "--max_image_size", "600",
                    "--output_dir", tmp_path / "out") == 0
    printed = capsys.readouterr().out
    registered, total = _registered(printed)
    assert total == 12 and registered >= 6
    assert "one shared SIMPLE_RADIAL camera" in printed and "sequential" in printed
    figures = compare(tmp_path / "out", model_poses(video.parents[1] / "sparse" / "0"), video=True)
    # Measured: 8 of 12 registered, all agree; rotation median 0.48 deg, max 2.1; centre median 2.1 %, max 4.5 %.
    assert figures["agree"] == figures["cameras"] >= 6
    assert figures["rotation_median_deg"] < 1.0 and figures["rotation_max_deg"] < 3.0
    assert figures["centre_median"] < 0.03 and figures["centre_max"] < 0.06


def test_disconnected_scenes_keep_the_largest_model_and_name_the_others(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    groups = {"desk": sorted((dataset_path("colmap_desk") / "images").glob("*.jpg"))[:15:3],
              "bust": sorted((dataset_path("colmap_bronze_bust") / "images").iterdir())[:6]}
    for group, paths in groups.items():
        for path in paths:
            (photos / f"{group}_{path.name}").symlink_to(path)
    assert run_tool("prepare_images", "--images", photos, "--output_dir", tmp_path / "out",
                    "--max_image_size", "400") == 0
    printed = capsys.readouterr().out
    # Measured: the bust's model (5 of 6) kept, the desk's 5 photos left out as a second model.
    match = re.search(r"the mapper made (\d+) disconnected models: kept the largest; (\d+) images only in the "
                      r"others are left out: (.*)", printed)
    assert match and int(match.group(1)) >= 2, printed
    left_out = set(match.group(3).split(", "))
    assert len(left_out) == int(match.group(2)) >= 3
    kept = {r.image_path.name for r in read_cameras_json(tmp_path / "out" / "train.json")
            + read_cameras_json(tmp_path / "out" / "val.json")}
    (kept_group,) = {name.split("_")[0] for name in kept}  # one scene kept ...
    assert not any(name.startswith(kept_group) for name in left_out)  # ... the other left out
    registered, total = _registered(printed)
    assert total == 11 and registered == len(kept) >= len(left_out)
