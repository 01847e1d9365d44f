"""tools/prepare_images.py against known COLMAP models (not a test): pose errors and stage times.

Runs structure from motion on the images of a shared COLMAP scene (every `--every`-th image) or on
colmap_beer_can's source video, then compares the registered cameras with the scene's own model
after the similarity alignment of `taichi_3dgs.data.pose_alignment`: rotation
error in degrees, camera-centre error as a fraction of the reference cameras' scene extent (the
trainer's `scene_extent`). Video frames fall between the model's frames (every 10th frame of the
video): their reference pose is interpolated, centres linearly and rotations by slerp.

    python benchmarks/structure_from_motion.py --scene colmap_desk --every 3 --max_image_size 400
    python benchmarks/structure_from_motion.py --scene colmap_beer_can --video --num_frames 24

Figures: BENCHMARKS.md "Structure from motion".
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from taichi_3dgs.data.cameras import CameraRecord, read_cameras_json  # noqa: E402
from taichi_3dgs.data.colmap import camera_to_world, read_colmap_model  # noqa: E402
from taichi_3dgs.data.pose_alignment import agreeing_similarity, apply_similarity, pose_errors  # noqa: E402
from taichi_3dgs.training.dataset import scene_extent  # noqa: E402

# ../shared/datasets beside the checkout, as tests/conftest.py finds it
DATASETS = Path(os.environ.get("TAICHI_3DGS_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
OUTLIER_DEGREES, OUTLIER_EXTENT = 5.0, 0.1
BEER_FRAME_STRIDE = 10
"""colmap_beer_can's images are every 10th frame of its video (PROVENANCE.md)."""


def model_poses(model_dir: Path) -> dict[str, np.ndarray]:
    """Image name -> [4, 4] camera-to-world pose (OpenCV axes) of a COLMAP model's registered images."""
    reconstruction = read_colmap_model(model_dir)
    return {image.name: camera_to_world(image) for image in reconstruction.images.values() if image.has_pose}


def _record(name: str, pose: np.ndarray) -> CameraRecord:
    return CameraRecord(image_path=Path("/") / name, K=np.eye(3), T_pointcloud_camera=pose, width=1, height=1)


def video_reference(poses: dict[str, np.ndarray], frame: int) -> np.ndarray | None:
    """The pose of video frame `frame` interpolated between the model images (named 0000.jpg, ...,
    every BEER_FRAME_STRIDE-th frame) before and after it; None outside the model's frames."""
    before, after = frame // BEER_FRAME_STRIDE, -(-frame // BEER_FRAME_STRIDE)
    names = f"{before:04d}.jpg", f"{after:04d}.jpg"
    if not all(name in poses for name in names):
        return None
    weight = (frame - before * BEER_FRAME_STRIDE) / BEER_FRAME_STRIDE
    ends = [poses[name] for name in names]
    pose = np.eye(4)
    pose[:3, :3] = Slerp([0.0, 1.0], Rotation.from_matrix([T[:3, :3] for T in ends]))(weight).as_matrix()
    pose[:3, 3] = (1 - weight) * ends[0][:3, 3] + weight * ends[1][:3, 3]
    return pose


def compare(output_dir: Path, reference: dict[str, np.ndarray], video: bool) -> dict:
    """Median / max rotation error (degrees) and centre error (fraction of the reference's scene
    extent of the agreeing reference cameras) of the cameras in output_dir's train.json + val.json
    after alignment.

    The alignment is repeated on the cameras within OUTLIER_DEGREES and OUTLIER_EXTENT of the
    reference (a camera registered in a wrong place would otherwise drag every other one); the
    figures are those of the agreeing cameras, and `disagree` names the others."""
    records = read_cameras_json(output_dir / "train.json") + read_cameras_json(output_dir / "val.json")
    ours, truth = [], []
    for record in records:
        name = record.image_path.name
        if video:
            frame = int(re.search(r"(\d+)", name).group(1))
            pose = video_reference(reference, frame)
        else:
            pose = reference.get(name)
        if pose is not None:
            ours.append(record)
            truth.append(_record(name, pose))
    extent = scene_extent(truth)
    similarity, inliers = agreeing_similarity(ours, truth, OUTLIER_DEGREES, OUTLIER_EXTENT * extent)
    aligned = apply_similarity(ours, *similarity)
    rotation, centre = pose_errors([aligned[i] for i in inliers], [truth[i] for i in inliers])
    extent = scene_extent([truth[i] for i in inliers])
    return {"cameras": len(ours), "agree": len(inliers), "disagree": sorted(ours[i].image_path.name for i in
                                                                          set(range(len(ours))) - set(inliers)),
            "rotation_median_deg": float(np.median(rotation)), "rotation_max_deg": float(rotation.max()),
            "centre_median": float(np.median(centre) / extent), "centre_max": float(centre.max() / extent)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--scene", default="colmap_desk", help="folder of ../shared/datasets with sparse/0")
    parser.add_argument("--every", type=int, default=1, help="photos: use every n-th image by name")
    parser.add_argument("--video", action="store_true", help="run on <scene>/video/*.mp4 instead of the images")
    parser.add_argument("--num_frames", type=int, default=24, help="video: frames kept")
    parser.add_argument("--fps", type=float, help="video: frames kept per second, instead of --num_frames")
    parser.add_argument("--max_image_size", type=int, default=400, help="as prepare_images.py")
    parser.add_argument("--camera_model", default="SIMPLE_RADIAL", help="as prepare_images.py")
    args = parser.parse_args()
    from taichi_3dgs.data.capture import prepare_capture
    from taichi_3dgs.data.structure_from_motion import SfmOptions, quiet_colmap

    quiet_colmap()
    scene = DATASETS / args.scene
    reference = model_poses(scene / "sparse" / "0")
    options = SfmOptions(camera_model=args.camera_model, max_image_size=args.max_image_size)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        start = time.perf_counter()
        if args.video:
            result = prepare_capture(work / "out", video=next((scene / "video").glob("*.mp4")),
                                     fps=args.fps, num_frames=None if args.fps else args.num_frames,
                                     options=options)
        else:
            photos = work / "photos"
            photos.mkdir()
            for path in sorted((scene / "images").iterdir())[::args.every]:
                (photos / path.name).symlink_to(path)
            result = prepare_capture(work / "out", images=photos, options=options)
        seconds = time.perf_counter() - start
        print("\n".join(result.messages))
        figures = compare(work / "out", reference, args.video)
    others = ", ".join(figures["disagree"]) or "none"
    print(f"{args.scene}{' video' if args.video else ''}: {seconds:.1f} s in all; {figures['cameras']} cameras "
          f"compared, {figures['agree']} agree with the reference (others: {others}): "
          f"rotation error median {figures['rotation_median_deg']:.3f} deg, max "
          f"{figures['rotation_max_deg']:.3f} deg; centre error median {100 * figures['centre_median']:.3f} %, "
          f"max {100 * figures['centre_max']:.3f} % of the scene extent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
