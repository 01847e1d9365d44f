"""Trainer runs for the quality benchmarks (`scenes.py`, `background_coverage.py`; not a test).

A variant is a set of config overrides (the trainer's `--KEY VALUE` syntax), named by parts
joined with '+': `baseline` (none), `absgrad`, `view-volume`, `shell`, `beyond-cloud`,
`camera-shell` (the `PARTS` below, point counts from the command line), or any `KEY=VALUE`
(e.g. `initial-points.beyond-cloud-far-factor=3`), so `beyond-cloud+absgrad` or
`absgrad+adaptive-controller-config.absgrad-threshold=0.0004` are variants. A run is one variant
with one seed (the config key `seed`); its figures are the last val evaluation of its metrics.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]

# Variant part -> (override key, command-line flag of its point count or None, fixed value).
PARTS = {
    "baseline": None,
    "absgrad": ("adaptive-controller-config.absgrad", None, "true"),
    "view-volume": ("initial-points.random-in-view-volume", "view_volume_points", None),
    "shell": ("initial-points.far-shell", "shell_points", None),
    "beyond-cloud": ("initial-points.beyond-cloud", "beyond_cloud_points", None),
    "camera-shell": ("initial-points.camera-shell", "camera_shell_points", None),
}
POINT_COUNT_DEFAULTS = {"view_volume_points": 20_000, "shell_points": 20_000, "beyond_cloud_points": 10_000,
                        "camera_shell_points": 10_000}


def _key(name: str) -> str:
    """An override key as the trainer compares them (snake_case and kebab-case are one key)."""
    return name.lstrip("-").replace("_", "-")


def variant_overrides(variant: str, counts: argparse.Namespace) -> dict[str, str]:
    """The overrides {key: YAML value text} of a '+'-joined variant name.

    Args:
        variant: e.g. `beyond-cloud+absgrad`, `initial-points.far-shell=5000`.
        counts: namespace with the point-count flags of `add_run_arguments`.

    Raises:
        ValueError: an unknown part (naming the known ones) or an empty key.
    """
    overrides: dict[str, str] = {}
    for part in variant.split("+"):
        if "=" in part:
            key, _, value = part.partition("=")
            if not key:
                raise ValueError(f"variant part {part!r} in {variant!r} has no key; expected KEY=VALUE")
            overrides[_key(key)] = value
        elif part in PARTS:
            if PARTS[part] is not None:
                key, count_flag, value = PARTS[part]
                overrides[key] = str(getattr(counts, count_flag)) if count_flag else value
        else:
            raise ValueError(f"unknown variant part {part!r} in {variant!r}; expected parts {', '.join(PARTS)} "
                             "or KEY=VALUE, joined by '+'")
    return overrides


def common_overrides(args: argparse.Namespace, extra: Sequence[str]) -> dict[str, str]:
    """Overrides of every run: num-iterations --steps, image-downscale-factor
    --image_downscale_factor (each when given), then the further `--KEY VALUE` arguments.

    Raises:
        ValueError: an extra argument that is not `--KEY VALUE` / `--KEY=VALUE`.
    """
    overrides: dict[str, str] = {}
    if args.steps is not None:
        overrides["num-iterations"] = str(args.steps)
    if args.image_downscale_factor is not None:
        overrides["image-downscale-factor"] = str(args.image_downscale_factor)
    tokens = list(extra)
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("--") or len(token) == 2:
            raise ValueError(f"unexpected argument {token!r}; a config override is --KEY VALUE")
        name, has_value, value = token.partition("=")
        if not has_value:
            if not tokens or tokens[0].startswith("--"):
                raise ValueError(f"{token} needs a value ({token} VALUE)")
            value = tokens.pop(0)
        overrides[_key(name)] = value
    return overrides


def as_arguments(overrides: dict[str, str]) -> list[str]:
    """The trainer's command-line form `--KEY VALUE ...` of an override mapping."""
    return [token for key, value in overrides.items() for token in (f"--{key}", value)]


def train_run(config: Path, out: Path, overrides: dict[str, str], environment: Optional[dict] = None) -> dict:
    """Train `config` into `out` with `overrides` (and `environment` added to this process's
    environment variables); return its metrics.json.

    Raises:
        RuntimeError: the trainer failed (with the command and the end of its error output).
    """
    command = [sys.executable, str(REPO_ROOT / "gaussian_point_train.py"), "--train_config", str(config),
               *as_arguments({"output-model-dir": str(out), "summary-writer-log-dir": str(out / "logs"),
                              "logging.progress-bar": "false", **overrides})]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(environment or {})})
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


@dataclass
class Runs:
    """The metrics.json of one variant's runs on one scene, one per seed (in seed order)."""

    metrics: list[dict]

    def _mean(self, value) -> Optional[float]:
        values = [value(m) for m in self.metrics if m["val"]]
        return statistics.fmean(values) if values else None

    @property
    def psnr(self) -> Optional[float]:
        """Mean val PSNR over the seeds (dB); None without val views."""
        return self._mean(lambda m: m["val"]["psnr"])

    @property
    def ssim(self) -> Optional[float]:
        """Mean val SSIM over the seeds."""
        return self._mean(lambda m: m["val"]["ssim"])

    @property
    def spread(self) -> Optional[float]:
        """Largest minus smallest val PSNR over the seeds (dB): |PSNR(seed 0) - PSNR(seed 1)| for
        two seeds; None with one seed."""
        values = [m["val"]["psnr"] for m in self.metrics if m["val"]]
        return max(values) - min(values) if len(values) > 1 else None

    @property
    def gaussians(self) -> float:
        """Mean final number of Gaussians."""
        return statistics.fmean(m["num_gaussians"] for m in self.metrics)

    @property
    def minutes(self) -> float:
        """Mean training minutes."""
        return statistics.fmean(m["train_minutes"] for m in self.metrics)


def _number(value: Optional[float], form: str) -> str:
    return "-" if value is None else format(value, form)


def table_header(first_columns: Sequence[str], reference: str) -> str:
    """Markdown header of `table_row`'s rows, after `first_columns`; `reference` names what the
    differences are taken to."""
    columns = [*first_columns, "val PSNR (dB)", f"vs {reference} (dB)", "seed spread (dB)", "val SSIM", "Gaussians",
               "minutes"]
    return "| " + " | ".join(columns) + " |\n|" + " --- |" * len(columns)


def table_row(first_cells: Sequence[str], runs: Runs, reference: Optional[Runs]) -> str:
    """One markdown row: `first_cells`, mean val PSNR, its difference to `reference`'s (None: '-'),
    the seed spread, SSIM, Gaussians and minutes (means over the seeds)."""
    difference = None if reference is None or runs.psnr is None or reference.psnr is None \
        else runs.psnr - reference.psnr
    cells = [*first_cells, _number(runs.psnr, ".2f"), _number(difference, "+.2f"), _number(runs.spread, ".2f"),
             _number(runs.ssim, ".3f"), f"{runs.gaussians:,.0f}", f"{runs.minutes:.1f}"]
    return "| " + " | ".join(cells) + " |"


def add_run_arguments(parser: argparse.ArgumentParser, default_variants: Sequence[str]) -> None:
    """The flags both benchmarks share: --variants, --steps, --image_downscale_factor, --seeds,
    the point counts of the variant parts, --output_dir."""
    parser.add_argument("--variants", nargs="+", default=list(default_variants),
                        help=f"variants: parts {', '.join(PARTS)} or KEY=VALUE, joined by '+'")
    parser.add_argument("--steps", type=int, default=None, help="num-iterations of every run (None: the config's)")
    parser.add_argument("--image_downscale_factor", type=int, default=None,
                        help="image-downscale-factor of every run (None: the config's)")
    parser.add_argument("--seeds", type=lambda text: [int(s) for s in text.split(",")], default=[0],
                        help="comma-separated config seeds; each variant runs once per seed (two or more give the "
                             "run-to-run spread)")
    for flag, default in POINT_COUNT_DEFAULTS.items():
        key = next(key for key, count_flag, _ in filter(None, PARTS.values()) if count_flag == flag)
        parser.add_argument(f"--{flag}", type=int, default=default, help=key)
    parser.add_argument("--output_dir", type=Path, default=None,
                        help="keep every run's folder under it (None: a temporary folder, removed)")
