""".glb files: glTF 2.0 binary with the KHR_gaussian_splatting extension.

Layout (Khronos glTF 2.0 spec, "GLB File Format Specification"; extension text
KhronosGroup/glTF `extensions/2.0/Khronos/KHR_gaussian_splatting/README.md`): a 12-byte header
(magic "glTF", version 2, total length), a JSON chunk and one BIN chunk. The JSON holds one
scene -> one node -> one mesh with one POINTS primitive (mode 0) whose `extensions` object
names `KHR_gaussian_splatting` (kernel "ellipse", colorSpace "srgb_rec709_display") and whose
attributes are float accessors, one per Gaussian:

    POSITION                                   VEC3   centre
    KHR_gaussian_splatting:ROTATION            VEC4   unit quaternion x, y, z, w
    KHR_gaussian_splatting:SCALE               VEC3   linear standard deviations exp(log_scale)
    KHR_gaussian_splatting:OPACITY             SCALAR sigmoid(opacity), 0..1
    KHR_gaussian_splatting:SH_DEGREE_0_COEF_0  VEC3   DC coefficient (RGB), not a colour
    KHR_gaussian_splatting:SH_DEGREE_l_COEF_n  VEC3   band l = 1..3, n = 0..2l (official order)
    COLOR_0                                    VEC4   unsigned byte normalised, the point-cloud
                                                      fallback: 0.5 + SH_C0 * DC and opacity

Scales are linear and opacities after the sigmoid, as PlayCanvas's splat-transform 2.7.1 writes
them (the extension's 2025 draft text still says log scales). glTF is +Y up:
a 3DGS PLY scene (COLMAP / OpenCV frame, y down) is turned by 180 degrees about z on the way
(`quantisation.turn_axes` with signs (-1, -1, 1)), as splat-transform does. Everything but the
fallback colour is float32, so the round trip is exact up to float32 rounding of exp/log and the
sigmoid. SH bands up to the scene's degree are written; the antialiased flag travels in the
primitive's `extras` (`{"taichi_3dgs_antialiased": true}`), which other readers ignore. On read,
quantised accessors (normalised byte/short rotation, scale and opacity, as the extension allows)
and interleaved buffer views are decoded; node transforms and external buffers are refused.
"""
from __future__ import annotations

import json
import os
import struct

import numpy as np

from taichi_3dgs.atomic_io import atomic_path
from taichi_3dgs.color_model import SH_C0
from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.scene.ply import check_linear_scene
from taichi_3dgs.scene.quantisation import (SceneArrays, arrays_to_scene, degree_bands,
                                            read_bytes, scene_arrays, turn_axes)

EXTENSION = "KHR_gaussian_splatting"
"""The glTF extension name, also the prefix of its attribute semantics."""

ANTIALIASED_EXTRA = "taichi_3dgs_antialiased"
"""Key of the primitive's `extras` that marks an antialiased scene."""

_Y_UP = (-1, -1, 1)  # the turn between the PLY frame (y down) and glTF's +Y up
_MAGIC, _JSON, _BIN = 0x46546C67, 0x4E4F534A, 0x004E4942
_FLOAT, _UNSIGNED_BYTE = 5126, 5121
_COMPONENTS = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32,
               5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}


def _sh_attribute(index: int) -> str:
    """Attribute name of official SH coefficient `index` (1..15): band l, order n = index - l^2."""
    band = int(np.sqrt(index))
    return f"{EXTENSION}:SH_DEGREE_{band}_COEF_{index - band * band}"


def write_glb(path: str | os.PathLike, scene: GaussianScene) -> None:
    """Write a linear-colour `scene` as a glTF 2.0 binary with KHR_gaussian_splatting, atomically.

    Layout: module docstring; Gaussians keep the scene's order. N may be 0.

    Raises:
        ValueError: `scene.validate()` fails, or the scene uses `sigmoid` colour. Nothing is
            written.
        OSError: the file cannot be written; the destination is left untouched.
    """
    check_linear_scene(path, scene, ".glb")
    arrays = turn_axes(scene_arrays(scene), _Y_UP)
    fallback = np.concatenate([0.5 + SH_C0 * arrays.sh[:, 0], arrays.opacities[:, None]], 1)
    attributes = [
        ("POSITION", arrays.means, "VEC3"),
        ("COLOR_0", np.clip(np.round(fallback * 255.0), 0, 255).astype(np.uint8), "VEC4"),
        (f"{EXTENSION}:ROTATION", arrays.quats[:, [1, 2, 3, 0]], "VEC4"),
        (f"{EXTENSION}:SCALE", np.exp(arrays.log_scales), "VEC3"),
        (f"{EXTENSION}:OPACITY", arrays.opacities, "SCALAR"),
        (f"{EXTENSION}:SH_DEGREE_0_COEF_0", arrays.sh[:, 0], "VEC3"),
    ] + [(_sh_attribute(k), arrays.sh[:, k], "VEC3")
         for k in range(1, 1 + degree_bands(arrays.sh_degree))]
    blobs, views, accessors = [], [], []
    offset = 0
    for index, (name, values, kind) in enumerate(attributes):
        blob = (values if values.dtype == np.uint8 else values.astype("<f4")).tobytes()
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(blob), "target": 34962})
        accessor = {"bufferView": index, "componentType": _UNSIGNED_BYTE if name == "COLOR_0"
                    else _FLOAT, "count": len(values), "type": kind}
        if name == "COLOR_0":
            accessor["normalized"] = True
        if name == "POSITION" and len(values):
            accessor["min"] = values.astype(np.float32).min(0).tolist()
            accessor["max"] = values.astype(np.float32).max(0).tolist()
        accessors.append(accessor)
        blobs.append(blob + b"\0" * (-len(blob) % 4))
        offset += len(blobs[-1])
    primitive = {"attributes": {name: i for i, (name, _, _) in enumerate(attributes)}, "mode": 0,
                 "extensions": {EXTENSION: {"kernel": "ellipse",
                                            "colorSpace": "srgb_rec709_display",
                                            "sortingMethod": "cameraDistance",
                                            "projection": "perspective"}}}
    if arrays.antialiased:
        primitive["extras"] = {ANTIALIASED_EXTRA: True}
    gltf = {"asset": {"version": "2.0", "generator": "taichi_3dgs"}, "extensionsUsed": [EXTENSION],
            "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
            "meshes": [{"primitives": [primitive]}], "buffers": [{"byteLength": offset}],
            "bufferViews": views, "accessors": accessors}
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary = b"".join(blobs)
    total = 12 + 8 + len(text) + 8 + len(binary)
    with atomic_path(path) as tmp:
        tmp.write_bytes(struct.pack("<III", _MAGIC, 2, total) + struct.pack("<II", len(text), _JSON)
                        + text + struct.pack("<II", len(binary), _BIN) + binary)


def read_glb(path: str | os.PathLike) -> GaussianScene:
    """Read the first KHR_gaussian_splatting primitive of a .glb file into a linear-colour
    `GaussianScene` on the CPU (module docstring; turned back to the PLY frame).

    The SH degree is the highest band whose attributes are all present.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: not a GLB file (magic, version), a length that does not match the file, a
            malformed chunk or JSON, no primitive with the extension, a required attribute
            missing, an accessor outside its buffer, a node transform, an opacity outside 0..1 or
            a non-positive scale; the message names the file.
    """
    data = read_bytes(path)
    gltf, binary = _chunks(path, data)
    primitive, node = _splat_primitive(path, gltf)
    if any(key in node for key in ("matrix", "translation", "rotation", "scale")):
        raise ValueError(f"{path}: the splat mesh's node has a transform, which is not supported "
                         f"(expected positions in the scene frame)")

    def attribute(name: str, kind: str) -> np.ndarray:
        if name not in primitive["attributes"]:
            raise ValueError(f"{path}: attribute {name} missing from the {EXTENSION} primitive")
        return _accessor(path, gltf, binary, primitive["attributes"][name], kind)

    means = attribute("POSITION", "VEC3")
    degree = 0
    while degree < 3 and all(
            _sh_attribute(k) in primitive["attributes"]
            for k in range(1 + degree_bands(degree), 1 + degree_bands(degree + 1))):
        degree += 1
    sh = np.stack([attribute(f"{EXTENSION}:SH_DEGREE_0_COEF_0", "VEC3")]
                  + [attribute(_sh_attribute(k), "VEC3")
                     for k in range(1, 1 + degree_bands(degree))], axis=1)
    scales = attribute(f"{EXTENSION}:SCALE", "VEC3")
    opacities = attribute(f"{EXTENSION}:OPACITY", "SCALAR")[:, 0]
    if len(scales) and not scales.min() > 0:
        raise ValueError(f"{path}: {EXTENSION}:SCALE row {int(np.argmin(scales.min(1)))} is "
                         f"{scales.min():g}, expected positive linear scales")
    if len(opacities) and not (0 <= opacities.min() and opacities.max() <= 1):
        raise ValueError(f"{path}: {EXTENSION}:OPACITY outside 0..1 (expected opacities after "
                         f"the sigmoid)")
    arrays = SceneArrays(
        means=means, quats=attribute(f"{EXTENSION}:ROTATION", "VEC4")[:, [3, 0, 1, 2]],
        log_scales=np.log(scales), opacities=opacities, sh=sh, sh_degree=degree,
        antialiased=primitive.get("extras", {}).get(ANTIALIASED_EXTRA) is True)
    return arrays_to_scene(path, turn_axes(arrays, _Y_UP), opacity_floor=1e-7)


def _chunks(path: str | os.PathLike, data: bytes) -> tuple[dict, bytes]:
    """The parsed JSON chunk and the BIN chunk's bytes (b"" without one)."""
    if len(data) < 20 or struct.unpack_from("<I", data)[0] != _MAGIC:
        raise ValueError(f"{path}: not a GLB file (expected the magic 'glTF' at byte 0)")
    _, version, length = struct.unpack_from("<III", data)
    if version != 2:
        raise ValueError(f"{path}: glTF binary version {version}, expected 2")
    if length != len(data):
        raise ValueError(f"{path}: {'truncated' if length > len(data) else 'corrupt'} GLB file: "
                         f"the header gives {length} bytes, the file has {len(data)}")
    chunks, offset = {}, 12
    while offset < len(data):
        if offset + 8 > len(data):
            raise ValueError(f"{path}: corrupt GLB file: a chunk header is cut at byte {offset}")
        size, kind = struct.unpack_from("<II", data, offset)
        if offset + 8 + size > len(data):
            raise ValueError(f"{path}: corrupt GLB file: a chunk of {size} bytes at byte "
                             f"{offset} runs past the end")
        chunks.setdefault(kind, data[offset + 8:offset + 8 + size])
        offset += 8 + size
    if _JSON not in chunks:
        raise ValueError(f"{path}: corrupt GLB file: no JSON chunk")
    try:
        gltf = json.loads(chunks[_JSON].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: corrupt GLB file: the JSON chunk does not parse ({error})") \
            from error
    if not isinstance(gltf, dict):
        raise ValueError(f"{path}: corrupt GLB file: the JSON chunk is not an object")
    return gltf, chunks.get(_BIN, b"")


def _splat_primitive(path: str | os.PathLike, gltf: dict) -> tuple[dict, dict]:
    """The first mesh primitive carrying the extension, and a node that uses its mesh."""
    try:
        for mesh_index, mesh in enumerate(gltf.get("meshes", [])):
            for primitive in mesh["primitives"]:
                if EXTENSION in primitive.get("extensions", {}):
                    nodes = [n for n in gltf.get("nodes", []) if n.get("mesh") == mesh_index]
                    return primitive, nodes[0] if nodes else {}
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{path}: corrupt glTF JSON: malformed meshes ({error})") from error
    raise ValueError(f"{path}: no mesh primitive with the {EXTENSION} extension (not a Gaussian "
                     f"splat glTF file)")


def _accessor(path: str | os.PathLike, gltf: dict, binary: bytes, index: int,
              kind: str) -> np.ndarray:
    """[count, width] float64 values of accessor `index` (normalised integers to -1..1 / 0..1)."""
    try:
        accessor = gltf["accessors"][index]
        view = gltf["bufferViews"][accessor["bufferView"]]
        dtype = np.dtype(_COMPONENTS[accessor["componentType"]]).newbyteorder("<")
        count, width = int(accessor["count"]), _WIDTH[accessor["type"]]
        if accessor["type"] != kind:
            raise ValueError(f"type {accessor['type']}, expected {kind}")
        if view.get("buffer", 0) != 0 or "uri" in gltf["buffers"][0]:
            raise ValueError("data in an external buffer, expected the GLB's BIN chunk")
        start = int(view.get("byteOffset", 0)) + int(accessor.get("byteOffset", 0))
        stride = int(view.get("byteStride", dtype.itemsize * width))
        end = int(view.get("byteOffset", 0)) + int(view["byteLength"])
        last = start + stride * (count - 1) + dtype.itemsize * width
        if count and last > min(end, len(binary)):
            raise ValueError("it runs past its buffer view or the BIN chunk")
    except ValueError as error:
        raise ValueError(f"{path}: accessor {index}: {error}") from error
    except (KeyError, IndexError, TypeError) as error:
        raise ValueError(f"{path}: corrupt glTF JSON: accessor {index} is malformed "
                         f"({error!r})") from error
    rows = np.ndarray((count, width), dtype=dtype, buffer=binary, offset=start,
                      strides=(stride, dtype.itemsize)).astype(np.float64)
    if accessor.get("normalized") and dtype.kind in "iu":
        rows = np.maximum(rows / np.iinfo(dtype).max, -1.0)
    return rows
