"""Viewing trained scenes: several scenes as posed objects, camera paths, the interactive window,
the web viewer and the offline renderer with metrics.

    sh_rotation    -- `rotate_sh`: SH colour coefficients of a rotated scene (bands 1-3)
    scene_objects  -- `SceneObject`, `transform_scene`, `merge_scenes`, `compose_objects`
    controller     -- `Controller`: keys / mouse -> camera and object poses (no window)
    camera_paths   -- look-at, scene frame, camera fitted to bounds, orbit, ellipse path, focus point
    poses          -- poses.pt camera paths (`CameraPath`, save/load)
    rendering      -- `render_scene_view` / `render_image` (forward rasterization), PNG   [Taichi]
    app            -- viewer session setup and headless orbit (`visualizer.py`)    [Taichi]
    window         -- the ti.GUI window loop                                        [Taichi]
    web            -- `WebViewer`: the viewer as a web page (viser)                 [Taichi]
    web_gui        -- the web page's control panel: settings, dataset cameras, objects, training
    evaluation     -- renders, ground truth, PSNR/SSIM, video (`gaussian_point_render.py`) [Taichi]
    render_warnings -- warnings for degenerate scenes and cameras whose render is only background

The modules marked [Taichi] load the rasterizer; they are not imported here, so the camera-path
tools run without Taichi (and nothing here imports viser, which only `web` and its helpers
`web_frames` and `web_gui` need).
"""
from taichi_3dgs.viewer.camera_paths import (ellipse_path, fit_camera_to_bounds, focus_point, look_at,
                                             mean_up, orbit_path, scene_bounds)
from taichi_3dgs.viewer.controller import Controller
from taichi_3dgs.viewer.poses import CameraPath, load_camera_path, save_camera_path
from taichi_3dgs.viewer.scene_objects import (SceneObject, compose_objects, load_scene_objects,
                                              merge_scenes, transform_scene)
from taichi_3dgs.viewer.sh_rotation import rotate_sh, sh_rotation_matrices

__all__ = [
    "CameraPath", "Controller", "SceneObject", "compose_objects", "ellipse_path",
    "fit_camera_to_bounds", "focus_point", "load_camera_path", "load_scene_objects", "look_at",
    "mean_up", "merge_scenes", "orbit_path", "rotate_sh", "save_camera_path", "scene_bounds",
    "sh_rotation_matrices", "transform_scene",
]
