"""Structure from motion with pycolmap: feature extraction, matching and incremental mapping.

The three stages of COLMAP's pipeline (Schoenberger and Frahm, "Structure-from-Motion Revisited",
CVPR 2016) run on the CPU through pycolmap and write into one work folder:

    <work_dir>/database.db   COLMAP's database: cameras, images, SIFT features, matches
    <work_dir>/stages.json   each stage's settings and whether it finished
    <work_dir>/sparse/0/     the largest model (cameras/images/points3D.bin)

Each stage runs in a worker thread that a pycolmap CancellationToken stops on Ctrl-C (pycolmap
itself ignores SIGINT), in chunks of images or pairs so that a progress bar can count them: the
database must not be read while pycolmap writes it (COLMAP aborts on a locked database). A stage
that finished with the same settings is reused; an interrupted one continues where it stopped,
since COLMAP skips images whose features and pairs whose matches the database already holds.
"""
from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pycolmap
from tqdm import tqdm

from taichi_3dgs.atomic_io import write_text_atomic
from taichi_3dgs.data.converter_options import DEFAULT_MAX_IMAGE_SIZE, DEFAULT_SFM_CAMERA_MODEL

DATABASE = "database.db"
STAGES_JSON = "stages.json"
MODEL_DIR = Path("sparse") / "0"
STAGES = ("extraction", "matching", "mapping")
# COLMAP keeps a second, disconnected model only from 10 images on and counts the images of a
# smaller one as unregistered; from 3 on the summary can name them as a separate model.
MIN_MODEL_SIZE = 3
EXTRACTION_CHUNK = 8
MATCHING_CHUNK = 64


@dataclass(frozen=True)
class SfmOptions:
    """The choices of a structure-from-motion run.

    Attributes:
        camera_model: COLMAP camera model name (SIMPLE_RADIAL, OPENCV, ...).
        single_camera: one camera shared by every image (all images must have one size), else one
            camera per image; None: chosen by taichi_3dgs.data.capture (by the images' sizes).
        max_image_size: longest image side in pixels for feature extraction (images are
            downscaled for it; the model keeps the full size).
        matcher: "auto" (chosen by taichi_3dgs.data.capture), "exhaustive" (every pair),
            "sequential" (each image with its `overlap` successors by name and the images 2^k
            after it) or "vocab_tree" (retrieval with `vocab_tree`).
        overlap: successors matched by the sequential matcher.
        vocab_tree: COLMAP vocabulary tree file for "vocab_tree".
    """

    camera_model: str = DEFAULT_SFM_CAMERA_MODEL
    single_camera: bool | None = None
    max_image_size: int = DEFAULT_MAX_IMAGE_SIZE
    matcher: str = "auto"
    overlap: int = 10
    vocab_tree: str | None = None


@dataclass
class SfmResult:
    """What `run_structure_from_motion` made.

    Attributes:
        model_dir: the folder of the kept (largest) model.
        num_images: images given.
        registered: names of the images registered in the kept model, sorted.
        unregistered: names of the others, sorted.
        num_models: models the mapper made (the others are dropped).
        left_out: images registered only in a dropped model, sorted.
        num_points: 3D points of the kept model.
        seconds: time spent per stage (0 for a reused stage).
        reused: the stages reused from an earlier run.
    """

    model_dir: Path
    num_images: int
    registered: list[str]
    unregistered: list[str]
    num_models: int
    left_out: list[str]
    num_points: int
    seconds: dict[str, float] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)


def run_cancellable(call: Callable[[pycolmap.CancellationToken], Any]) -> Any:
    """Run `call(token)` in a worker thread; on Ctrl-C cancel the token, wait, re-raise.

    Returns:
        What `call` returned.

    Raises:
        KeyboardInterrupt: Ctrl-C (once pycolmap stopped).
        ValueError: pycolmap raised RuntimeError or ValueError (its message kept).
        Whatever else `call` raised.
    """
    token = pycolmap.CancellationToken()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = call(token)
        except BaseException as error:  # noqa: BLE001 (handed to the calling thread)
            outcome["error"] = error

    thread = threading.Thread(target=work, name="pycolmap", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
    except KeyboardInterrupt:
        token.cancel()
        thread.join()
        raise
    error = outcome.get("error")
    if isinstance(error, (RuntimeError, ValueError)):
        raise ValueError(f"pycolmap: {' '.join(str(error).split())}") from None
    if error is not None:
        raise error
    return outcome.get("value")


def sequential_pairs(names: Sequence[str], overlap: int) -> list[tuple[str, str]]:
    """The pairs of COLMAP's sequential matcher with quadratic overlap: image i with images
    i + 1 .. i + overlap and i + 2^k for k < overlap, in the given (time) order."""
    pairs = set()
    for i in range(len(names)):
        for j in [i + k for k in range(1, overlap + 1)] + [i + 2 ** k for k in range(overlap)]:
            if j < len(names):
                pairs.add((i, j))
    return [(names[i], names[j]) for i, j in sorted(pairs)]


def _chunks(items: Sequence, size: int) -> list[Sequence]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def _bar(stage: str, total: int, unit: str) -> tqdm:
    return tqdm(total=total, desc=stage, unit=unit, disable=None, leave=True)


def _extract(work_dir: Path, image_dir: Path, names: Sequence[str], options: SfmOptions) -> None:
    """SIFT features of every image into the database, EXTRACTION_CHUNK images per call."""
    database = str(work_dir / DATABASE)
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = options.camera_model
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size = options.max_image_size
    mode = pycolmap.CameraMode.SINGLE if options.single_camera else pycolmap.CameraMode.PER_IMAGE
    with _bar("extraction", len(names), "image") as bar:
        for chunk in _chunks(list(names), EXTRACTION_CHUNK):
            if options.single_camera and (work_dir / DATABASE).is_file():
                # Each call makes its own reader: later chunks join the first chunk's camera.
                handle = pycolmap.Database.open(database)
                cameras = handle.read_all_cameras()
                handle.close()
                if cameras:
                    reader.existing_camera_id = cameras[0].camera_id
            run_cancellable(lambda token: pycolmap.extract_features(
                database, str(image_dir), image_names=list(chunk), camera_mode=mode, reader_options=reader,
                extraction_options=extraction, cancellation_token=token))
            bar.update(len(chunk))


def _match(work_dir: Path, names: Sequence[str], options: SfmOptions) -> None:
    """Match and verify image pairs into the database."""
    database = str(work_dir / DATABASE)
    if options.matcher == "vocab_tree":
        pairing = pycolmap.VocabTreePairingOptions()
        pairing.vocab_tree_path = str(options.vocab_tree)
        with _bar("matching", 1, "run") as bar:
            run_cancellable(lambda token: pycolmap.match_vocabtree(database, pairing_options=pairing,
                                                                   cancellation_token=token))
            bar.update(1)
        return
    if options.matcher == "sequential":
        pairs = sequential_pairs(names, options.overlap)
    else:
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    pair_list = work_dir / "pairs.txt"
    with _bar("matching", len(pairs), "pair") as bar:
        for chunk in _chunks(pairs, MATCHING_CHUNK):
            write_text_atomic(pair_list, "".join(f"{a} {b}\n" for a, b in chunk))
            pairing = pycolmap.ImportedPairingOptions()
            pairing.match_list_path = str(pair_list)
            run_cancellable(lambda token: pycolmap.match_image_pairs(database, pairing_options=pairing,
                                                                     cancellation_token=token))
            bar.update(len(chunk))
    pair_list.unlink()


def map_images(work_dir: Path, image_dir: Path, num_images: int,
               options: pycolmap.IncrementalPipelineOptions) -> tuple[list[pycolmap.Reconstruction], Path]:
    """Incremental mapping of work_dir/database.db into work_dir/mapping/<i> (emptied first), with a
    progress bar counting images; the models, most registered images first, and that scratch
    folder (the caller removes it).

    Raises:
        ValueError: pycolmap failed. KeyboardInterrupt: Ctrl-C (pycolmap stopped)."""
    scratch = work_dir / "mapping"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    with _bar("mapping", num_images, "image") as bar:
        models = run_cancellable(lambda token: pycolmap.incremental_mapping(
            str(work_dir / DATABASE), str(image_dir), str(scratch), options,
            initial_image_pair_callback=lambda: bar.update(2), next_image_callback=lambda: bar.update(1),
            cancellation_token=token))
    ordered = sorted(models.values(), key=lambda model: model.num_reg_images(), reverse=True)
    return ordered, scratch


def _read_stages(work_dir: Path) -> dict:
    try:
        return json.loads((work_dir / STAGES_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_stages(work_dir: Path, stages: dict) -> None:
    write_text_atomic(work_dir / STAGES_JSON, json.dumps(stages, indent=1) + "\n")


def _invalidate(work_dir: Path, stage: str) -> None:
    """Remove what `stage` and the stages after it wrote."""
    database = work_dir / DATABASE
    if stage == "extraction":
        database.unlink(missing_ok=True)
    elif stage == "matching" and database.is_file():
        handle = pycolmap.Database.open(str(database))
        handle.clear_matches()
        handle.clear_two_view_geometries()
        handle.close()
    shutil.rmtree(work_dir / "sparse", ignore_errors=True)


def _stage_settings(image_dir: Path, names: Sequence[str], options: SfmOptions) -> dict[str, dict]:
    files = [[name, (image_dir / name).stat().st_size, (image_dir / name).stat().st_mtime_ns] for name in names]
    extraction = {"image_dir": str(image_dir.resolve()), "images": files, "camera_model": options.camera_model,
                  "single_camera": options.single_camera, "max_image_size": options.max_image_size}
    matching = {"matcher": options.matcher, "overlap": options.overlap, "vocab_tree": options.vocab_tree}
    return {"extraction": extraction, "matching": matching, "mapping": {}}


def run_structure_from_motion(image_dir: Path, names: Sequence[str], work_dir: Path,
                              options: SfmOptions) -> SfmResult:
    """Extract, match and map the images `names` (relative to `image_dir`) in `work_dir`.

    Stages whose settings (image names, sizes and times, options) equal those recorded in
    `work_dir/stages.json` are reused; a changed stage is redone with the stages after it.

    Returns:
        The kept (largest) model's folder, registration and timing (see `SfmResult`).

    Raises:
        ValueError: no model could be made ("0 of N images registered", with what to try),
            pycolmap failed (its message), or options.single_camera / matcher are still undecided.
        KeyboardInterrupt: Ctrl-C; the finished stages and the database stay in `work_dir`.
    """
    if options.single_camera is None or options.matcher not in ("exhaustive", "sequential", "vocab_tree"):
        raise ValueError(f"single_camera {options.single_camera} and matcher {options.matcher!r}; expected True "
                         "or False and exhaustive, sequential or vocab_tree (taichi_3dgs.data.capture decides them)")
    work_dir.mkdir(parents=True, exist_ok=True)
    settings = _stage_settings(image_dir, names, options)
    stages = _read_stages(work_dir)
    for stage in STAGES:
        intact = stages.get(stage, {}).get("settings") == settings[stage]
        if not intact or (stage == "mapping" and not (work_dir / MODEL_DIR).is_dir()):
            _invalidate(work_dir, stage)
            stages = {kept: stages[kept] for kept in STAGES[:STAGES.index(stage)]}
            break
    result_models: list[pycolmap.Reconstruction] = []
    seconds: dict[str, float] = {}
    reused = []
    for stage in STAGES:
        if stages.get(stage, {}).get("done"):
            reused.append(stage)
            seconds[stage] = 0.0
            continue
        stages[stage] = {"settings": settings[stage], "done": False}
        _write_stages(work_dir, stages)
        start = time.perf_counter()
        if stage == "extraction":
            _extract(work_dir, image_dir, names, options)
        elif stage == "matching":
            _match(work_dir, names, options)
        else:
            result_models = _keep_largest(work_dir, image_dir, names)
        seconds[stage] = time.perf_counter() - start
        stages[stage]["done"] = True
        if stage == "mapping":
            stages[stage]["models"] = [sorted(image.name for image in model.images.values() if image.has_pose)
                                       for model in result_models]
        _write_stages(work_dir, stages)
    return _summarise(work_dir, names, stages["mapping"]["models"], seconds, reused)


def _keep_largest(work_dir: Path, image_dir: Path, names: Sequence[str]) -> list[pycolmap.Reconstruction]:
    """Map, write the largest model to work_dir/sparse/0 and return all models, largest first."""
    options = pycolmap.IncrementalPipelineOptions()
    options.min_model_size = MIN_MODEL_SIZE
    models, scratch = map_images(work_dir, image_dir, len(names), options)
    if not models or models[0].num_reg_images() == 0:
        shutil.rmtree(scratch, ignore_errors=True)
        raise ValueError(f"{image_dir}: 0 of {len(names)} images registered: no two images share enough "
                         "matched features to start a model. Try photos with more overlap (each part of the "
                         "object in 3 or more photos, 60-80 % overlap between neighbours), more texture and "
                         "even light, a larger --max_image_size, or --matcher exhaustive")
    target = work_dir / MODEL_DIR
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    models[0].write_binary(str(target))
    shutil.rmtree(scratch, ignore_errors=True)
    return models


def _summarise(work_dir: Path, names: Sequence[str], models: list[list[str]], seconds: dict[str, float],
               reused: list[str]) -> SfmResult:
    kept = set(models[0])
    others = set().union(*map(set, models[1:])) - kept
    reconstruction = pycolmap.Reconstruction(str(work_dir / MODEL_DIR))
    return SfmResult(model_dir=work_dir / MODEL_DIR, num_images=len(names), registered=sorted(kept),
                     unregistered=sorted(set(names) - kept), num_models=len(models), left_out=sorted(others),
                     num_points=reconstruction.num_points3D(), seconds=seconds, reused=reused)


def quiet_colmap(debug: bool = False) -> None:
    """COLMAP's log (glog, on stderr): errors only, everything under --debug."""
    pycolmap.logging.minloglevel = pycolmap.logging.INFO if debug else pycolmap.logging.ERROR
