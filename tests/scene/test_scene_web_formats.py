"""The web scene formats (.compressed.ply, .spz, .sog, .glb, .splat) against an independent
implementation, PlayCanvas's `@playcanvas/splat-transform` (npm; `.ci/run` installs it into
.tools/node): every file we write, it reads, and its PLY equals our scene within the format's
quantisation; every file it writes from our PLY, we read, likewise. Then our own round trips
keep what each format holds (SH degree, antialiased flag) and refuse bad files in one line."""
import gzip
import shutil
import subprocess
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, missing_prerequisite
from scipy.spatial import cKDTree
from synthetic_scenes import random_scene

from taichi_3dgs.color_model import SH_C0
from taichi_3dgs.rotations import quaternion_to_rotation_matrix
from taichi_3dgs.scene.io import read_scene, write_scene
from taichi_3dgs.scene.ply import read_ply, write_ply

_LOCAL_TOOL = REPO_ROOT / ".tools" / "node" / "node_modules" / ".bin" / "splat-transform"

# Largest error each format may leave on `oracle_scene` (positions within +-40 units, log scales
# about -2 +- 1, DC colours inside 0..1, higher SH within +-0.9), from its quantisation steps:
# position in scene units; covariance as |d Sigma|_F / |Sigma|_F; opacity and DC colour in 0..1;
# higher SH bands per coefficient (None: the format drops them).
TOLERANCE = {
    # 11/10/11 bits over a 256-Gaussian chunk's range (~80 units), 11 bits of log scale, 10-bit
    # quaternions, 8-bit colour over the chunk's range, 8 bits over SH -4..4 (step 1/32).
    ".compressed.ply": dict(position=0.06, covariance=0.02, opacity=0.0025, colour=0.005, sh=0.02),
    # 1/4096-unit positions, log scale steps of 1/16, 9-bit quaternions, colour steps of
    # 1/(0.15 * 255) in DC, SH steps of 8/128 (band 1) and 16/128 (bands 2, 3).
    ".spz": dict(position=2e-4, covariance=0.07, opacity=0.0025, colour=0.004, sh=0.07),
    # 16-bit log-encoded positions, 256-entry codebooks for log scales and DC colours (up to
    # 0.05 in log scale at the sparse tails of 900 values), 8-bit quaternions; 300 SH vectors
    # clustered into a 256-entry palette (k-means: random vectors sharing an entry differ by up
    # to ~0.75; `test_sog_palette_is_exact_up_to_its_codebook_when_every_gaussian_has_an_entry`).
    ".sog": dict(position=0.005, covariance=0.15, opacity=0.0025, colour=0.006, sh=0.8),
    # float32 throughout (exp / log / sigmoid rounding only).
    ".glb": dict(position=1e-5, covariance=1e-5, opacity=1e-6, colour=1e-6, sh=1e-6),
    # float32 positions and scales, 8-bit colour, opacity and quaternion; DC colour only.
    ".splat": dict(position=1e-5, covariance=0.04, opacity=0.0025, colour=0.0025, sh=None),
}


@pytest.fixture(scope="module")
def splat_transform():
    """Run splat-transform `source` -> `target` (flags before the files); fails with its stderr."""
    tool = _LOCAL_TOOL if _LOCAL_TOOL.exists() else shutil.which("splat-transform")
    if tool is None:
        missing_prerequisite("PlayCanvas's splat-transform is not installed (expected "
                             f"{_LOCAL_TOOL} or splat-transform on PATH; install it with "
                             "`npm install --prefix .tools/node @playcanvas/splat-transform`, "
                             "as .ci/run does)")

    def run(source, target, *flags):
        result = subprocess.run([str(tool), "-q", "-w", *flags, str(source), str(target)],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0 and target.exists(), result.stderr
    return run


@pytest.fixture(scope="module")
def oracle_scene():
    """300 Gaussians (two compressed-PLY chunks) of SH degree 3 inside every format's range."""
    scene = random_scene(num_gaussians=300, sh_degree=3, seed=7)
    generator = torch.Generator().manual_seed(8)
    sh = scene.sh_coeffs.clone()
    sh[:, 0] = (torch.rand(300, 3, generator=generator) - 0.5) * 3.4  # colours 0.02..0.98
    sh[:, 1:] = sh[:, 1:].clamp(-0.9, 0.9)
    return replace(scene, means=scene.means.clamp(-40, 40), sh_coeffs=sh)


def _covariances(scene):
    rotation = quaternion_to_rotation_matrix(
        torch.nn.functional.normalize(scene.quats.double(), dim=1))
    scales = torch.exp(scene.log_scales.double())
    return rotation @ torch.diag_embed(scales ** 2) @ rotation.transpose(1, 2)


def _errors(actual, expected):
    """Largest error per quantity (TOLERANCE's units) of `actual` against `expected`, row by row."""
    covariance_a, covariance_e = _covariances(actual), _covariances(expected)
    errors = {
        "position": (actual.means - expected.means).abs().max(),
        "covariance": ((covariance_a - covariance_e).flatten(1).norm(dim=1)
                       / covariance_e.flatten(1).norm(dim=1)).max(),
        "opacity": (torch.sigmoid(actual.opacity_logits.double())
                    - torch.sigmoid(expected.opacity_logits.double())).abs().max(),
        "colour": SH_C0 * (actual.sh_coeffs[:, 0] - expected.sh_coeffs[:, 0]).abs().max(),
        "sh": (actual.sh_coeffs[:, 1:] - expected.sh_coeffs[:, 1:]).abs().max(),
    }
    return {name: float(value) for name, value in errors.items()}


def assert_within(actual, expected, suffix):
    tolerance = TOLERANCE[suffix]
    if tolerance["sh"] is None:
        assert actual.sh_degree == 0
        expected = replace(expected, sh_coeffs=torch.cat(
            [expected.sh_coeffs[:, :1], torch.zeros_like(expected.sh_coeffs[:, 1:])], dim=1))
    errors = _errors(actual, expected)
    limits = {name: limit for name, limit in tolerance.items() if limit is not None}
    assert all(errors[name] <= limit for name, limit in limits.items()), f"{errors} {limits}"


def _rows(scene, order):
    order = torch.as_tensor(order, dtype=torch.long)
    return replace(scene, **{name: getattr(scene, name)[order] for name in
                             ("means", "quats", "log_scales", "opacity_logits", "sh_coeffs")})


def _matched(actual, expected):
    """`expected`'s rows in `actual`'s order, matched by nearest position (a writer that sorts
    Gaussians, as splat-transform's Morton order, keeps no index)."""
    _, index = cKDTree(expected.means.double().numpy()).query(actual.means.double().numpy())
    assert len(set(index.tolist())) == len(index)  # one to one
    return _rows(expected, index)


@pytest.mark.parametrize("suffix", [".compressed.ply", ".spz", ".sog", ".splat"])
def test_splat_transform_reads_our_file_as_we_do(splat_transform, oracle_scene, tmp_path, suffix):
    ours = tmp_path / f"ours{suffix}"
    order = write_scene(ours, oracle_scene)
    splat_transform(ours, tmp_path / "theirs.ply")
    theirs = read_ply(tmp_path / "theirs.ply")
    expected = oracle_scene if order is None else _rows(oracle_scene, order)
    assert_within(theirs, expected, suffix)
    # The two decoders agree to float32 rounding; for .splat splat-transform decodes quaternion
    # bytes as b / 127.5 - 1, antimatter15's viewer (and we) as (b - 128) / 128.
    agreement = _errors(theirs, read_scene(ours))
    assert agreement["position"] <= 1e-5 * 40
    assert agreement["covariance"] <= (0.03 if suffix == ".splat" else 1e-5)
    assert agreement["colour"] <= 1e-6 and agreement["opacity"] <= 1e-6


@pytest.mark.parametrize("suffix, flags", [(".compressed.ply", ()),
                                           (".spz", ("--spz-version", "3")),
                                           (".sog", ("-g", "cpu")), (".glb", ())])
def test_we_read_the_file_splat_transform_writes(splat_transform, oracle_scene, tmp_path, suffix,
                                                 flags):
    write_ply(tmp_path / "ours.ply", oracle_scene)
    splat_transform(tmp_path / "ours.ply", tmp_path / f"theirs{suffix}", *flags)
    theirs = read_scene(tmp_path / f"theirs{suffix}")
    assert theirs.num_gaussians == 300 and theirs.sh_degree == 3
    tolerance = dict(TOLERANCE[suffix])
    if suffix == ".sog":
        # Its opacity bytes truncate (255 * sigmoid, not rounded); its SH palette comes from a
        # randomly started k-means, so the SH bands are checked against its own decoding.
        tolerance.update(opacity=1 / 255 + 1e-6, sh=float("inf"))
        splat_transform(tmp_path / f"theirs{suffix}", tmp_path / "theirs_decoded.ply")
        agreement = _errors(theirs, read_ply(tmp_path / "theirs_decoded.ply"))
        assert all(value <= 1e-5 for value in agreement.values()), agreement
    errors = _errors(theirs, _matched(theirs, oracle_scene))
    assert all(errors[name] <= limit for name, limit in tolerance.items()), f"{errors} {tolerance}"


@pytest.mark.parametrize("suffix", [".compressed.ply", ".spz", ".sog", ".glb"])
def test_round_trip_keeps_sh_degree_and_antialiased_flag(oracle_scene, tmp_path, suffix):
    for degree, antialiased in [(1, True), (2, False), (0, True)]:
        sh = oracle_scene.sh_coeffs.clone()
        sh[:, (degree + 1) ** 2:] = 0.0
        scene = replace(oracle_scene, sh_coeffs=sh, sh_degree=degree, antialiased=antialiased)
        path = tmp_path / f"d{degree}{suffix}"
        order = write_scene(path, scene)
        back = read_scene(path)
        assert (back.sh_degree, back.antialiased) == (degree, antialiased)
        assert_within(back, scene if order is None else _rows(scene, order), suffix)


def test_sog_palette_is_exact_up_to_its_codebook_when_every_gaussian_has_an_entry(oracle_scene,
                                                                                tmp_path):
    scene = _rows(oracle_scene, torch.arange(256))  # the palette for N <= 1024 has 256 entries
    order = write_scene(tmp_path / "a.sog", scene)
    errors = _errors(read_scene(tmp_path / "a.sog"), _rows(scene, order))
    # A 256-entry codebook over 256 x 45 values in -0.9..0.9: entries 0.06 apart at the tails.
    assert errors["sh"] <= 0.04


@pytest.mark.parametrize("suffix", [".compressed.ply", ".spz", ".sog", ".glb"])
def test_nearly_transparent_gaussians_keep_their_colour(oracle_scene, tmp_path, suffix):
    # An opacity byte of 0 is a WebP alpha of 0 in SOG's sh0.webp, whose RGB a lossy-alpha
    # encoder may discard: the writer must keep them exactly.
    scene = replace(oracle_scene, opacity_logits=torch.full_like(oracle_scene.opacity_logits, -9.0))
    order = write_scene(tmp_path / f"clear{suffix}", scene)
    back = read_scene(tmp_path / f"clear{suffix}")
    expected = scene if order is None else _rows(scene, order)
    assert _errors(back, expected)["colour"] <= TOLERANCE[suffix]["colour"]


def test_splat_round_trip_keeps_the_dc_colour_and_warns_about_the_flag(oracle_scene, tmp_path):
    with pytest.warns(UserWarning, match=r"cannot record"):
        order = write_scene(tmp_path / "a.splat", replace(oracle_scene, antialiased=True))
    back = read_scene(tmp_path / "a.splat")
    assert not back.antialiased
    assert_within(back, _rows(oracle_scene, order), ".splat")


@pytest.mark.parametrize("suffix", [".compressed.ply", ".spz", ".sog", ".glb", ".splat"])
def test_empty_scene_round_trips(tmp_path, suffix):
    write_scene(tmp_path / f"empty{suffix}", random_scene(num_gaussians=0, sh_degree=0))
    assert read_scene(tmp_path / f"empty{suffix}").num_gaussians == 0


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2 + 3])
    return "truncated|end-of-file|unexpected end|not a readable|not a whole number|corrupt"


def _foreign(path):
    path.write_bytes(b"ply\nformat ascii 1.0\nelement face 1\nproperty uchar n\nend_header\n3\n"
                     if path.suffix != ".ply" else b"PK\x03\x04 not a ply" * 8)
    return "not a|no 'vertex'|no 'chunk'|expected|implausible"


def _corrupt(path):
    if path.suffix == ".spz":
        data = bytearray(gzip.decompress(path.read_bytes()))
        data[4] = 9  # version
        path.write_bytes(gzip.compress(bytes(data)))
        return r"\.spz version 9, expected 2 or 3"
    if path.suffix == ".sog":
        with zipfile.ZipFile(path, "a") as bundle:
            bundle.writestr("quats.webp", b"RIFF....WEBPVP8L broken")
        return "not a readable WebP image|duplicate"
    if path.suffix == ".glb":
        data = bytearray(path.read_bytes())
        data[20:24] = b"{{{{"  # the JSON chunk's first bytes
        path.write_bytes(bytes(data))
        return "JSON chunk does not parse"
    data = bytearray(path.read_bytes())
    cut = data.index(b"end_header\n") + len(b"end_header\n") if b"end_header" in data else 0
    data[cut:cut + 4] = np.array([np.nan], dtype="<f4").tobytes()  # first chunk's min_x
    path.write_bytes(bytes(data))
    return "non-finite|expected a finite"


@pytest.mark.parametrize("damage", [_truncate, _foreign, _corrupt])
@pytest.mark.parametrize("suffix", [".compressed.ply", ".spz", ".sog", ".glb", ".splat"])
def test_bad_file_is_refused_in_one_line_naming_it(oracle_scene, tmp_path, suffix, damage):
    path = tmp_path / f"bad{suffix}"
    write_scene(path, oracle_scene)
    if damage is _corrupt and suffix == ".splat":
        data = bytearray(path.read_bytes())
        data[12:16] = np.array([-1.0], dtype="<f4").tobytes()  # a negative scale
        path.write_bytes(bytes(data))
        expected = "expected finite positions and positive scales"
    else:
        expected = damage(path)
    with pytest.raises(ValueError, match=rf"bad{suffix.replace('.', '[.]')}: .*({expected})") \
            as error:
        read_scene(path)
    assert "\n" not in str(error.value)


def test_a_compressed_ply_named_ply_is_read_as_one(oracle_scene, tmp_path):
    order = write_scene(tmp_path / "a.compressed.ply", oracle_scene)
    (tmp_path / "a.compressed.ply").rename(tmp_path / "plain.ply")
    assert_within(read_scene(tmp_path / "plain.ply"), _rows(oracle_scene, order), ".compressed.ply")


def test_spz_version_4_is_refused_saying_how_to_get_version_3(splat_transform, oracle_scene,
                                                              tmp_path):
    write_ply(tmp_path / "ours.ply", oracle_scene)
    splat_transform(tmp_path / "ours.ply", tmp_path / "v4.spz")  # its default version
    with pytest.raises(ValueError, match=r"v4\.spz: an SPZ version-4 .* --spz-version 3"):
        read_scene(tmp_path / "v4.spz")


def test_spz_version_2_with_first_three_quaternions_is_read(oracle_scene, tmp_path):
    # Version 2 stores x, y, z of the unit quaternion with w >= 0 as q * 127.5 + 127.5 (3 bytes,
    # Niantic load-spz.cc packQuaternionFirstThree, in its RUB frame: y and z negated).
    write_scene(tmp_path / "v3.spz", oracle_scene)
    data = bytearray(gzip.decompress((tmp_path / "v3.spz").read_bytes()))
    n = oracle_scene.num_gaussians
    rotations_at = 16 + (9 + 1 + 3 + 3) * n
    quats = torch.nn.functional.normalize(oracle_scene.quats.double(), dim=1).numpy()
    quats *= np.where(quats[:, :1] < 0, -1.0, 1.0)
    xyz = quats[:, 1:] * np.array([1.0, -1.0, -1.0])
    first_three = np.clip(np.round(xyz * 127.5 + 127.5), 0, 255).astype(np.uint8).tobytes()
    data[4] = 2
    data[rotations_at:rotations_at + 4 * n] = first_three
    (tmp_path / "v2.spz").write_bytes(gzip.compress(bytes(data)))
    back = read_scene(tmp_path / "v2.spz")
    # The spec's decoding: xyz = b / 127.5 - 1, w = sqrt(1 - |xyz|^2), turned back to y down.
    stored = np.frombuffer(first_three, dtype=np.uint8).reshape(n, 3) / 127.5 - 1.0
    expected = np.concatenate([np.sqrt(np.maximum(0, 1 - (stored ** 2).sum(1)))[:, None],
                               stored * np.array([1.0, -1.0, -1.0])], axis=1)
    np.testing.assert_allclose(back.quats.double().numpy(), expected, atol=1e-6)
    assert_within(replace(back, quats=oracle_scene.quats), oracle_scene, ".spz")


def _glb(path, attributes):
    """A minimal GLB of one KHR_gaussian_splatting primitive: {name: (array, componentType,
    normalized)}, arrays of the accessor's element type, tightly packed."""
    import json
    import struct
    kinds = {1: "SCALAR", 3: "VEC3", 4: "VEC4"}
    views, accessors, blob = [], [], b""
    for index, (name, (values, component, normalized)) in enumerate(attributes.items()):
        data = values.tobytes() + b"\0" * (-values.nbytes % 4)
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": values.nbytes})
        accessors.append({"bufferView": index, "componentType": component, "count": len(values),
                          "type": kinds[values.shape[1]], "normalized": normalized})
        blob += data
    gltf = {"asset": {"version": "2.0"}, "buffers": [{"byteLength": len(blob)}],
            "bufferViews": views, "accessors": accessors, "nodes": [{"mesh": 0}],
            "meshes": [{"primitives": [{"mode": 0, "attributes": {
                name: i for i, name in enumerate(attributes)},
                "extensions": {"KHR_gaussian_splatting": {"kernel": "ellipse"}}}]}]}
    text = json.dumps(gltf).encode()
    text += b" " * (-len(text) % 4)
    path.write_bytes(struct.pack("<III", 0x46546C67, 2, 28 + len(text) + len(blob))
                     + struct.pack("<II", len(text), 0x4E4F534A) + text
                     + struct.pack("<II", len(blob), 0x004E4942) + blob)


def test_glb_with_quantised_rotation_and_opacity_accessors_is_read(tmp_path):
    # The extension allows normalised signed short rotations and unsigned byte opacities.
    rng = np.random.default_rng(3)
    quats = rng.normal(size=(40, 4))
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    opacity = rng.uniform(0.05, 0.95, size=(40, 1))
    _glb(tmp_path / "q.glb", {
        "POSITION": (rng.normal(size=(40, 3)).astype("<f4"), 5126, False),
        "KHR_gaussian_splatting:ROTATION": (np.round(quats * 32767).astype("<i2"), 5122, True),
        "KHR_gaussian_splatting:SCALE": (rng.uniform(0.1, 1, size=(40, 3)).astype("<f4"), 5126,
                                         False),
        "KHR_gaussian_splatting:OPACITY": (np.round(opacity * 255).astype("u1"), 5121, True),
        "KHR_gaussian_splatting:SH_DEGREE_0_COEF_0": (np.zeros((40, 3), "<f4"), 5126, False),
    })
    back = read_scene(tmp_path / "q.glb")
    xyzw = torch.nn.functional.normalize(back.quats.double(), dim=1)[:, [1, 2, 3, 0]].numpy()
    turned = quats * np.array([-1.0, -1.0, 1.0, 1.0])  # glTF's +Y up back to the PLY frame
    assert np.abs(np.abs((xyzw * turned).sum(1)) - 1).max() < 1e-8
    np.testing.assert_allclose(torch.sigmoid(back.opacity_logits.double()).numpy(),
                               np.round(opacity[:, 0] * 255) / 255, atol=1e-6)
    assert back.sh_degree == 0
