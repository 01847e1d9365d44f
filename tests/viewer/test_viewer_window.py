"""The viewer window on a virtual display: Xvfb runs it, xdotool types keys, and both the X
screen (Xvfb's frame buffer file) and the viewer's own screenshots are checked.

Needs the Debian packages xvfb and xdotool (.ci/run installs them): under CI=true their absence
fails the test, elsewhere it skips with the reason.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO_ROOT, missing_prerequisite
from PIL import Image
from viewer_fixtures import trained_ply_path

from taichi_3dgs.scene import read_scene
from taichi_3dgs.viewer.app import TRANSLATION_STEP_FRACTION
from taichi_3dgs.viewer.camera_paths import scene_bounds

WIDTH, HEIGHT = 160, 120
FORWARD_PRESSES = 5
TIMEOUT_S = 120


def _require_tools():
    missing = [tool for tool in ("Xvfb", "xdotool") if shutil.which(tool) is None]
    if missing:
        missing_prerequisite(f"{', '.join(missing)} not installed (Debian packages xvfb, xdotool; "
                             ".ci/run installs them)")


def _wait_for(condition, what, process=None, log_path=None):
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            pytest.fail(f"the viewer exited (code {process.returncode}) while waiting for {what}: "
                        f"{log_path.read_text() if log_path else ''}")
        time.sleep(0.2)
    pytest.fail(f"timed out after {TIMEOUT_S} s waiting for {what}")


def _read_xwd(path):
    """The [H, W, 3] uint8 RGB screen of an Xvfb -fbdir frame buffer file (XWD, 32 bpp, LSB)."""
    data = path.read_bytes()
    header = struct.unpack(">25I", data[:100])
    header_size, width, height = header[0], header[4], header[5]
    bits_per_pixel, bytes_per_line, ncolors = header[11], header[12], header[19]
    assert bits_per_pixel == 32 and header[7] == 0  # 32-bit pixels, least significant byte first
    start = header_size + 12 * ncolors
    pixels = np.frombuffer(data, np.uint8, bytes_per_line * height, start).reshape(height, bytes_per_line)
    return pixels[:, :4 * width].reshape(height, width, 4)[..., [2, 1, 0]]


@pytest.fixture
def display(tmp_path):
    """A virtual X display; yields (DISPLAY value, frame buffer file)."""
    _require_tools()
    fbdir = tmp_path / "framebuffer"
    fbdir.mkdir()
    read_end, write_end = os.pipe()
    server_log = tmp_path / "xvfb.log"
    with open(server_log, "w") as log:  # -displayfd: Xvfb picks a free display and reports it
        server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "320x240x24",
                                   "-fbdir", str(fbdir), "-nolisten", "tcp"],
                                  pass_fds=(write_end,), stdout=log, stderr=subprocess.STDOUT)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        number = pipe.readline().strip()
    try:
        assert number, f"Xvfb did not report a display number: {server_log.read_text()}"
        yield f":{number}", fbdir / "Xvfb_screen0"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _window_region(env, window):
    out = subprocess.run(["xdotool", "getwindowgeometry", "--shell", window], env=env,
                         capture_output=True, text=True, check=True).stdout
    geometry = dict(line.split("=") for line in out.split())
    x, y = int(geometry["X"]), int(geometry["Y"])
    return slice(y, y + int(geometry["HEIGHT"])), slice(x, x + int(geometry["WIDTH"]))


def _not_blank(image):
    return (image.max(axis=2) > 10).mean() > 0.2 and image.std() > 10


def test_viewer_window_shows_the_scene_and_w_moves_the_camera_forward(display, tmp_path):
    display_name, framebuffer = display
    env = {**os.environ, "DISPLAY": display_name}
    log = open(tmp_path / "viewer.log", "w")  # a file, not a pipe nobody drains while it runs
    viewer = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "visualizer.py"), "--parquet_path_list", str(trained_ply_path()),
         "--width", str(WIDTH), "--height", str(HEIGHT), "--screenshot_dir", "shots"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def find_window():  # the title gets its FPS once the first frame is shown
            found = subprocess.run(["xdotool", "search", "--name", "taichi_3dgs viewer .* FPS"],
                                   env=env, capture_output=True, text=True).stdout.split()
            return found[0] if found else None

        window = _wait_for(find_window, "the viewer window", viewer, tmp_path / "viewer.log")
        rows, cols = _window_region(env, window)
        before = _read_xwd(framebuffer)[rows, cols]

        # Keys go through XTEST to the focused window: `key --window` (XSendEvent) fails when the
        # X server reports no focus window ("XGetInputFocus returned the focused window of 1"),
        # which happens on a bare Xvfb without a window manager.
        subprocess.run(["xdotool", "windowfocus", "--sync", window], env=env, capture_output=True,
                       check=True, timeout=30)

        def key(*names):
            # One key per call, so a retry after a failed send repeats nothing that was delivered.
            for attempt in range(5):
                sent = subprocess.run(["xdotool", "key", *names], env=env, capture_output=True, text=True)
                if sent.returncode == 0:
                    return
                time.sleep(0.5)
            pytest.fail(f"xdotool key {' '.join(names)} failed 5 times: {sent.stderr}")

        for name in ["c"] + ["w"] * FORWARD_PRESSES + ["c"]:
            key(name)
        shots = tmp_path / "shots"
        _wait_for(lambda: (shots / "screenshot_0001.json").exists(), "the second screenshot", viewer,
                  tmp_path / "viewer.log")
        time.sleep(1.0)  # let the frame after the screenshot reach the screen
        after = _read_xwd(framebuffer)[rows, cols]
        key("Escape")
        assert viewer.wait(timeout=TIMEOUT_S) == 0, (tmp_path / "viewer.log").read_text()
    finally:
        if viewer.poll() is None:
            viewer.kill()
            viewer.wait()
        log.close()

    assert before.shape == (HEIGHT, WIDTH, 3)
    assert _not_blank(before) and _not_blank(after)
    assert np.abs(before.astype(int) - after).mean() > 2  # the screen changed
    first, second = (np.asarray(Image.open(shots / f"screenshot_000{i}.png")) for i in range(2))
    assert _not_blank(first) and np.abs(first.astype(int) - second).mean() > 2
    poses = [np.array(json.loads((shots / f"screenshot_000{i}.json").read_text())["T_world_camera"])
             for i in range(2)]
    _, radius = scene_bounds(read_scene(trained_ply_path()).means)
    expected_move = FORWARD_PRESSES * TRANSLATION_STEP_FRACTION * radius * poses[0][:3, 2]
    np.testing.assert_allclose(poses[1][:3, 3] - poses[0][:3, 3], expected_move, rtol=1e-6)
