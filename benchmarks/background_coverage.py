"""Background coverage: val PSNR / SSIM, Gaussians and minutes of one shipped config trained as
several variants side by side (not a test).

Each variant is a set of config overrides (the trainer's `--KEY VALUE` command-line syntax) on
--config, joined by '+': `baseline` (none), `view-volume` (`initial-points.random-in-view-volume`
--view_volume_points), `shell` (`initial-points.far-shell` --shell_points), `absgrad`
(`adaptive-controller-config.absgrad true`, threshold `absgrad-threshold`), e.g.
`view-volume+shell+absgrad`. Every run uses the config's schedule with `num-iterations` --steps
(default: the config's) and `image-downscale-factor` --image_downscale_factor (default: the
config's); further `--KEY VALUE` arguments are passed to every run as config overrides. The table
comes from each run's metrics.json (last evaluation on the val views; minutes of training).

    python benchmarks/background_coverage.py --config config/ngp_fox.yaml
    python benchmarks/background_coverage.py --config config/colmap_desk.yaml --steps 30000 \\
        --image_downscale_factor 1 --variants baseline view-volume+shell+absgrad \\
        --adaptive-controller-config.densify-until-iteration 15000

The config's data must be prepared first (each config/*.yaml says how). Outputs go to a temporary
folder removed at the end, or to --output_dir/<variant>/ when given (kept).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VARIANTS = ("baseline", "view-volume", "shell", "absgrad", "view-volume+shell", "view-volume+shell+absgrad")


def variant_overrides(variant: str, view_volume_points: int, shell_points: int) -> list[str]:
    """The config overrides of a '+'-joined variant name.

    Raises:
        ValueError: an unknown part (naming the known ones).
    """
    parts = {
        "baseline": [],
        "view-volume": ["--initial-points.random-in-view-volume", str(view_volume_points)],
        "shell": ["--initial-points.far-shell", str(shell_points)],
        "absgrad": ["--adaptive-controller-config.absgrad", "true"],
    }
    overrides: list[str] = []
    for part in variant.split("+"):
        if part not in parts:
            raise ValueError(f"unknown variant part {part!r} in {variant!r}; expected parts {', '.join(parts)} "
                             "joined by '+'")
        overrides += parts[part]
    return overrides


def train_variant(config: Path, out: Path, overrides: list[str]) -> dict:
    """Train `config` into `out` with `overrides`; return its metrics.json.

    Raises:
        RuntimeError: the trainer failed (with the end of its error output).
    """
    command = [sys.executable, str(REPO_ROOT / "gaussian_point_train.py"), "--train_config", str(config),
               "--output-model-dir", str(out), "--summary-writer-log-dir", str(out / "logs"),
               "--logging.progress-bar", "false", *overrides]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def table_row(variant: str, metrics: dict) -> str:
    """One markdown row: variant, val PSNR, val SSIM, Gaussians, minutes."""
    val = metrics["val"]
    psnr, ssim = (f"{val['psnr']:.2f}", f"{val['ssim']:.3f}") if val else ("-", "-")
    return f"| {variant} | {psnr} | {ssim} | {metrics['num_gaussians']:,} | {metrics['train_minutes']:.1f} |"


def parse_args(argv=None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                     epilog="Other --KEY VALUE arguments are config overrides for every run.",
                                     allow_abbrev=False)
    parser.add_argument("--config", type=Path, required=True, help="training config, e.g. config/ngp_fox.yaml")
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS),
                        help="variants: baseline, view-volume, shell, absgrad, or parts joined by '+'")
    parser.add_argument("--steps", type=int, default=None, help="num-iterations of every run (None: the config's)")
    parser.add_argument("--image_downscale_factor", type=int, default=None,
                        help="image-downscale-factor of every run (None: the config's)")
    parser.add_argument("--view_volume_points", type=int, default=20_000, help="initial-points.random-in-view-volume")
    parser.add_argument("--shell_points", type=int, default=20_000, help="initial-points.far-shell")
    parser.add_argument("--output_dir", type=Path, default=None,
                        help="keep each run in <output_dir>/<variant> (None: a temporary folder, removed)")
    return parser.parse_known_args(argv)


def main(argv=None) -> int:
    args, extra = parse_args(argv)
    common = list(extra)
    if args.steps is not None:
        common += ["--num-iterations", str(args.steps)]
    if args.image_downscale_factor is not None:
        common += ["--image-downscale-factor", str(args.image_downscale_factor)]
    try:  # every name is checked before the first run
        runs = {variant: variant_overrides(variant, args.view_volume_points, args.shell_points) + common
                for variant in args.variants}
    except ValueError as exc:
        print(f"background_coverage.py: error: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        root = args.output_dir or Path(tmp)
        print(f"{args.config}: {' '.join(common) or 'as configured'}\n")
        print("| variant | val PSNR (dB) | val SSIM | Gaussians | minutes |")
        print("| --- | --- | --- | --- | --- |")
        for variant, overrides in runs.items():
            try:
                metrics = train_variant(args.config, root / variant, overrides)
            except RuntimeError as exc:
                print(f"background_coverage.py: error: variant {variant}: {exc}", file=sys.stderr)
                return 1
            print(table_row(variant, metrics), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
