"""Give every image of a prepared camera JSON a random exposure (not a test).

The exposure-compensation benchmark of BENCHMARKS.md: for each record of `--cameras` the image is
read, each pixel colour c (in [0, 1]) becomes clip(g * w * c + o, 0, 1) with a per-image gain
g ~ U(1 - `--gain_spread`, 1 + `--gain_spread`), a per-image, per-channel white balance
w ~ U(1 - `--white_balance_spread`, 1 + `--white_balance_spread`)^3 and a per-image offset
o ~ U(-`--offset_spread`, `--offset_spread`) (numpy's generator seeded with `--seed`), and is written
as a lossless PNG to `--output_dir/images/`; `--output_dir/train.json` names these copies (poses
and intrinsics unchanged) and `--output_dir/exposures.json` the (g * w, o) of each image.
Validation images are left as they are: train on this JSON with the original val.json.

    python benchmarks/perturb_exposure.py --cameras data/colmap_desk/train.json \\
        --output_dir data/colmap_desk_exposure
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from taichi_3dgs.atomic_io import atomic_path, write_text_atomic  # noqa: E402
from taichi_3dgs.data.cameras import read_cameras_json, write_cameras_json  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--cameras", type=Path, required=True, help="camera JSON whose images to modify")
    parser.add_argument("--output_dir", type=Path, required=True, help="folder to write (must not exist)")
    parser.add_argument("--gain_spread", type=float, default=0.3, help="gain g ~ U(1 - s, 1 + s) per image")
    parser.add_argument("--white_balance_spread", type=float, default=0.1,
                        help="per-channel factor w ~ U(1 - s, 1 + s) per image")
    parser.add_argument("--offset_spread", type=float, default=0.05, help="offset o ~ U(-s, s) per image")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random exposures")
    args = parser.parse_args()
    if args.output_dir.exists():
        parser.error(f"{args.output_dir} already exists; choose another --output_dir")
    records = read_cameras_json(args.cameras)
    rng = np.random.default_rng(args.seed)
    modified, exposures = [], {}
    for record in records:
        gain = rng.uniform(1 - args.gain_spread, 1 + args.gain_spread) * rng.uniform(
            1 - args.white_balance_spread, 1 + args.white_balance_spread, size=3)
        offset = rng.uniform(-args.offset_spread, args.offset_spread)
        image = Image.open(record.image_path)
        rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
        out = np.clip(rgb * gain + offset, 0.0, 1.0)
        path = args.output_dir / "images" / (record.image_path.stem + ".png")
        with atomic_path(path) as tmp:
            Image.fromarray(np.round(out * 255.0).astype(np.uint8)).save(tmp, format="PNG")
        modified.append(dataclasses.replace(record, image_path=path))
        exposures[path.name] = {"gain": gain.tolist(), "offset": offset}
    write_cameras_json(args.output_dir / "train.json", modified)
    write_text_atomic(args.output_dir / "exposures.json", json.dumps(exposures, indent=1) + "\n")
    gains = np.array([e["gain"] for e in exposures.values()])
    print(f"wrote {len(modified)} images to {args.output_dir / 'images'} (gains {gains.min():.3f}..{gains.max():.3f}) "
          f"and {args.output_dir / 'train.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
