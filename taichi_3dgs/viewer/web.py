"""The web viewer: trained scenes rendered by the package's rasterizer and streamed to a browser.

The page is served with viser (https://viser.studio), as gsplat's nerfview and nerfstudio do: the
browser owns an orbit camera (drag to orbit, right-drag or shift-drag to pan, wheel to zoom) and
sends its pose on every change; the server renders that view with `render_scene_view` and sends the
frame back as a JPEG that the page shows as its background. The Gaussians never leave the server,
so the page works over an SSH tunnel to a headless GPU machine. Frames are progressive
(`taichi_3dgs.viewer.refinement`, as gsplat's nerfview): a changing view is rendered at the "moving"
resolution, and once it rests, once more at the "still" one, by default the canvas' own size, so
the browser does not stretch a small frame.

Cameras: the browser's camera becomes ours in `web_frames` (its conventions there). The page's
control panel (its folders, frustums and gizmos) is built in `web_gui`.

Threads. viser calls the GUI and camera callbacks on its own threads; they only record what
changed. All rendering (Taichi and torch) happens in the one thread that calls
`WebViewer.serve_forever` or `WebViewer.update`, so Taichi is never entered from two threads.

Only this module and its helpers `web_frames` and `web_gui` import viser (optional at package
import: `taichi_3dgs.viewer` does not import them).
"""
from __future__ import annotations

import math
import os
import threading
import time
from typing import Callable

import numpy as np
import torch
import viser
import viser.transforms as vtf

from taichi_3dgs.backend import torch_device
from taichi_3dgs.cli import DEFAULT_WEB_HOST, DEFAULT_WEB_PORT, check_port_free
from taichi_3dgs.data.cameras import CameraRecord, read_cameras_json
from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.viewer.camera_paths import overview_camera, scene_frame
from taichi_3dgs.viewer.refinement import RefinementSchedule
from taichi_3dgs.viewer.rendering import render_scene_view
from taichi_3dgs.viewer.scene_objects import SceneObject, compose_objects, load_scene_objects
from taichi_3dgs.viewer.web_frames import colorize, vertical_fov, viewer_view
from taichi_3dgs.viewer.web_gui import (MAX_SIDE_RANGE, MIN_NEAR_PLANE, build_camera_gui, build_object_gui,
                                        build_training_gui, build_view_gui, show_training_status)

DEFAULT_MAX_SIDE = {"cuda": 1280, "cpu": 480}
"""Initial resolution of frames while the view changes (the long side of the rendered frame in
pixels; the GUI's "moving" slider) by the torch device type of the Taichi backend. On the 2-core
CPU machine (busy with other work) a frame of 480 px took 0.7-1.0 s for the 9,080-Gaussian
3dgs_trained_ply scene and the 111,785-Gaussian garden; no GPU was measured yet (BENCHMARKS.md),
1280 px assumes one."""

JPEG_QUALITY = 90
"""Frames travel as JPEG: at this quality the two scenes above at 480 px took 5.5-6x fewer bytes
than PNG, at 42-50 dB PSNR against the exact 8-bit frame."""

TRAINING_RENDER_FRACTION = 0.1
"""`WebViewer.update` re-renders for a changed scene only so often that these renders take at most
this fraction of the wall time (a camera change is rendered at once)."""

NOMINAL_CANVAS = (1280, 720)
"""Canvas size (pixels) assumed for the start view of tabs not yet connected (viser's initial
camera); each tab is then moved to the start view for its own canvas."""

_POLL_S = 0.1  # how often a blocked serve_forever / paused update looks at the stop flag


class WebViewer:
    """A viser server that shows scenes, rendered by our rasterizer, in the browser.

    Construct it to start the server (`url` is where the page is); it stops on `stop()` or on
    leaving a `with` block. Every browser tab is a client with its own camera; the page's
    controls (render resolution, SH degree, background, near plane, render mode, dataset
    cameras, objects) are shared by all tabs.

    Viewing trained scenes (`visualizer.py --web`):

        with WebViewer(load_scene_objects(paths, torch_device()), cameras) as viewer:
            print(viewer.url)
            viewer.serve_forever()          # renders until Ctrl-C (KeyboardInterrupt) or stop()

    Watching training (the trainer's loop; the pause button blocks it inside `update`):

        viewer = WebViewer(cameras=train_cameras, port=8080)
        viewer.set_scene(model.scene)       # once, and again whenever the tensors are replaced
        for step in ...:
            ...optimizer step...
            viewer.update(step, loss=loss.item(), num_gaussians=n, steps_per_second=rate)
        viewer.stop()

    `update` renders in the caller's thread: at once for a client whose camera moved, and for a
    changed scene only so often that rendering takes at most `render_fraction` of the wall time,
    at the moving resolution only: training does not wait for a canvas-size frame. While the
    page's pause button is down, `update` keeps serving camera changes, refines the resting view
    as `serve_forever` does, and returns only on resume or `stop()`. `paused` reads (and sets)
    that state.

    Args:
        objects: scenes placed in the world (`load_scene_objects`); each gets a visible checkbox,
            a move gizmo (translate/rotate about its pivot) and a reset button. May be empty when
            `set_scene` provides the scene.
        cameras: dataset cameras: a "go to camera k" control and their frustums. With cameras a
            new tab starts at camera 0, otherwise at the `overview_camera` of the Gaussians.
        host, port: where to listen (port 0: any free port; `port` then tells which).
        max_side: initial moving resolution, the long side in pixels of frames while a view
            changes (default: `DEFAULT_MAX_SIDE` for the device of `backend.torch_device()`); a
            resting view is refined to the canvas' size (the "still" slider).
        render_fraction: see above (`TRAINING_RENDER_FRACTION`).

    Raises:
        ValueError: the port is in use or out of range, the host cannot be resolved
            (`check_port_free`), or viser ended up on another port (taken meanwhile).
    """

    def __init__(self, objects: list[SceneObject] | None = None, cameras: list[CameraRecord] | None = None,
                 host: str = DEFAULT_WEB_HOST, port: int = DEFAULT_WEB_PORT, max_side: int | None = None,
                 render_fraction: float = TRAINING_RENDER_FRACTION) -> None:
        check_port_free(host, port)
        if max_side is None:
            max_side = DEFAULT_MAX_SIDE["cuda" if torch_device().type == "cuda" else "cpu"]
        if not MAX_SIDE_RANGE[0] <= max_side <= MAX_SIDE_RANGE[1]:
            raise ValueError(f"max_side: expected {MAX_SIDE_RANGE[0]}..{MAX_SIDE_RANGE[1]} pixels, "
                             f"got {max_side}")
        self.objects = list(objects or [])
        self.cameras = list(cameras or [])
        self.render_fraction = render_fraction
        self._live_scene: GaussianScene | Callable[[], GaussianScene] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._pending: set[int] = set()  # client ids whose frame is out of date
        self._refinements = RefinementSchedule()  # client ids owed a full-resolution frame
        self._clients: dict[int, viser.ClientHandle] = {}
        self._next_scene_render = 0.0
        self._training_gui: dict[str, viser.GuiInputHandle] | None = None
        self._paused = False
        self._released = False  # `release`: update no longer waits while paused

        self._server = viser.ViserServer(host=host, port=port, label="taichi_3dgs", verbose=False)
        if port != 0 and self._server.get_port() != port:
            taken = self._server.get_port()
            self._server.stop()
            raise ValueError(f"port {port} on {host} was taken while the viewer started (viser moved "
                             f"to {taken}); choose another --port")
        self.host, self.port = host, self._server.get_port()
        try:
            self._server.gui.configure_theme(show_share_button=False)
            self._set_scene_frame()
            self._gui = build_view_gui(self._server.gui, self.objects, max_side, self._request_render)
            if self.cameras:
                build_camera_gui(self._server, self.cameras, self._radius, self._go_to_camera)
            for index, obj in enumerate(self.objects):
                build_object_gui(self._server, index, obj, self._radius, self._request_render)
        except BaseException:
            self._server.stop()
            raise
        self._server.on_client_connect(self._on_connect)
        self._server.on_client_disconnect(self._on_disconnect)

    # -- public API -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """http://host:port of the page (localhost for a wildcard host)."""
        host = "localhost" if self.host in ("", "0.0.0.0", "::") else self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def paused(self) -> bool:
        """True while the page's pause button is down (training waits in `update`)."""
        return self._paused

    @paused.setter
    def paused(self, value: bool) -> None:
        self._paused = bool(value)
        if self._training_gui is not None:
            self._training_gui["pause"].label = "resume" if self._paused else "pause"
        self._wake.set()

    def set_scene(self, scene: GaussianScene | Callable[[], GaussianScene] | None) -> None:
        """Show `scene` (world frame, on the Taichi device) instead of the objects; None shows the
        objects again. The scene is not copied: every frame renders its tensors as they are then.
        A callable is called for each frame (a trainer passes one that builds the scene from its
        live parameters, which densification replaces)."""
        self._live_scene = scene
        if scene is not None and not self.objects:
            self._set_scene_frame()
        self._request_render()

    def update(self, step: int, loss: float | None = None, num_gaussians: int | None = None,
               steps_per_second: float | None = None) -> None:
        """Report training progress, show it on the page and render what is owed (class
        docstring); blocks while paused.

        Args:
            step: training step (iteration) just done.
            loss: its loss, or None.
            num_gaussians: current number of Gaussians, or None.
            steps_per_second: current training speed, or None.
        """
        if self._training_gui is None:  # the training panel appears with the first update
            self._training_gui = build_training_gui(self._server.gui, self._paused,
                                                    lambda: setattr(self, "paused", not self._paused))
        show_training_status(self._training_gui, step, loss, num_gaussians, steps_per_second)
        start = time.perf_counter()
        if start >= self._next_scene_render:
            self._request_render()
        if self.render_pending(refine=False):  # camera moves count against the budget too
            spent = time.perf_counter() - start
            budget_end = start + spent / max(self.render_fraction, 1e-6)
            self._next_scene_render = max(self._next_scene_render, budget_end)
        while self._paused and not self._released and not self._stopped.is_set():
            self.render_pending(timeout=_POLL_S)

    def release(self) -> None:
        """Training is stopping (Ctrl-C): a paused `update` returns within `_POLL_S` seconds, and
        later ones do not wait. Only sets a flag, so a signal handler may call it."""
        self._released = True

    def render_pending(self, timeout: float = 0.0, refine: bool = True) -> int:
        """Render and send a frame to every client whose view is out of date (at the moving
        resolution) or, with `refine`, whose resting view is due for refinement (at the still
        one), waiting up to `timeout` seconds for either. Call only from one thread.

        Returns:
            The number of frames sent.
        """
        deadline = time.perf_counter() + timeout
        while not self._wake.is_set():
            now = time.perf_counter()
            with self._lock:
                next_due = self._refinements.next_due() if refine else math.inf
            if next_due <= now:
                break
            if now >= deadline:
                return 0
            self._wake.wait(min(deadline, next_due) - now)
        self._wake.clear()
        with self._lock:
            moving, self._pending = self._pending, set()
            still = self._refinements.pop_due(time.perf_counter()) - moving if refine else set()
            clients = [(self._clients[client_id], client_id in still) for client_id in moving | still
                       if client_id in self._clients]
        for client, still_frame in clients:
            self._render_client(client, still_frame)
        return len(clients)

    def serve_forever(self) -> None:
        """Render frames as clients ask for them until `stop()` (or Ctrl-C: KeyboardInterrupt)."""
        while not self._stopped.is_set():
            self.render_pending(timeout=_POLL_S)

    def stop(self) -> None:
        """Stop the server (idempotent); a blocked `serve_forever` or `update` returns."""
        if not self._stopped.is_set():
            self._stopped.set()
            self._wake.set()
            self._server.stop()

    def __enter__(self) -> WebViewer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- scene and cameras ------------------------------------------------------------------------

    def _live(self) -> GaussianScene | None:
        return self._live_scene() if callable(self._live_scene) else self._live_scene

    def _current_scene(self) -> GaussianScene | None:
        live = self._live()
        return live if live is not None else compose_objects(self.objects)

    def _all_means(self) -> torch.Tensor | None:
        parts = [obj.world_scene().means for obj in self.objects]
        live = self._live()
        if live is not None:
            parts.append(live.means.detach())
        parts = [part for part in parts if len(part)]
        return torch.cat(parts) if parts else None

    def _set_scene_frame(self) -> None:
        """Set the centre [3], radius and unit up [3] that orbiting, frustum and gizmo sizes use:
        the `scene_frame` of the Gaussians and the dataset cameras."""
        poses = np.stack([camera.T_pointcloud_camera for camera in self.cameras]) if self.cameras else None
        self._center, self._radius, self._up = scene_frame(self._all_means(), poses)
        self._server.scene.set_up_direction(tuple(self._up))
        self._set_initial_camera()

    def _start_view(self, width: int, height: int) -> tuple[np.ndarray, float] | None:
        """(T_world_camera, vertical fov) a tab with a `width` x `height` canvas starts at:
        dataset camera 0, else the overview camera of the Gaussians; None without either."""
        if self.cameras:
            camera = self.cameras[0]
            return camera.T_pointcloud_camera, vertical_fov(camera.K, camera.height)
        means = self._all_means()
        if means is None:
            return None
        T_world_camera, K, _, _ = overview_camera(means, max(width, 1), max(height, 1))
        return T_world_camera, vertical_fov(K, height)

    def _orbit_point(self, T_world_camera: np.ndarray) -> np.ndarray:
        """[3] the point a camera orbits about: on its optical axis, nearest the scene centre (a
        scene radius ahead when the centre is behind it)."""
        forward, position = T_world_camera[:3, 2], T_world_camera[:3, 3]
        distance = float((self._center - position) @ forward)
        if distance <= 1e-3 * self._radius:
            distance = self._radius
        return position + distance * forward

    def _set_initial_camera(self) -> None:
        """Give new tabs the start view (for a `NOMINAL_CANVAS` canvas) from their first frame
        on, so no frame of viser's default view is rendered before `_on_connect` moves them
        (exactly, for their canvas)."""
        view = self._start_view(*NOMINAL_CANVAS)
        if view is not None:
            T_world_camera, fov_y = view
            initial = self._server.initial_camera
            initial.fov = fov_y
            initial.up = tuple(self._up)
            initial.position = tuple(T_world_camera[:3, 3])
            initial.look_at = tuple(self._orbit_point(T_world_camera))

    def _move_client_camera(self, client: viser.ClientHandle, T_world_camera: np.ndarray,
                            fov_y: float) -> None:
        """Put a tab's camera at a pose, orbiting about `_orbit_point`, with the scene's up (roll
        kept: viser keeps the up direction in the plane of the camera's up and forward axes)."""
        with client.atomic():
            client.camera.fov = fov_y
            client.camera.up_direction = tuple(self._up)
            client.camera.position = tuple(T_world_camera[:3, 3])
            client.camera.look_at = tuple(self._orbit_point(T_world_camera))
            client.camera.wxyz = vtf.SO3.from_matrix(T_world_camera[:3, :3]).wxyz
        self._request_render(client.client_id)

    def _go_to_camera(self, index: int, client: viser.ClientHandle | None) -> None:
        """Move one tab (or all tabs when `client` is None) to dataset camera `index`."""
        camera = self.cameras[index]
        targets = [client] if client is not None else list(self._clients.values())
        for target in targets:
            self._move_client_camera(target, camera.T_pointcloud_camera,
                                     vertical_fov(camera.K, camera.height))

    # -- rendering --------------------------------------------------------------------------------

    def _request_render(self, client_id: int | None = None) -> None:
        """Mark one client's (or every client's) frame out of date and wake the render loop."""
        with self._lock:
            self._pending.update([client_id] if client_id is not None else self._clients)
        self._wake.set()

    def _render_client(self, client: viser.ClientHandle, still: bool) -> None:
        """Render the client's current camera with the GUI's settings and send it the frame: at
        the still resolution, or at the moving one and then owe it a refinement (when larger)."""
        camera = client.camera
        if camera.image_width <= 0 or camera.image_height <= 0:
            return
        canvas_side = max(camera.image_width, camera.image_height)
        moving_side = min(int(self._gui["max_side"].value), canvas_side)
        still_side = max(min(int(self._gui["still_side"].value), canvas_side), moving_side)
        max_side = still_side if still else moving_side
        viewmat, K, width, height = viewer_view(camera.wxyz, camera.position, camera.fov, camera.aspect,
                                                max_side)
        background = tuple(channel / 255.0 for channel in self._gui["background"].value)
        start = time.perf_counter()
        view = render_scene_view(self._current_scene(), viewmat, K, width, height, background,
                           sh_degree=int(self._gui["sh_degree"].value),
                           near_plane=max(float(self._gui["near_plane"].value), MIN_NEAR_PLANE))
        pixels = colorize(view, self._gui["mode"].value)  # copies to the host: the GPU work is done
        elapsed = time.perf_counter() - start
        if client.client_id not in self._clients:  # the tab closed while its frame was rendered
            return
        client.scene.set_background_image(pixels, format="jpeg", jpeg_quality=JPEG_QUALITY)
        self._gui["frame_time"].value = f"{elapsed * 1000.0:.0f} ms, {width} x {height} px"
        with self._lock:
            if max_side < still_side:
                self._refinements.rendered_coarse(client.client_id, time.perf_counter())
            else:
                self._refinements.cancel(client.client_id)

    # -- clients ----------------------------------------------------------------------------------

    def _on_connect(self, client: viser.ClientHandle) -> None:
        with self._lock:
            self._clients[client.client_id] = client
        view = self._start_view(client.camera.image_width, client.camera.image_height)
        if view is not None:
            self._move_client_camera(client, *view)
        else:
            self._request_render(client.client_id)
        client.camera.on_update(lambda camera: self._request_render(camera.client.client_id))

    def _on_disconnect(self, client: viser.ClientHandle) -> None:
        with self._lock:
            self._clients.pop(client.client_id, None)
            self._pending.discard(client.client_id)
            self._refinements.cancel(client.client_id)


def start_web_viewer(scene_paths: list[str | os.PathLike], cameras_path: str | os.PathLike | None = None,
                     host: str = DEFAULT_WEB_HOST, port: int = DEFAULT_WEB_PORT) -> WebViewer:
    """Check the port, read the cameras and scenes, then start a `WebViewer` on them
    (`visualizer.py --web`); nothing is served when an input is bad.

    Raises:
        ValueError: the port is in use (naming it) or out of range, the host is unknown.
        FileNotFoundError, ValueError: an unreadable scene or camera file (naming the file).
    """
    check_port_free(host, port)
    cameras = read_cameras_json(cameras_path) if cameras_path is not None else []
    objects = load_scene_objects(scene_paths, torch_device())
    return WebViewer(objects, cameras, host, port)
