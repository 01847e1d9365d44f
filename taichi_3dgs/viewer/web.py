"""The web viewer: trained scenes rendered by the package's rasterizer and streamed to a browser.

The page is served with viser (https://viser.studio), as gsplat's nerfview and nerfstudio do: the
browser owns an orbit camera (drag to orbit, right-drag or shift-drag to pan, wheel to zoom) and
sends its pose on every change; the server renders that view with `render_scene_view` and sends the
frame back as a JPEG that the page shows as its background. The Gaussians never leave the server,
so the page works over an SSH tunnel to a headless GPU machine. Frames are progressive
(`taichi_3dgs.viewer.refinement`, as gsplat's nerfview): a changing view is rendered at the "moving"
resolution, and once it rests, once more at the "still" one, by default the canvas' own size, so
the browser does not stretch a small frame.

Cameras: the browser's camera becomes ours in `web_frames` (its conventions there).

Threads. viser calls the GUI and camera callbacks on its own threads; they only record what
changed. All rendering (Taichi and torch) happens in the one thread that calls
`WebViewer.serve_forever` or `WebViewer.update`, so Taichi is never entered from two threads.

Only this module imports viser (optional at package import: `taichi_3dgs.viewer` does not import
this module).
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
from taichi_3dgs.color_model import MAX_SH_DEGREE
from taichi_3dgs.data.cameras import CameraRecord, read_cameras_json
from taichi_3dgs.rasterizer import RasterizerConfig
from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.viewer.camera_paths import (FALLBACK_UP, mean_up, overview_camera, scene_bounds,
                                             scene_up)
from taichi_3dgs.viewer.geometry import invert_rigid, rigid_transform
from taichi_3dgs.viewer.refinement import RefinementSchedule
from taichi_3dgs.viewer.rendering import render_scene_view
from taichi_3dgs.viewer.scene_objects import SceneObject, compose_objects, load_scene_objects
from taichi_3dgs.viewer.web_frames import RENDER_MODES, colorize, vertical_fov, viewer_view

DEFAULT_MAX_SIDE = {"cuda": 1280, "cpu": 480}
"""Initial resolution of frames while the view changes (the long side of the rendered frame in
pixels; the GUI's "moving" slider) by the torch device type of the Taichi backend. On the 2-core
CPU machine (busy with other work) a frame of 480 px took 0.7-1.0 s for the 9,080-Gaussian
3dgs_trained_ply scene and the 111,785-Gaussian garden; no GPU was measured yet (BENCHMARKS.md),
1280 px assumes one."""

MAX_SIDE_RANGE = (64, 4096)
"""Range of the resolution sliders, pixels. The "still" slider starts at its top: a resting view is
rendered at the canvas' size (frames are never larger than the canvas)."""

JPEG_QUALITY = 90
"""Frames travel as JPEG: at this quality the two scenes above at 480 px took 5.5-6x fewer bytes
than PNG, at 42-50 dB PSNR against the exact 8-bit frame."""

MIN_NEAR_PLANE = 1e-6
"""The near-plane box accepts nothing smaller (world units; the rasterizer needs > 0)."""

FRUSTUM_SIZE_FRACTION = 0.05
"""Dataset camera frustums are drawn this fraction of the scene radius deep."""

FRUSTUM_LINE_PX = 2.0
"""Frustum line width in screen pixels (world-unit lines grow thick when seen from the camera)."""

GIZMO_SIZE_FRACTION = 0.3
"""An object's move gizmo is this fraction of the scene radius large."""

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
    page's pause button is down the resting view is refined as in `serve_forever`.
    While the page's pause button is down, `update` keeps serving camera changes and returns only
    on resume or `stop()`. `paused` reads (and sets) that state.

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
            self._build_view_gui(max_side)
            if self.cameras:
                self._build_camera_gui()
            for index, obj in enumerate(self.objects):
                self._build_object_gui(index, obj)
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
        self._show_status(step, loss, num_gaussians, steps_per_second)
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
        the Gaussians' `scene_bounds`, else the cameras' centres; up: the cameras' `mean_up`, else
        `scene_up`."""
        means = self._all_means()
        centres = np.stack([camera.camera_center for camera in self.cameras]) if self.cameras else None
        if means is not None:
            center, radius = scene_bounds(means)
        elif centres is not None:
            center = centres.mean(axis=0)
            radius = float(np.linalg.norm(centres - center, axis=1).max()) or 1.0
        else:
            center, radius = np.zeros(3), 1.0
        up = None
        if centres is not None:
            try:
                up = mean_up(np.stack([camera.T_pointcloud_camera for camera in self.cameras]))
            except ValueError:  # the cameras' ups cancel out: ask the points
                up = None
        if up is None:
            up = scene_up(means) if means is not None else FALLBACK_UP.copy()
        self._center, self._radius, self._up = np.asarray(center, dtype=np.float64), float(radius), up
        self._server.scene.set_up_direction(tuple(up))
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

    # -- GUI --------------------------------------------------------------------------------------

    def _build_view_gui(self, max_side: int) -> None:
        gui = self._server.gui
        max_degree = max((obj.scene.sh_degree for obj in self.objects), default=MAX_SH_DEGREE)
        with gui.add_folder("View"):
            self._gui: dict[str, viser.GuiInputHandle] = {
                "max_side": gui.add_slider("moving (px)", min=MAX_SIDE_RANGE[0], max=MAX_SIDE_RANGE[1],
                                           step=16, initial_value=max_side,
                                           hint="long side of the frames while the view changes, at most the "
                                                "page's"),
                "still_side": gui.add_slider("still (px)", min=MAX_SIDE_RANGE[0], max=MAX_SIDE_RANGE[1],
                                             step=16, initial_value=MAX_SIDE_RANGE[1],
                                             hint="long side of the frame once the view rests, at most the page's"),
                # a slider needs min < max: degree 1 of a degree-0 scene renders as degree 0
                "sh_degree": gui.add_slider("SH degree", min=0, max=max(max_degree, 1), step=1,
                                            initial_value=max_degree),
                "background": gui.add_rgb("background", (0, 0, 0)),
                "near_plane": gui.add_number("near plane", RasterizerConfig.near_plane, min=MIN_NEAR_PLANE,
                                             step=1e-3,
                                             hint="Gaussians nearer than this (world units) are culled"),
                "mode": gui.add_dropdown("render mode", RENDER_MODES, initial_value="RGB"),
                "frame_time": gui.add_text("frame time", "", disabled=True),
            }
        for name in ("max_side", "still_side", "sh_degree", "background", "near_plane", "mode"):
            self._gui[name].on_update(lambda _: self._request_render())

    def _build_camera_gui(self) -> None:
        gui, scene = self._server.gui, self._server.scene
        with gui.add_folder("Dataset cameras"):
            index = gui.add_slider("camera", min=0, max=max(len(self.cameras) - 1, 1), step=1,
                                   initial_value=0, disabled=len(self.cameras) == 1)
            go = gui.add_button("go to camera")
            show = gui.add_checkbox("show frustums", True)

        def chosen(event: viser.GuiEvent) -> None:
            if event.client is not None:  # None: set by a frustum click, which moved the camera
                self._go_to_camera(int(index.value), event.client)

        index.on_update(chosen)
        go.on_click(lambda event: self._go_to_camera(int(index.value), event.client))
        frustums = []
        for k, camera in enumerate(self.cameras):
            frustum = scene.add_camera_frustum(
                f"/cameras/{k}", fov=vertical_fov(camera.K, camera.height),
                aspect=camera.width / camera.height, scale=FRUSTUM_SIZE_FRACTION * self._radius,
                thickness=FRUSTUM_LINE_PX, thickness_units="screen", color=(255, 160, 0), wxyz=vtf.SO3.from_matrix(camera.T_pointcloud_camera[:3, :3]).wxyz,
                position=camera.camera_center)

            def clicked(event: viser.SceneNodePointerEvent, k: int = k) -> None:
                index.value = k
                self._go_to_camera(k, event.client)

            frustum.on_click(clicked)
            frustums.append(frustum)

        def toggle(_: object) -> None:
            for frustum in frustums:
                frustum.visible = show.value

        show.on_update(toggle)

    def _build_object_gui(self, index: int, obj: SceneObject) -> None:
        """A folder with visible / move / reset for one object, and its gizmo (hidden until
        "move"): object pose = gizmo pose * inverse(start gizmo pose) * start object pose, so the
        rings turn the object about its pivot (`SceneObject.center`) and the arrows move it."""
        gui = self._server.gui
        start_gizmo = rigid_transform(np.eye(3), obj.world_center)
        start_pose = obj.T_world_object.copy()
        gizmo = self._server.scene.add_transform_controls(
            f"/objects/{index}", scale=GIZMO_SIZE_FRACTION * self._radius, position=obj.world_center,
            visible=False)
        with gui.add_folder(f"{index + 1}: {obj.name}"):
            visible = gui.add_checkbox("visible", obj.visible)
            move = gui.add_checkbox("move", False, hint="show a gizmo: drag its arrows and rings")
            reset = gui.add_button("reset pose")

        def set_visible(_: object) -> None:
            obj.visible = visible.value
            self._request_render()

        def moved(_: object) -> None:
            gizmo_pose = rigid_transform(vtf.SO3(gizmo.wxyz).as_matrix(), gizmo.position)
            obj.T_world_object = gizmo_pose @ invert_rigid(start_gizmo) @ start_pose
            self._request_render()

        def reset_pose(_: object) -> None:
            gizmo.wxyz, gizmo.position = (1.0, 0.0, 0.0, 0.0), tuple(start_gizmo[:3, 3])
            obj.T_world_object = start_pose.copy()
            self._request_render()

        visible.on_update(set_visible)
        move.on_update(lambda _: setattr(gizmo, "visible", move.value))
        gizmo.on_update(moved)
        reset.on_click(reset_pose)

    def _show_status(self, step: int, loss: float | None, num_gaussians: int | None,
                     steps_per_second: float | None) -> None:
        """Create the training panel on the first `update`, then write the status (`update`)."""
        if self._training_gui is None:
            gui = self._server.gui
            with gui.add_folder("Training"):
                self._training_gui = {name: gui.add_text(name, "", disabled=True)
                                      for name in ("step", "loss", "Gaussians", "steps/s")}
                self._training_gui["pause"] = gui.add_button("resume" if self._paused else "pause")
            self._training_gui["pause"].on_click(lambda _: setattr(self, "paused", not self._paused))
        values = {"step": f"{step:,}",
                  "loss": "" if loss is None else f"{loss:.5f}",
                  "Gaussians": "" if num_gaussians is None else f"{num_gaussians:,}",
                  "steps/s": "" if steps_per_second is None else f"{steps_per_second:.2f}"}
        for name, value in values.items():
            self._training_gui[name].value = value


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
