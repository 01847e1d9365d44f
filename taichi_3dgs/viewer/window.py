"""The interactive window: a ti.GUI loop around a `Controller` (the only module with window code).

ti.GUI is used because it needs only X11 (no Vulkan, unlike GGUI) and so runs everywhere Taichi
does, including CPU-only machines and a virtual display (Xvfb). Every loop iteration processes
the pending input events, merges the visible objects, renders with the package's rasterizer
(forward only) and shows the image; there is no frame-rate cap, and the title shows the
measured frames per second.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from taichi_3dgs.atomic_io import write_text_atomic
from taichi_3dgs.viewer.controller import QUIT_KEY, SCREENSHOT_KEY, Controller
from taichi_3dgs.viewer.rendering import render_image, save_png, to_uint8
from taichi_3dgs.viewer.scene_objects import compose_objects

WINDOW_TITLE = "taichi_3dgs viewer"
_FPS_SMOOTHING = 0.9  # exponential moving average of the loop period, for a readable title


def run_window(controller: Controller, screenshot_dir: Path, title: str = WINDOW_TITLE) -> None:
    """Open the window and run until it is closed or Escape is pressed.

    Args:
        controller: view, objects and input handling; its `width` x `height` is the window size.
        screenshot_dir: where `c` writes `save_screenshot` files (the view at the moment of
            the key press and its camera/object poses); created with the first screenshot.
        title: window title; the mode and the frames per second are appended.

    Raises:
        RuntimeError: from Taichi when no display can be opened.
    """
    import taichi as ti

    gui = ti.GUI(title, res=(controller.width, controller.height))
    gui.fps_limit = None
    screenshot_dir = Path(screenshot_dir)
    last_cursor = None
    frame_time = None
    last_frame_end = time.perf_counter()
    while gui.running:
        for event in gui.get_events(ti.GUI.PRESS):
            if event.key == QUIT_KEY:
                gui.running = False
            elif event.key == SCREENSHOT_KEY:
                # Rendered now: later events of the same batch must not leak into it.
                save_screenshot(controller, screenshot_dir)
            else:
                controller.press(event.key)
        if not gui.running:
            break
        if gui.is_pressed(ti.GUI.LMB):
            cursor = gui.get_cursor_pos()
            if last_cursor is not None:
                controller.drag(cursor[0] - last_cursor[0], cursor[1] - last_cursor[1])
            last_cursor = cursor
        else:
            last_cursor = None

        image = render_controller_frame(controller)
        # ti.GUI images are indexed [x, y] with y = 0 at the bottom row.
        gui.set_image(np.ascontiguousarray(to_uint8(image).transpose(1, 0, 2)[:, ::-1]))
        mode = f"object {controller.selected}" if controller.selected else "camera"
        if frame_time is not None:
            gui.core.title = f"{title} | {mode} | {1.0 / max(frame_time, 1e-9):.1f} FPS"
        gui.show()
        now = time.perf_counter()
        elapsed, last_frame_end = now - last_frame_end, now
        frame_time = elapsed if frame_time is None else (
            _FPS_SMOOTHING * frame_time + (1.0 - _FPS_SMOOTHING) * elapsed)
    gui.close()


def save_screenshot(controller: Controller, folder: Path) -> Path:
    """Render the controller's current view and write `screenshot_NNNN.png` plus
    `screenshot_NNNN.json` (`Controller.snapshot()`) into `folder`, NNNN the first free number.

    Returns:
        The PNG path.
    """
    index = 0
    while (folder / f"screenshot_{index:04d}.png").exists():
        index += 1
    stem = folder / f"screenshot_{index:04d}"
    image = render_controller_frame(controller)
    save_png(stem.with_suffix(".png"), to_uint8(image))
    write_text_atomic(stem.with_suffix(".json"), json.dumps(controller.snapshot(), indent=1))
    print(f"screenshot: {stem.with_suffix('.png')}", flush=True)
    return stem.with_suffix(".png")


def render_controller_frame(controller: Controller) -> torch.Tensor:
    """[height, width, 3] float32 render of the visible objects from the controller's camera."""
    return render_image(compose_objects(controller.objects), controller.viewmat, controller.K,
                        controller.width, controller.height)
