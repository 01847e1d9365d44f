"""Viewer input -> camera and object state, without any window (testable headless).

Keys (names as ti.GUI reports them), those of the original Taichi 3DGS viewer plus new ones:

| key | camera mode (`0`) | object mode (`1`-`9`: object k selected) |
| --- | --- | --- |
| `0` / `1`-`9` | select the camera / object k (keys beyond the object count are ignored) | |
| `w` / `s` | move forward / back along the camera's z axis | move the object away / closer, same axis |
| `a` / `d` | move left / right (camera x axis) | move the object left / right |
| `-` / `=` | move down / up (camera y axis) | move the object down / up |
| `q` / `e` | turn left / right (yaw about the camera's y axis) | spin the object about the camera's vertical axis through its centre, its near side moving left / right |
| left-drag | look around (yaw with horizontal, pitch with vertical motion, about the camera centre) | turn the object about its centre, its near side following the mouse |
| `h` / `p` | hide / show every object | hide / show the object |
| `[` / `]` | previous / next dataset camera (`--cameras`) | same |
| `c` | screenshot (handled by the window) | same |
| `Escape` | quit (handled by the window) | same |

Steps: a key press moves by `translation_step` world units or turns by `rotation_step` radians;
a drag over the whole window width turns by `mouse_sensitivity` radians. Camera poses are
camera-to-world `T_world_camera` (OpenCV axes: x right, y down, z forward; docs/FORMATS.md); object
poses are `SceneObject.T_world_object`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from taichi_3dgs.rotations import axis_angle_to_matrix
from taichi_3dgs.viewer.geometry import invert_rigid, rigid_transform
from taichi_3dgs.viewer.scene_objects import SceneObject

SCREENSHOT_KEY = "c"
QUIT_KEY = "Escape"

# key -> translation direction in camera coordinates (OpenCV: x right, y down, z forward)
_MOVES = {
    "w": (0.0, 0.0, 1.0), "s": (0.0, 0.0, -1.0),
    "a": (-1.0, 0.0, 0.0), "d": (1.0, 0.0, 0.0),
    "-": (0.0, 1.0, 0.0), "=": (0.0, -1.0, 0.0),
}
_Y_AXIS = np.array([0.0, 1.0, 0.0])
_X_AXIS = np.array([1.0, 0.0, 0.0])


@dataclass
class Controller:
    """Camera pose, intrinsics and the objects' poses, changed by key presses and mouse drags.

    Attributes:
        objects: the scene objects; their `T_world_object` and `visible` are edited in place.
        T_world_camera: [4, 4] float64 camera-to-world pose of the view.
        K: [3, 3] float64 intrinsics in pixels for `width` x `height`.
        width, height: image size in pixels.
        translation_step: world units per movement key press (> 0).
        rotation_step: radians per `q`/`e` press.
        mouse_sensitivity: radians per window width (or height) dragged.
        dataset_cameras: (T_world_camera [4, 4], K [3, 3] for `width` x `height`) per dataset
            camera, stepped through with `[` / `]`.
        selected: 0 = camera mode, k >= 1 = object k - 1 selected.
        dataset_index: index of the dataset camera last jumped to, or None.
    """

    objects: list[SceneObject]
    T_world_camera: np.ndarray
    K: np.ndarray
    width: int
    height: int
    translation_step: float
    rotation_step: float = math.radians(5.0)
    mouse_sensitivity: float = math.pi
    dataset_cameras: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    selected: int = 0
    dataset_index: int | None = None

    def __post_init__(self) -> None:
        if not self.translation_step > 0:
            raise ValueError(f"translation_step: expected > 0, got {self.translation_step}")
        self.T_world_camera = np.array(self.T_world_camera, dtype=np.float64)
        self.K = np.array(self.K, dtype=np.float64)

    @property
    def viewmat(self) -> np.ndarray:
        """[4, 4] float64 world-to-camera matrix of the current view."""
        return invert_rigid(self.T_world_camera)

    def press(self, key: str) -> bool:
        """Apply one key press (module docstring); return whether the state changed."""
        if key.isdigit() and len(key) == 1:
            index = int(key)
            if index > len(self.objects) or index == self.selected:
                return False
            self.selected = index
            return True
        if key in _MOVES:
            self._translate(np.array(_MOVES[key]) * self.translation_step)
            return True
        if key in ("q", "e"):
            if self.selected:
                self._turn_object(_Y_AXIS, self.rotation_step if key == "q" else -self.rotation_step)
            else:
                self._turn_camera(_Y_AXIS, -self.rotation_step if key == "q" else self.rotation_step)
            return True
        if key in ("h", "p"):
            targets = [self.objects[self.selected - 1]] if self.selected else self.objects
            changed = any(obj.visible != (key == "p") for obj in targets)
            for obj in targets:
                obj.visible = key == "p"
            return changed
        if key in ("[", "]") and self.dataset_cameras:
            count = len(self.dataset_cameras)
            if self.dataset_index is None:
                self.dataset_index = 0 if key == "]" else count - 1
            else:
                self.dataset_index = (self.dataset_index + (1 if key == "]" else -1)) % count
            pose, K = self.dataset_cameras[self.dataset_index]
            self.T_world_camera = np.array(pose, dtype=np.float64)
            self.K = np.array(K, dtype=np.float64)
            return True
        return False

    def drag(self, dx: float, dy: float) -> bool:
        """Apply a left-button drag by (dx, dy) window fractions (x right, y up, as ti.GUI's
        cursor positions); return whether the state changed."""
        if dx == 0.0 and dy == 0.0:
            return False
        yaw, pitch = dx * self.mouse_sensitivity, dy * self.mouse_sensitivity
        if self.selected:
            self._turn_object(_Y_AXIS, -yaw)
            self._turn_object(_X_AXIS, -pitch)
        else:
            self._turn_camera(_Y_AXIS, yaw)
            self._turn_camera(_X_AXIS, pitch)
        return True

    def snapshot(self) -> dict[str, Any]:
        """The view and object poses as plain JSON-able lists (written beside screenshots)."""
        return {
            "viewmat": self.viewmat.tolist(),
            "T_world_camera": self.T_world_camera.tolist(),
            "K": self.K.tolist(),
            "width": self.width,
            "height": self.height,
            "selected": self.selected,
            "objects": [{"name": obj.name, "T_world_object": obj.T_world_object.tolist(),
                         "visible": obj.visible} for obj in self.objects],
        }

    def _translate(self, delta_camera: np.ndarray) -> None:
        delta_world = self.T_world_camera[:3, :3] @ delta_camera
        if self.selected:
            obj = self.objects[self.selected - 1]
            obj.T_world_object = rigid_transform(np.eye(3), delta_world) @ obj.T_world_object
        else:
            self.T_world_camera[:3, 3] += delta_world

    def _turn_camera(self, axis_camera: np.ndarray, angle: float) -> None:
        """Rotate the camera about its own centre and its own axis (right-multiplication)."""
        self.T_world_camera[:3, :3] = self.T_world_camera[:3, :3] @ axis_angle_to_matrix(axis_camera, angle)

    def _turn_object(self, axis_camera: np.ndarray, angle: float) -> None:
        """Rotate the selected object about the camera axis `axis_camera`, through its centre."""
        obj = self.objects[self.selected - 1]
        rotation = axis_angle_to_matrix(self.T_world_camera[:3, :3] @ axis_camera, angle)
        pivot = obj.world_center
        obj.T_world_object = rigid_transform(rotation, pivot - rotation @ pivot) @ obj.T_world_object
