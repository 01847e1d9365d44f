"""Quality over every shared capture: val PSNR / SSIM, Gaussians and minutes of config variants
against the official recipe, per scene and on average (not a test).

Each scene of ../shared/datasets (`SCENES`: the COLMAP captures, ngp_fox, blender_chair) is
prepared once by the project's converter into --cache_dir/<scene>/ (train.json, val.json,
point_cloud.parquet, the converter's train_config.yaml) plus `official.yaml`: the data keys of that
config only (paths, and background-color where the converter sets one), so the trainer's defaults,
the official 3DGS recipe, apply. Every variant (`training_runs.py`: parts `absgrad`,
`beyond-cloud`, ... or KEY=VALUE, joined by '+') trains on `official.yaml` with its overrides, or
on the converter's config when one of its parts is `converter`; the variant `official` (no
overrides) always runs first as the reference. Every run is shortened to a CPU-sized length: --steps
steps, with the step counts of the CPU-sized configs in config/ (`CPU_SCHEDULE`: warm-up 500,
densify every 100 until 1,000, SH band every 1,000, opacity reset 3,000 at 2,000 steps) scaled by
--steps / 2,000, one evaluation and one checkpoint at the end, at 1 / --image_downscale_factor
resolution; further `--KEY VALUE`
arguments are overrides for every run. With --seeds 0,1 every variant runs with each seed and the
tables give the mean and the spread |PSNR(seed 0) - PSNR(seed 1)|, so that a difference can be
told from run-to-run noise. A variant that sets `scale-schedule` keeps its config's step counts
instead of the CPU schedule: `scale-schedule=true` for the trainer to scale them to --steps
(training/run_length.py), `scale-schedule=false` as written (a user's shortened official run). --jobs 2 trains two
runs at once, each with one Taichi and one torch thread (bit for bit repeatable on one machine; the
thread count changes the rounding of a run, so compare figures taken with the same --jobs).

    python benchmarks/scenes.py --variants converter beyond-cloud absgrad --seeds 0,1 --jobs 2
    python benchmarks/scenes.py --scenes colmap_tumbler,colmap_coke_can --steps 500 \\
        --image_downscale_factor 8 --variants beyond-cloud

Printed: a line per run as it ends, then markdown tables for BENCHMARKS.md: per scene and variant
(mean over the seeds), and per variant the mean over the scenes, the worst scene's difference to
the official recipe and whether it passes the project's rule for defaults (BENCHMARKS.md: a higher
mean, and no scene worse by more than its spread).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from training_runs import (REPO_ROOT, Runs, add_run_arguments, common_overrides, table_header,  # noqa: E402
                           table_row, train_run, variant_overrides)

from taichi_3dgs.atomic_io import write_text_atomic  # noqa: E402

OFFICIAL = "official"
CONVERTER = "converter"
OFFICIAL_YAML = "official.yaml"
DATA_KEYS = ("train-dataset-json-path", "val-dataset-json-path", "pointcloud-parquet-path", "background-color")
# The step counts of the CPU-sized configs in config/ at their 2,000 steps (the official defaults but
# densify-until-iteration), which every run scales by --steps / 2,000.
CPU_STEPS = 2000
CPU_SCHEDULE = {"adaptive-controller-config.num-iterations-warm-up": 500,
                "adaptive-controller-config.num-iterations-densify": 100,
                "adaptive-controller-config.densify-until-iteration": 1000,
                "adaptive-controller-config.num-iterations-reset-alpha": 3000,
                "increase-color-max-sh-band-interval": 1000}


def _colmap(source: Path, out: Path) -> None:
    from taichi_3dgs.data.colmap import convert_colmap

    convert_colmap(source, out)


def _instant_ngp(source: Path, out: Path) -> None:
    from taichi_3dgs.data.instant_ngp import convert_instant_ngp

    convert_instant_ngp(source / "transforms.json", out)


def _blender(source: Path, out: Path) -> None:
    from taichi_3dgs.data.blender import convert_blender_nerf

    convert_blender_nerf(source, out)


# The shared capture datasets and their converters (raw_plush has no camera model; the other
# folders are not captures).
SCENES: dict[str, Callable[[Path, Path], None]] = {
    "colmap_desk": _colmap, "colmap_tumbler": _colmap, "colmap_table_txt": _colmap, "colmap_beer_can": _colmap,
    "colmap_bronze_bust": _colmap, "colmap_coke_can": _colmap, "ngp_fox": _instant_ngp, "blender_chair": _blender,
}


def prepare_scene(name: str, datasets_dir: Path, cache_dir: Path) -> Path:
    """The prepared folder of scene `name` (converted on first use), with `official.yaml`.

    Raises:
        FileNotFoundError: the dataset is missing. ValueError / OSError: as the converter.
    """
    out = cache_dir / name
    converter_yaml = out / "train_config.yaml"
    if not converter_yaml.is_file():  # the converters write their folder atomically
        source = datasets_dir / name
        if not source.is_dir():
            raise FileNotFoundError(f"{source}: dataset missing; expected the shared datasets folder "
                                    "(--datasets_dir or TAICHI_3DGS_DATASETS)")
        print(f"preparing {name} into {out}", flush=True)
        SCENES[name](source, out)
    if not (out / OFFICIAL_YAML).is_file():
        written = yaml.safe_load(converter_yaml.read_text(encoding="utf-8"))
        official = {key: written[key] for key in DATA_KEYS if key in written}
        write_text_atomic(out / OFFICIAL_YAML, yaml.safe_dump(official, sort_keys=False))
    return out


def _variant_runs(args: argparse.Namespace, extra: list[str]) -> dict[str, tuple[str, dict[str, str]]]:
    """{variant: (config file name, overrides)}, the official recipe first; every name checked.

    A variant that sets `scale-schedule` keeps the config's own step counts instead of the CPU
    schedule: the trainer scales them to --steps (`true`) or takes them as written (`false`)."""
    schedule = {key: str(max(1, round(steps * args.steps / CPU_STEPS))) for key, steps in CPU_SCHEDULE.items()}
    reporting = {"val-interval": str(args.steps), "checkpoint-interval": str(args.steps)}
    common = common_overrides(args, extra)
    runs = {}
    for variant in [OFFICIAL] + [v for v in args.variants if v != OFFICIAL]:
        parts = variant.split("+")
        rest = "+".join(part for part in parts if part not in (OFFICIAL, CONVERTER)) or "baseline"
        config = "train_config.yaml" if CONVERTER in parts else OFFICIAL_YAML
        overrides = variant_overrides(rest, args)
        own_schedule = "scale-schedule" in overrides
        runs[variant] = (config, {**({} if own_schedule else schedule), **reporting, **common, **overrides})
    return runs


def _run_all(jobs: list[tuple[str, str, int, Path, Path, dict[str, str]]], processes: int, resume: bool
             ) -> dict[tuple[str, str, int], Optional[dict]]:
    """Train every (scene, variant, seed, config, output folder, overrides) job, `processes` at once
    (each then with one Taichi and one torch thread); with `resume`, a job whose folder already
    holds a metrics.json is not trained again and that file is taken. {(scene, variant, seed):
    metrics or None when it failed}, printing a line per run as it ends."""
    threads = {"TI_CPU_MAX_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"} if processes > 1 else {}

    def run(job):
        scene, variant, seed, config, out, overrides = job
        try:
            if resume and (out / "metrics.json").is_file():
                metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
            else:
                metrics = train_run(config, out, {**overrides, "seed": str(seed)}, environment=threads)
        except RuntimeError as exc:
            print(f"scenes.py: error: {scene} {variant} seed {seed}: {exc}", file=sys.stderr, flush=True)
            return None
        val = metrics["val"] or {}
        sys.stdout.write(f"{scene} {variant} seed {seed}: val PSNR {val.get('psnr', float('nan')):.2f} dB, "
                         f"{metrics['num_gaussians']:,} Gaussians, {metrics['train_minutes']:.1f} min\n")
        sys.stdout.flush()  # one write per line: the runs end in several threads
        return metrics

    with ThreadPoolExecutor(max_workers=processes) as pool:
        return {job[:3]: metrics for job, metrics in zip(jobs, pool.map(run, jobs))}


def summary_rows(results: dict[str, dict[str, Runs]], variant: str) -> str:
    """Markdown row: variant, mean PSNR over the scenes, mean and worst difference to the official
    recipe (with the scene), the largest seed spread, and the rule's verdict."""
    scenes = [s for s in results if variant in results[s] and OFFICIAL in results[s]
              and results[s][variant].psnr is not None and results[s][OFFICIAL].psnr is not None]
    if not scenes:
        return f"| {variant} | - | - | - | - | - |"
    differences = {s: results[s][variant].psnr - results[s][OFFICIAL].psnr for s in scenes}
    spreads = {s: max((x for x in (results[s][variant].spread, results[s][OFFICIAL].spread) if x is not None),
                      default=None) for s in scenes}
    worst = min(differences, key=differences.get)
    mean = sum(differences.values()) / len(scenes)
    if variant == OFFICIAL:
        verdict = "the reference"
    elif any(spread is None for spread in spreads.values()):
        verdict = "needs 2 seeds"
    else:
        losers = [s for s in scenes if differences[s] < -spreads[s]]
        verdict = "passes" if mean > 0 and not losers else \
            f"fails ({'mean not higher' if mean <= 0 else 'worse than the spread on ' + ', '.join(losers)})"
    max_spread = max((s for s in spreads.values() if s is not None), default=None)
    mean_psnr = sum(results[s][variant].psnr for s in scenes) / len(scenes)
    return (f"| {variant} | {mean_psnr:.2f} ({len(scenes)} scenes) | {mean:+.2f} | {differences[worst]:+.2f} "
            f"({worst}) | {'-' if max_spread is None else f'{max_spread:.2f}'} | {verdict} |")


def print_tables(results: dict[str, dict[str, Runs]], variants: list[str], seeds: list[int]) -> None:
    """The per-scene table and the per-variant summary, in markdown."""
    print(f"\nPer scene (means over seeds {', '.join(map(str, seeds))}; spread = largest - smallest val PSNR over "
          "the seeds):\n")
    print(table_header(["scene", "variant"], OFFICIAL))
    for scene, by_variant in results.items():
        for variant in variants:
            if variant in by_variant:
                print(table_row([scene, variant], by_variant[variant], by_variant.get(OFFICIAL)))
    print("\nOver the scenes (rule: a default changes only if it raises the mean and costs no scene more than "
          "the larger seed spread of the two configs there):\n")
    print("| variant | mean val PSNR (dB) | mean vs official (dB) | worst scene vs official (dB) | "
          "largest seed spread (dB) | rule |\n| --- | --- | --- | --- | --- | --- |")
    for variant in variants:
        print(summary_rows(results, variant))


def parse_args(argv=None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                     epilog="Other --KEY VALUE arguments are config overrides for every run.",
                                     allow_abbrev=False)
    parser.add_argument("--scenes", type=lambda text: text.split(","), default=list(SCENES),
                        help="comma-separated scene names")
    parser.add_argument("--datasets_dir", type=Path,
                        default=Path(os.environ.get("TAICHI_3DGS_DATASETS", REPO_ROOT.parent / "shared" / "datasets")),
                        help="the shared datasets folder")
    parser.add_argument("--cache_dir", type=Path, default=REPO_ROOT / "data" / "scenes",
                        help="prepared scenes (kept between invocations)")
    add_run_arguments(parser, default_variants=[OFFICIAL])
    parser.add_argument("--jobs", type=int, default=1,
                        help="trainings at once; above 1 each gets one Taichi and one torch thread")
    parser.add_argument("--resume", action="store_true",
                        help="take the metrics.json of runs already in --output_dir (an earlier invocation with the "
                             "same code and arguments) instead of training them again")
    parser.set_defaults(steps=2000, image_downscale_factor=4)
    return parser.parse_known_args(argv)


def main(argv=None) -> int:
    args, extra = parse_args(argv)
    unknown = [scene for scene in args.scenes if scene not in SCENES]
    try:
        if unknown:
            raise ValueError(f"unknown scene(s) {', '.join(unknown)}; expected some of {', '.join(SCENES)}")
        runs = _variant_runs(args, extra)
        if args.jobs < 1:
            raise ValueError(f"--jobs is {args.jobs}; expected an integer >= 1")
        if args.resume and args.output_dir is None:
            raise ValueError("--resume needs --output_dir (the folder of the earlier runs)")
    except ValueError as exc:
        print(f"scenes.py: error: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        root = args.output_dir or Path(tmp)
        folders = {scene: prepare_scene(scene, args.datasets_dir, args.cache_dir) for scene in args.scenes}
        jobs = [(scene, variant, seed, folders[scene] / config, root / scene / variant / f"seed{seed}", overrides)
                for scene in args.scenes for variant, (config, overrides) in runs.items() for seed in args.seeds]
        finished = _run_all(jobs, args.jobs, args.resume)
    results: dict[str, dict[str, Runs]] = {scene: {} for scene in args.scenes}
    for scene in args.scenes:
        for variant in runs:
            metrics = [finished[scene, variant, seed] for seed in args.seeds if finished[scene, variant, seed]]
            if metrics:
                results[scene][variant] = Runs(metrics)
    print_tables(results, list(runs), args.seeds)
    return 1 if None in finished.values() else 0


if __name__ == "__main__":
    sys.exit(main())
