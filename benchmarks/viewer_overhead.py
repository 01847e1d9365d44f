"""Benchmark what watching a training in the browser costs (not a test).

Trains the procedural demo scene (tools/make_demo_scene.py, generated into a temporary folder) with
`gaussian_point_train.py` for --steps steps twice: without `--viewer`, and with `--viewer` and a
headless chromium (Playwright, Debian's /usr/bin/chromium) showing the page at a fixed camera the
whole time, so every scene re-render the viewer allows is made and sent. Throughput comes from the
TensorBoard wall times of the steps after --warmup (start-up, kernel compilation and the page's
first frames do not count). Prints steps/s of both runs and the slowdown.

    python benchmarks/viewer_overhead.py --steps 300 --warmup 50
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from taichi_3dgs.data.demo_scene import DemoSceneSpec, make_demo_scene
from taichi_3dgs.training.config import config_to_yaml, parse_train_config

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--use-gl=swiftshader", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]


def steps_per_second(log_dir: Path, warmup: int) -> float:
    """Steps per second between the end of step `warmup` and the last logged step."""
    events = EventAccumulator(str(log_dir)).Reload().Scalars("train/loss")
    timed = [(event.step, event.wall_time) for event in events if event.step >= warmup]
    (first_step, first_time), (last_step, last_time) = timed[0], timed[-1]
    return (last_step - first_step) / (last_time - first_time)


def run(folder: Path, scene: Path, steps: int, watched: bool) -> Path:
    """Train `scene` for `steps` steps into `folder`; with `watched`, under a browser on --viewer."""
    folder.mkdir(parents=True)
    config = folder / "run.yaml"
    config.write_text(config_to_yaml(parse_train_config({
        "train-dataset-json-path": str(scene / "train.json"), "pointcloud-parquet-path": str(scene / "point_cloud.parquet"),
        "num-iterations": steps, "val-interval": steps, "checkpoint-interval": steps,
        "output-model-dir": str(folder / "out"), "summary-writer-log-dir": str(folder / "logs"),
        "logging": {"log-loss-interval": 1, "progress-bar": False, "log-histograms": False}})))
    command = [sys.executable, str(REPO_ROOT / "gaussian_point_train.py"), "--train_config", str(config)]
    if not watched:
        subprocess.run(command, check=True, capture_output=True)
        return folder / "logs"
    from playwright.sync_api import sync_playwright

    process = subprocess.Popen(command + ["--viewer", "--viewer_port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = next(match.group(1) for line in process.stdout
               if (match := re.search(r"watch the training at (http://\S+)", line)))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        browser.new_page(viewport={"width": 1280, "height": 720}).goto(url)
        for _ in process.stdout:  # until training ends
            pass
        browser.close()
    if process.wait() != 0:
        raise SystemExit(f"the watched run failed with exit code {process.returncode}")
    return folder / "logs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        scene = make_demo_scene(tmp / "scene", DemoSceneSpec())
        plain = steps_per_second(run(tmp / "plain", scene, args.steps, watched=False), args.warmup)
        watched = steps_per_second(run(tmp / "watched", scene, args.steps, watched=True), args.warmup)
    print(f"demo scene, {args.steps} steps (timed after {args.warmup}): without viewer {plain:.2f} steps/s, "
          f"watched in the browser {watched:.2f} steps/s, slowdown {100 * (1 - watched / plain):.1f} %")


if __name__ == "__main__":
    main()
