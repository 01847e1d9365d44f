"""The control panel of the web viewer (`web.WebViewer`): the folders and widgets of the page, the
dataset cameras' frustums and the objects' move gizmos.

Each builder adds its widgets to the viser server and wires them to callbacks it is given; it
never renders. viser calls those callbacks on its own threads, so the viewer's callbacks only
record what changed (the `web` module docstring: threads). The widgets are shared by all tabs.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import viser
import viser.transforms as vtf

from taichi_3dgs.color_model import MAX_SH_DEGREE
from taichi_3dgs.data.cameras import CameraRecord
from taichi_3dgs.rasterizer import RasterizerConfig
from taichi_3dgs.viewer.geometry import invert_rigid, rigid_transform
from taichi_3dgs.viewer.scene_objects import SceneObject
from taichi_3dgs.viewer.web_frames import RENDER_MODES, vertical_fov

MAX_SIDE_RANGE = (64, 4096)
"""Range of the resolution sliders, pixels. The "still" slider starts at its top: a resting view is
rendered at the canvas' size (frames are never larger than the canvas)."""

MIN_NEAR_PLANE = 1e-6
"""The near-plane box accepts nothing smaller (world units; the rasterizer needs > 0)."""

FRUSTUM_SIZE_FRACTION = 0.05
"""Dataset camera frustums are drawn this fraction of the scene radius deep."""

FRUSTUM_LINE_PX = 2.0
"""Frustum line width in screen pixels (world-unit lines grow thick when seen from the camera)."""

GIZMO_SIZE_FRACTION = 0.3
"""An object's move gizmo is this fraction of the scene radius large."""

RENDER_SETTINGS = ("max_side", "still_side", "sh_degree", "background", "near_plane", "mode")
"""The keys of `build_view_gui`'s handles whose change calls for a new frame."""


def build_view_gui(gui: viser.GuiApi, objects: list[SceneObject], max_side: int,
                   on_change: Callable[[], None]) -> dict[str, viser.GuiInputHandle]:
    """The "View" folder: the render settings every frame reads, and the last frame's time.

    Args:
        gui: the server's GUI (`viser.ViserServer.gui`).
        objects: the scenes shown; the SH degree slider starts at their highest degree
            (`MAX_SH_DEGREE` without objects).
        max_side: start of the "moving" slider, pixels, within `MAX_SIDE_RANGE`.
        on_change: called (without arguments, on a viser thread) when a setting in
            `RENDER_SETTINGS` changes.

    Returns:
        The handles by key: "max_side" and "still_side" (long side in pixels of frames while the
        view changes / once it rests, int sliders), "sh_degree" (int slider), "background"
        ((r, g, b) ints 0-255), "near_plane" (float, world units, >= `MIN_NEAR_PLANE`), "mode"
        (one of `RENDER_MODES`) and "frame_time" (a read-only text box the caller writes).
    """
    max_degree = max((obj.scene.sh_degree for obj in objects), default=MAX_SH_DEGREE)
    with gui.add_folder("View"):
        handles: dict[str, viser.GuiInputHandle] = {
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
    for name in RENDER_SETTINGS:
        handles[name].on_update(lambda _: on_change())
    return handles


def build_camera_gui(server: viser.ViserServer, cameras: list[CameraRecord], radius: float,
                     go_to_camera: Callable[[int, viser.ClientHandle | None], None]) -> None:
    """The "Dataset cameras" folder (camera index, "go to camera", "show frustums") and a
    clickable frustum per camera.

    Args:
        server: the viewer's server (its GUI and scene).
        cameras: the dataset cameras, at least one; frustum k is drawn at camera k's pose.
        radius: scene radius, world units (frustums are `FRUSTUM_SIZE_FRACTION` of it deep).
        go_to_camera: called as go_to_camera(index, client) on a viser thread to move the tab
            `client` (None: every tab) to camera `index`: when the index slider is moved in a tab,
            on "go to camera", and when a frustum is clicked.
    """
    gui, scene = server.gui, server.scene
    with gui.add_folder("Dataset cameras"):
        index = gui.add_slider("camera", min=0, max=max(len(cameras) - 1, 1), step=1,
                               initial_value=0, disabled=len(cameras) == 1)
        go = gui.add_button("go to camera")
        show = gui.add_checkbox("show frustums", True)

    def chosen(event: viser.GuiEvent) -> None:
        if event.client is not None:  # None: set by a frustum click, which moved the camera
            go_to_camera(int(index.value), event.client)

    index.on_update(chosen)
    go.on_click(lambda event: go_to_camera(int(index.value), event.client))
    frustums = []
    for k, camera in enumerate(cameras):
        frustum = scene.add_camera_frustum(
            f"/cameras/{k}", fov=vertical_fov(camera.K, camera.height),
            aspect=camera.width / camera.height, scale=FRUSTUM_SIZE_FRACTION * radius,
            thickness=FRUSTUM_LINE_PX, thickness_units="screen", color=(255, 160, 0),
            wxyz=vtf.SO3.from_matrix(camera.T_pointcloud_camera[:3, :3]).wxyz,
            position=camera.camera_center)

        def clicked(event: viser.SceneNodePointerEvent, k: int = k) -> None:
            index.value = k
            go_to_camera(k, event.client)

        frustum.on_click(clicked)
        frustums.append(frustum)

    def toggle(_: object) -> None:
        for frustum in frustums:
            frustum.visible = show.value

    show.on_update(toggle)


def build_object_gui(server: viser.ViserServer, index: int, obj: SceneObject, radius: float,
                     on_change: Callable[[], None]) -> None:
    """A folder with visible / move / reset for one object, and its gizmo (hidden until
    "move"): object pose = gizmo pose * inverse(start gizmo pose) * start object pose, so the
    rings turn the object about its pivot (`SceneObject.center`) and the arrows move it.

    Args:
        server: the viewer's server (its GUI and scene).
        index: the object's position in the viewer's list (folder "index + 1: name").
        obj: the object; the widgets set its `visible` and `T_world_object` in place.
        radius: scene radius, world units (the gizmo is `GIZMO_SIZE_FRACTION` of it large).
        on_change: called (without arguments, on a viser thread) after the object changed.
    """
    gui = server.gui
    start_gizmo = rigid_transform(np.eye(3), obj.world_center)
    start_pose = obj.T_world_object.copy()
    gizmo = server.scene.add_transform_controls(
        f"/objects/{index}", scale=GIZMO_SIZE_FRACTION * radius, position=obj.world_center,
        visible=False)
    with gui.add_folder(f"{index + 1}: {obj.name}"):
        visible = gui.add_checkbox("visible", obj.visible)
        move = gui.add_checkbox("move", False, hint="show a gizmo: drag its arrows and rings")
        reset = gui.add_button("reset pose")

    def set_visible(_: object) -> None:
        obj.visible = visible.value
        on_change()

    def moved(_: object) -> None:
        gizmo_pose = rigid_transform(vtf.SO3(gizmo.wxyz).as_matrix(), gizmo.position)
        obj.T_world_object = gizmo_pose @ invert_rigid(start_gizmo) @ start_pose
        on_change()

    def reset_pose(_: object) -> None:
        gizmo.wxyz, gizmo.position = (1.0, 0.0, 0.0, 0.0), tuple(start_gizmo[:3, 3])
        obj.T_world_object = start_pose.copy()
        on_change()

    visible.on_update(set_visible)
    move.on_update(lambda _: setattr(gizmo, "visible", move.value))
    gizmo.on_update(moved)
    reset.on_click(reset_pose)


def build_training_gui(gui: viser.GuiApi, paused: bool,
                       toggle_pause: Callable[[], None]) -> dict[str, viser.GuiInputHandle]:
    """The "Training" folder: read-only step, loss, Gaussians and steps/s, and the pause button.

    Args:
        gui: the server's GUI (`viser.ViserServer.gui`).
        paused: whether training starts paused (the button then reads "resume").
        toggle_pause: called (without arguments, on a viser thread) when the button is clicked
            (`WebViewer.paused` then relabels the button through the "pause" handle).

    Returns:
        The handles by key: "step", "loss", "Gaussians", "steps/s" (text boxes,
        `show_training_status` writes them) and "pause" (the button).
    """
    with gui.add_folder("Training"):
        handles = {name: gui.add_text(name, "", disabled=True)
                   for name in ("step", "loss", "Gaussians", "steps/s")}
        handles["pause"] = gui.add_button("resume" if paused else "pause")
    handles["pause"].on_click(lambda _: toggle_pause())
    return handles


def show_training_status(handles: dict[str, viser.GuiInputHandle], step: int, loss: float | None,
                         num_gaussians: int | None, steps_per_second: float | None) -> None:
    """Write training progress into the panel of `build_training_gui` (`handles`); None leaves a
    box empty.

    Args:
        handles: what `build_training_gui` returned.
        step: training step (iteration) just done.
        loss: its loss, or None.
        num_gaussians: current number of Gaussians, or None.
        steps_per_second: current training speed, or None.
    """
    values = {"step": f"{step:,}",
              "loss": "" if loss is None else f"{loss:.5f}",
              "Gaussians": "" if num_gaussians is None else f"{num_gaussians:,}",
              "steps/s": "" if steps_per_second is None else f"{steps_per_second:.2f}"}
    for name, value in values.items():
        handles[name].value = value
