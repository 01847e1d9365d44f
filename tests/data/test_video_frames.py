"""taichi_3dgs.data.video_frames: the sharpness measure and the frame kept from each window."""
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image, ImageFilter
from scipy import ndimage

from taichi_3dgs.data.video_frames import extract_sharpest_frames, laplacian_variance

SHARP = (1, 5, 6)


def test_laplacian_variance_equals_scipy_on_the_interior():
    grey = np.random.default_rng(0).random((40, 50)) * 255
    reference = ndimage.laplace(grey.astype(np.float32))[1:-1, 1:-1].var()
    assert laplacian_variance(grey) == pytest.approx(reference, rel=1e-5)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """9 frames at 6 fps of one textured picture, sharp at SHARP and blurred elsewhere."""
    rng = np.random.default_rng(1)
    picture = Image.fromarray(np.kron(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), np.ones((8, 8, 1),
                                                                                             dtype=np.uint8)))
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    writer = imageio_ffmpeg.write_frames(str(path), picture.size, fps=6, quality=10)
    writer.send(None)
    for index in range(9):
        frame = picture if index in SHARP else picture.filter(ImageFilter.GaussianBlur(3 + index % 3))
        writer.send(np.ascontiguousarray(np.asarray(frame)))
    writer.close()
    return path


@pytest.mark.parametrize("choice", [{"fps": 2.0}, {"num_frames": 3}])
def test_the_sharpest_frame_of_each_window_is_kept(clip, tmp_path, choice):
    frames = extract_sharpest_frames(clip, tmp_path / "frames", **choice)
    assert frames.window == 3 and frames.num_decoded == 9
    assert [path.name for path in frames.paths] == [f"frame_{index:06d}.jpg" for index in SHARP]
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [p.name for p in frames.paths]
