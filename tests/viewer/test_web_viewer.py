"""The web viewer (`visualizer.py --web`): served on a free localhost port with the real trained
scene, opened in a real headless browser (Debian's chromium driven by Playwright), its frames
compared with our own offline render of the same camera; its camera conventions, the training
API and bad input.

The browser tests need the Debian package chromium (.ci/run installs it) and the Python package
playwright (the test extra, pyproject.toml; it drives the system chromium, no browser is downloaded): under
CI=true their absence fails the tests, elsewhere they skip with the reason.
"""
import io
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from conftest import REPO_ROOT, missing_prerequisite
from image_metrics_reference import reference_psnr
from PIL import Image
from scipy.spatial.transform import Rotation
from viewer_fixtures import trained_ply_path, write_camera_json

from taichi_3dgs.scene import read_scene
from taichi_3dgs.viewer.camera_paths import look_at, orbit_path, overview_camera
from taichi_3dgs.viewer.geometry import invert_rigid
from taichi_3dgs.viewer.rendering import render_image, render_scene_view
from taichi_3dgs.viewer.web import WebViewer
from taichi_3dgs.viewer.web_frames import colorize, viewer_view

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--use-gl=swiftshader", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
VIEWPORT = (1280, 720)
CAMERA_SIZE = (320, 240)
CROP = (slice(180, 540), slice(384, 896))  # central half-height, 40% width: clear of the side panel
REFERENCE_SCALE = 0.5  # the offline render is made at half the page's size (enough to tell the view)
MOVING_SIDE = 480  # the CPU's moving resolution (web.DEFAULT_MAX_SIDE); the resting view is refined to VIEWPORT
TIMEOUT_S = 60


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _visualizer(*args):
    return [sys.executable, str(REPO_ROOT / "visualizer.py"), *map(str, args)]


def _dataset_cameras(tmp_path):
    """Three cameras of an orbit about the scene (20 degrees apart, so the others' frustums are
    out of view of camera 0) with a centred principal point and square pixels."""
    scene = read_scene(trained_ply_path())
    T_world_camera, K, center, up = overview_camera(scene.means, *CAMERA_SIZE)
    poses = orbit_path(T_world_camera, center, up, 18)[[0, 1, 17]]
    return scene, poses, K, write_camera_json(tmp_path / "cameras.json", list(poses), K, *CAMERA_SIZE)


def _canvas_reference(scene, pose, K, canvas_size, scale):
    """Our offline render of what the page shows for dataset camera `pose`: the same vertical
    field of view, centred on the canvas, at `scale` times the canvas size."""
    width, height = round(canvas_size[0] * scale), round(canvas_size[1] * scale)
    focal = K[1, 1] * height / CAMERA_SIZE[1]
    canvas_K = np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])
    return render_image(scene, invert_rigid(pose), canvas_K, width, height).clamp(0, 1).cpu().numpy()


def _crop(image, crop, scale=1.0):
    rows, cols = crop
    return image[round(rows.start * scale):round(rows.stop * scale),
                 round(cols.start * scale):round(cols.stop * scale)]


class _Server:
    """`visualizer.py --web` in a subprocess; its output lines are collected by a thread."""

    def __init__(self, args):
        self.process = subprocess.Popen(_visualizer(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, cwd=REPO_ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines = queue.Queue()
        self.log = []
        self.url = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.log.append(line)
            self.lines.put(line)

    def wait_for_url(self):
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    pytest.fail(f"the web viewer exited with code {self.process.returncode}:\n"
                                f"{''.join(self.log)}")
                continue
            match = re.search(r"serving the web viewer at (http://\S+)", line)
            if match:
                self.url = match.group(1)
                return self.url
        pytest.fail(f"no URL printed within {TIMEOUT_S} s:\n{''.join(self.log)}")

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _require_browser():
    if not CHROMIUM.exists():
        missing_prerequisite(f"{CHROMIUM} not installed (Debian package chromium; .ci/run installs it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing_prerequisite("Python package playwright not installed (pip install -e '.[test]')")


@pytest.fixture(scope="module")
def page_session(tmp_path_factory):
    """(server, page, offline renders of dataset cameras 0 and 1 as the page shows them): the web
    viewer on the real scene with three dataset cameras, open in headless chromium at
    `VIEWPORT`."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    scene, poses, K, cameras_path = _dataset_cameras(tmp_path_factory.mktemp("web"))
    server = _Server(["--scene", trained_ply_path(), "--web", "--port", 0, "--cameras", cameras_path])
    try:  # the references are rendered while the server starts
        references = [_canvas_reference(scene, pose, K, VIEWPORT, REFERENCE_SCALE) for pose in poses[:2]]
        references += [_canvas_reference(scene, poses[0], K, VIEWPORT, scale) for scale in (1.0, MOVING_SIDE / VIEWPORT[0])]
        url = server.wait_for_url()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                 args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": VIEWPORT[0], "height": VIEWPORT[1]})
            page.goto(url)
            yield server, page, references
            browser.close()
    finally:
        server.kill()


def _screenshot(page):
    return np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"), dtype=np.float64) / 255.0


def _settled_frame(page, differs_from=None):
    """The page's view once a rendered frame shows (the centre is not blank, and differs from
    `differs_from` if given) and has stopped changing for two screenshots 0.7 s apart."""
    deadline = time.monotonic() + TIMEOUT_S
    previous = None
    while time.monotonic() < deadline:
        shot = _screenshot(page)
        centre = _crop(shot, CROP)
        new = differs_from is None or np.abs(centre - _crop(differs_from, CROP)).mean() > 0.02
        shown = centre.std() > 0.02 and new
        if shown and previous is not None and np.array_equal(shot, previous):
            return shot
        previous = shot if shown else None
        time.sleep(0.7)
    pytest.fail(f"no settled frame within {TIMEOUT_S} s")


def test_first_frame_is_dataset_camera_0_rendered_by_our_rasterizer(page_session):
    _, page, references = page_session
    shot = _settled_frame(page)
    assert _crop(shot, CROP).std() > 0.05  # not blank: the scene, not one colour
    expected, other = (_crop(reference, CROP, REFERENCE_SCALE) for reference in references[:2])
    shown = np.asarray(Image.fromarray((_crop(shot, CROP) * 255).round().astype(np.uint8)).resize(
        expected.shape[1::-1], Image.BILINEAR), dtype=np.float64) / 255.0
    assert reference_psnr(shown, expected) >= 20.0
    # and not just any view of the scene: camera 1, 20 degrees around the orbit, matches worse
    assert reference_psnr(shown, other) < reference_psnr(shown, expected) - 3.0


def _frame_size(page):
    """(width, height) of the last frame, from the panel's "frame time" text ("12 ms, W x H px")."""
    values = page.evaluate("() => Array.from(document.querySelectorAll('input')).map(input => input.value)")
    [size] = [re.fullmatch(r"\d+ ms, (\d+) x (\d+) px", value) for value in values
              if re.fullmatch(r"\d+ ms, (\d+) x (\d+) px", value)]
    return int(size.group(1)), int(size.group(2))


def test_a_resting_view_is_rendered_at_the_canvas_size_and_a_moving_one_coarser(page_session):
    _, page, references = page_session
    shot = _settled_frame(page)
    assert _frame_size(page) == VIEWPORT
    # the page shows the canvas-size frame, not a 480 px frame stretched to it
    sharp, stretched = references[2], np.asarray(Image.fromarray((references[3] * 255).round().astype(np.uint8))
                                                 .resize(VIEWPORT, Image.BILINEAR), dtype=np.float64) / 255.0
    assert reference_psnr(_crop(shot, CROP), _crop(sharp, CROP)) >= 20.0
    assert reference_psnr(_crop(shot, CROP), _crop(sharp, CROP)) > reference_psnr(_crop(shot, CROP),
                                                                                   _crop(stretched, CROP)) + 1.0
    sizes = []
    page.mouse.move(640, 360)
    page.mouse.down()
    for step in range(1, 16):
        page.mouse.move(640 - 4 * step, 360)
        sizes.append(_frame_size(page))
        time.sleep(0.1)
    page.mouse.up()
    assert (MOVING_SIDE, round(MOVING_SIDE * VIEWPORT[1] / VIEWPORT[0])) in sizes
    # refined again once the drag stopped (to the canvas' size in device pixels, which viser
    # lowers while the browser draws slowly, so at least larger than while moving)
    deadline = time.monotonic() + TIMEOUT_S
    while _frame_size(page)[0] <= MOVING_SIDE and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _frame_size(page)[0] > MOVING_SIDE


def test_mouse_drag_orbits_and_the_new_view_is_rendered(page_session):
    _, page, _ = page_session
    before = _settled_frame(page)
    page.mouse.move(640, 360)
    page.mouse.down()
    page.mouse.move(760, 380, steps=12)
    page.mouse.up()
    after = _settled_frame(page, differs_from=before)
    assert _crop(after, CROP).std() > 0.05
    assert reference_psnr(_crop(after, CROP), _crop(before, CROP)) < 20.0


def test_ctrl_c_stops_the_server_with_exit_code_130(page_session):
    server, _, _ = page_session
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(timeout=TIMEOUT_S) == 130
    assert "visualizer.py: interrupted" in "".join(server.log)
    assert not _listening(urlparse(server.url).port)


def test_port_in_use_is_an_error_naming_the_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(_visualizer("--scene", trained_ply_path(), "--web", "--port", port),
                                capture_output=True, text=True, cwd=REPO_ROOT, timeout=TIMEOUT_S)
    assert result.returncode == 1
    assert f"--port {port}: the port is not available on 127.0.0.1" in result.stderr
    assert "serving" not in result.stdout


def test_a_host_this_machine_does_not_have_is_named_not_blamed_on_the_port():
    """Issue 27 item 7: binding 192.0.2.1 (TEST-NET-1, no machine's address) fails with
    EADDRNOTAVAIL, which said 'port in use'."""
    result = subprocess.run(_visualizer("--scene", trained_ply_path(), "--web", "--host", "192.0.2.1", "--port",
                                        _free_port()), capture_output=True, text=True, cwd=REPO_ROOT, timeout=TIMEOUT_S)
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("visualizer.py: error: --host 192.0.2.1: this machine has no such address"), error
    assert "port" not in error
    assert "serving" not in result.stdout


def test_bad_scene_is_named_and_nothing_is_served(tmp_path):
    broken = tmp_path / "broken.ply"
    broken.write_bytes(b"this is not a PLY file\n")
    port = _free_port()
    result = subprocess.run(_visualizer("--scene", broken, "--web", "--port", port),
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=TIMEOUT_S)
    assert result.returncode == 1
    assert str(broken) in result.stderr
    assert "serving" not in result.stdout
    assert not _listening(port)


def test_viewer_camera_becomes_our_viewmat_and_a_centred_k_spanning_the_canvas():
    eye, target, up = np.array([1.0, -2.0, 3.0]), np.array([0.2, 0.1, -0.4]), np.array([0.1, -1.0, 0.2])
    pose = look_at(eye, target, up)
    x, y, z, w = Rotation.from_matrix(pose[:3, :3]).as_quat()
    fov_y, aspect = np.radians(50.0), 16 / 9
    viewmat, K, width, height = viewer_view(np.array([w, x, y, z]), eye, fov_y, aspect, 640)
    assert (width, height) == (640, 360)
    np.testing.assert_allclose(viewmat, invert_rigid(pose), atol=1e-12)
    # a point straight ahead on the top edge of the vertical field of view, and one on the left
    # edge of the horizontal field of view (tan(fov_x / 2) = aspect tan(fov_y / 2))
    right, down, forward = pose[:3, 0], pose[:3, 1], pose[:3, 2]
    top = eye + 2.0 * forward - 2.0 * np.tan(fov_y / 2) * down
    left = eye + 2.0 * forward - 2.0 * aspect * np.tan(fov_y / 2) * right
    for point, pixel in ((top, (320.0, 0.0)), (left, (0.0, 180.0)), (target, (320.0, 180.0))):
        camera_point = viewmat[:3, :3] @ point + viewmat[:3, 3]
        np.testing.assert_allclose((K @ camera_point)[:2] / camera_point[2], pixel, atol=1e-9)
    assert viewer_view(np.array([w, x, y, z]), eye, fov_y, 0.5, 300)[2:] == (150, 300)


def test_depth_mode_shows_nearer_surfaces_brighter_and_empty_pixels_black():
    scene = read_scene(trained_ply_path())
    T_world_camera, K, _, _ = overview_camera(scene.means, 96, 64)
    view = render_scene_view(scene, invert_rigid(T_world_camera), K, 96, 64)
    grey = colorize(view, "depth")[..., 0].astype(int)
    solid = (view.alpha > 0.5).numpy()
    assert 0.2 < solid.mean() < 1.0  # both kinds of pixel are tested
    assert (grey[~solid] == 0).all()
    by_depth = np.argsort(view.depth.numpy()[solid], kind="stable")
    assert (np.diff(grey[solid][by_depth]) <= 0).all()
    assert grey[solid].max() == 255 and grey[solid].min() <= 60
    np.testing.assert_array_equal(colorize(view, "alpha")[..., 1], np.round(view.alpha.numpy() * 255))


def test_update_blocks_while_paused_until_resumed():
    with WebViewer(port=0) as viewer:
        viewer.update(1, loss=0.5, num_gaussians=100, steps_per_second=10.0)  # not paused: returns
        viewer.paused = True
        resumed = threading.Event()

        def resume():
            time.sleep(0.3)
            resumed.set()
            viewer.paused = False

        threading.Thread(target=resume).start()
        viewer.update(2)
        assert resumed.is_set()


