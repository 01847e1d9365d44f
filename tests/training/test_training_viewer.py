"""gaussian_point_train.py --viewer: the training served live as the web viewer's page, watched in
a real headless browser (Debian's chromium driven by Playwright)."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT, missing_prerequisite
from test_trainer import demo_config

from taichi_3dgs.data.demo_scene import DemoSceneSpec, make_demo_scene
from taichi_3dgs.training.config import config_to_yaml

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--use-gl=swiftshader", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
TINY = DemoSceneSpec(width=64, height=64, num_views=8, num_points=500)
TIMEOUT_S = 120


def _config(tmp_path: Path, num_iterations: int) -> Path:
    scene = make_demo_scene(tmp_path / "scene", TINY)
    path = tmp_path / "run.yaml"
    path.write_text(config_to_yaml(demo_config(scene, tmp_path / "out", **{
        "num-iterations": num_iterations, "val-interval": num_iterations, "checkpoint-interval": num_iterations})))
    return path


def _train(config: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO_ROOT / "gaussian_point_train.py"), "--train_config",
                             str(config), "--logging.progress-bar", "false", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=config.parent,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _field(page, label: str) -> str:
    """The value of the Training panel's text field `label`."""
    return page.locator(f"xpath=//*[normalize-space(text())='{label}']/following::input[1]").input_value()


def _step(page) -> int:
    text = _field(page, "step").replace(",", "")
    return int(text) if text else -1


def _wait_for_step_above(page, step: int) -> int:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        current = _step(page)
        if current > step:
            return current
        time.sleep(0.5)
    pytest.fail(f"the page's step counter stayed at {_step(page)} (expected > {step})")


def _serving_url(run: subprocess.Popen, pattern: str) -> str:
    log = []
    for line in run.stdout:
        log.append(line)
        match = re.search(pattern, line)
        if match:
            return match.group(1)
    pytest.fail(f"no line matching {pattern!r}:\n{''.join(log)}")


def _playwright():
    """playwright's sync_playwright, after checking that it and Chromium are installed."""
    if not CHROMIUM.exists():
        missing_prerequisite(f"{CHROMIUM} not installed (Debian package chromium; .ci/run installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_prerequisite("Python package playwright not installed (pip install -e '.[test]')")
    return sync_playwright


def test_the_page_shows_the_step_counter_advancing_and_pause_holds_it(tmp_path):
    sync_playwright = _playwright()
    run = _train(_config(tmp_path, 100_000), "--viewer", "--viewer_port", "0")
    try:
        url = _serving_url(run, r"watch the training at (http://\S+)")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(url)
            first = _wait_for_step_above(page, 0)
            second = _wait_for_step_above(page, first)
            assert int(_field(page, "Gaussians").replace(",", "")) > 0
            page.get_by_role("button", name="pause").click()
            time.sleep(2.0)  # a step under way finishes, then update() holds the loop
            held = _step(page)
            time.sleep(3.0)
            assert _step(page) == held > second
            page.get_by_role("button", name="resume").click()
            _wait_for_step_above(page, held)
            page.get_by_role("button", name="pause").click()  # Ctrl-C below while paused still stops
            time.sleep(1.0)
            browser.close()
    finally:
        run.send_signal(2)
        assert run.wait(60) == 130  # Ctrl-C: checkpoint saved, server stopped


def test_the_page_goes_on_showing_the_final_scene_until_ctrl_c(tmp_path):
    """Issue 25: after the last step the page still answers with the final step; Ctrl-C then ends
    the command with exit code 0 (training was complete)."""
    sync_playwright = _playwright()
    run = _train(_config(tmp_path, 3), "--viewer", "--viewer_port", "0")
    try:
        url = _serving_url(run, r"training done: serving the final scene at (http://\S+) until Ctrl-C")
        assert (tmp_path / "out" / "final_scene.parquet").exists()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 640, "height": 360})
            page.goto(url)
            assert _wait_for_step_above(page, 2) == 3
            browser.close()
        assert run.poll() is None  # still serving
    finally:
        run.send_signal(2)
        output, _ = run.communicate(timeout=60)
    assert run.returncode == 0 and "stopped serving" in output, output


def test_viewer_exit_when_done_ends_with_the_training(tmp_path):
    run = _train(_config(tmp_path, 2), "--viewer", "--viewer_port", "0", "--viewer_exit_when_done")
    output, _ = run.communicate(timeout=300)
    assert run.returncode == 0, output
    assert "watch the training at" in output and "serving the final scene" not in output


def test_a_viewer_port_in_use_is_refused_before_anything_is_written(tmp_path):
    config = _config(tmp_path, 2)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        run = _train(config, "--viewer", "--viewer_port", str(port))
        output, _ = run.communicate(timeout=300)
    assert run.returncode == 1, output
    assert f"--viewer_port {port}: the port is not available on 127.0.0.1" in output, output
    assert "choose another --viewer_port" in output and "Traceback" not in output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("host, said", [("no-such-host.invalid", "cannot resolve this address"),
                                        ("192.0.2.1", "this machine has no such address")])  # TEST-NET-1
def test_a_viewer_host_that_cannot_serve_is_named_as_the_trainers_option(tmp_path, host, said):
    """Issue 27 item 8: the trainer's options are --viewer_host / --viewer_port, not --host / --port."""
    run = _train(_config(tmp_path, 2), "--viewer", "--viewer_host", host)
    output, _ = run.communicate(timeout=300)
    assert run.returncode == 1, output
    assert f"--viewer_host {host}: {said}" in output and "Traceback" not in output, output
    assert not (tmp_path / "out").exists()
