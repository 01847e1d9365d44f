"""tools/prepare_images.py on bad input: one line naming the problem, exit 1, no traceback, nothing
written (no output folder, no staging folder left beside it)."""
import numpy as np
from PIL import Image

from conftest import dataset_path
from script_faults import assert_script_fails

SCRIPT = "tools/prepare_images.py"
SMALL = ("--max_image_size", "200")


def _photos(folder, count, size=(160, 120)):
    """`count` photos of the real plush scene, downscaled, in `folder`."""
    folder.mkdir()
    sources = sorted((dataset_path("raw_plush") / "images").glob("*.jpg"))[:count]
    for source in sources:
        with Image.open(source) as image:
            image.resize(size).save(folder / source.name, quality=90)
    return folder


def test_a_folder_without_images_is_refused(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "notes.txt").write_text("no photos here")
    assert_script_fails(SCRIPT, "--images", "photos", "--output_dir", "out", cwd=tmp_path,
                        names=("photos", "no image files"))


def test_an_unreadable_photo_is_named(tmp_path):
    photos = _photos(tmp_path / "photos", 3)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    assert_script_fails(SCRIPT, "--images", "photos", "--output_dir", "out", cwd=tmp_path,
                        names=("1 unreadable image file", "broken.jpg"))


def test_fewer_than_three_photos_are_refused(tmp_path):
    _photos(tmp_path / "photos", 2)
    assert_script_fails(SCRIPT, "--images", "photos", "--output_dir", "out", cwd=tmp_path,
                        names=("photos", "2 images", "at least 3"))


def test_a_video_ffmpeg_cannot_decode_is_refused(tmp_path):
    (tmp_path / "clip.mp4").write_text("not a video")
    assert_script_fails(SCRIPT, "--video", "clip.mp4", "--output_dir", "out", cwd=tmp_path,
                        names=("clip.mp4", "cannot decode the video"))


def test_a_missing_video_is_named(tmp_path):
    assert_script_fails(SCRIPT, "--video", "missing.mp4", "--output_dir", "out", cwd=tmp_path,
                        names=("missing.mp4", "not found"))


def test_photos_that_share_nothing_register_no_image(tmp_path):
    photos = tmp_path / "noise"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(photos / f"{index}.png")
    assert_script_fails(SCRIPT, "--images", "noise", "--output_dir", "new/out", *SMALL, cwd=tmp_path,
                        names=("0 of 3 images registered", "overlap"))


def test_an_output_folder_of_other_files_is_not_replaced(tmp_path):
    _photos(tmp_path / "photos", 3)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep me")
    assert_script_fails(SCRIPT, "--images", "photos", "--output_dir", "out", cwd=tmp_path,
                        names=("out", "holds other files"))


def test_single_camera_refuses_photos_of_several_sizes(tmp_path):
    photos = _photos(tmp_path / "photos", 3)
    with Image.open(photos / "image001.jpg") as image:
        image.resize((80, 60)).save(photos / "image001.jpg")
    assert_script_fails(SCRIPT, "--images", "photos", "--output_dir", "out", "--single_camera", cwd=tmp_path,
                        names=("--single_camera", "2 sizes", "80x60", "160x120"))


def test_frame_options_with_photos_are_refused_by_the_parser(tmp_path):
    _photos(tmp_path / "photos", 3)
    assert_script_fails(SCRIPT, "--images", "photos", "--output_dir", "out", "--fps", "2", cwd=tmp_path,
                        names=("--fps",), exit_code=2)
