"""Background coverage: val PSNR / SSIM, Gaussians and minutes of one config trained as several
variants side by side (not a test; `scenes.py` does the same over every shared scene).

Each variant is a set of config overrides on --config (`training_runs.py`: parts `baseline`
(none), `view-volume`, `shell`, `beyond-cloud`, `camera-shell`, `absgrad` or KEY=VALUE, joined by
'+', e.g. `view-volume+shell+absgrad`). Every run uses the config's schedule with
`num-iterations` --steps (default: the config's) and `image-downscale-factor`
--image_downscale_factor (default: the config's); further `--KEY VALUE` arguments are passed to
every run as config overrides. The table comes from each run's metrics.json (last evaluation on the
val views; minutes of training); with several --seeds, means over them and their spread.

    python benchmarks/background_coverage.py --config config/ngp_fox.yaml
    python benchmarks/background_coverage.py --config config/colmap_desk.yaml --steps 30000 \\
        --image_downscale_factor 1 --variants baseline view-volume+shell+absgrad \\
        --adaptive-controller-config.densify-until-iteration 15000

The config's data must be prepared first (each config/*.yaml says how). Outputs go to a temporary
folder removed at the end, or to --output_dir/<variant>/seed<seed>/ when given (kept). Every run
sets the config key `seed` (--seeds, default 0).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_runs import (Runs, add_run_arguments, common_overrides, table_header, table_row,  # noqa: E402
                           train_run, variant_overrides)

DEFAULT_VARIANTS = ("baseline", "view-volume", "shell", "absgrad", "view-volume+shell", "view-volume+shell+absgrad")


def parse_args(argv=None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                     epilog="Other --KEY VALUE arguments are config overrides for every run.",
                                     allow_abbrev=False)
    parser.add_argument("--config", type=Path, required=True, help="training config, e.g. config/ngp_fox.yaml")
    add_run_arguments(parser, DEFAULT_VARIANTS)
    return parser.parse_known_args(argv)


def main(argv=None) -> int:
    args, extra = parse_args(argv)
    try:  # every name is checked before the first run
        common = common_overrides(args, extra)
        runs = {variant: {**common, **variant_overrides(variant, args)} for variant in args.variants}
    except ValueError as exc:
        print(f"background_coverage.py: error: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        root = args.output_dir or Path(tmp)
        print(f"{args.config}: {' '.join(f'--{k} {v}' for k, v in common.items()) or 'as configured'}\n")
        print(table_header(["variant"], args.variants[0]))
        reference = None
        for variant, overrides in runs.items():
            try:
                metrics = [train_run(args.config, root / variant / f"seed{seed}", {**overrides, "seed": str(seed)})
                           for seed in args.seeds]
            except RuntimeError as exc:
                print(f"background_coverage.py: error: variant {variant}: {exc}", file=sys.stderr)
                return 1
            reference = reference or Runs(metrics)  # the first variant is the reference
            print(table_row([variant], Runs(metrics), reference), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
