"""Shared command line of the dataset converters in tools/: the validation-split options and the
run with its summary. Standard library only at import (see taichi_3dgs/cli.py)."""
from __future__ import annotations

import argparse
from typing import Any, Callable

from taichi_3dgs.cli import ToolParser, positive_int, run_tool
from taichi_3dgs.data.converter_options import QUICK_RUN_DOWNSCALE, QUICK_RUN_OVERRIDES


def add_val_split_arguments(parser: ToolParser, source: str) -> None:
    """Add `--val_every N` and `--no_val` (mutually exclusive), the split every converter offers.

    Args:
        parser: the tool's parser.
        source: what the split applies to without the flags, for the help text (e.g. "every 8th
            image by name").
    """
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--val_every", type=positive_int,
                       help=f"every N-th training frame (index %% N == 0) goes to validation; without it: {source}")
    split.add_argument("--no_val", action="store_true", help="no validation frames (val.json is an empty array)")


def run_converter(prog: str, args: argparse.Namespace, convert: Callable[..., Any], **kwargs: Any) -> int:
    """Run `convert(**kwargs)` (a converter returning a `PreparedDataset`) for the tool `prog`.

    Prints what was done, then the training command, to stdout; warnings and errors as
    `taichi_3dgs.cli.run_tool` does (the converters then have written nothing).

    Returns:
        The exit code: 0 on success, 1 on bad input.
    """
    def work() -> None:
        from taichi_3dgs.data.prepared_dataset import POINT_CLOUD_PARQUET, TRAIN_CONFIG_YAML, TRAIN_JSON, VAL_JSON

        result = convert(**kwargs)
        for message in result.messages:
            print(message)
        print(f"wrote {result.output_dir}: {TRAIN_JSON} ({result.num_train} cameras), {VAL_JSON} "
              f"({result.num_val} cameras), {POINT_CLOUD_PARQUET} ({result.num_points} points), "
              f"{TRAIN_CONFIG_YAML}")
        trainer = "taichi-3dgs train" if prog.startswith("taichi-3dgs ") else "python gaussian_point_train.py"
        for line in training_hint(result.config_path, kwargs.get("image_downscale_factor", 1), trainer):
            print(line)

    return run_tool(prog, work, args.debug)


def training_hint(config_path: object, image_downscale_factor: int,
                  trainer: str = "python gaussian_point_train.py") -> list[str]:
    """The lines a converter prints after writing `config_path`: the training command, the time
    the config's official schedule (30,000 steps) implies on this machine (a CUDA GPU or the CPU,
    as torch sees it), and a CPU-sized run (`QUICK_RUN_OVERRIDES`, at 1/`QUICK_RUN_DOWNSCALE`
    resolution unless the config is already as small).

    Args:
        config_path: the train_config.yaml the converter wrote (it leaves `num-iterations` at the
            official 30,000).
        image_downscale_factor: the config's `image-downscale-factor`.
        trainer: how the training command starts (the installed `taichi-3dgs train` after
            `taichi-3dgs prepare-...`).

    Returns:
        Four lines without line breaks; the last is the CPU-sized command.
    """
    import torch

    command = f"{trainer} --train_config {config_path}"
    resolution = "full resolution" if image_downscale_factor == 1 else f"1/{image_downscale_factor} resolution"
    overrides = dict(QUICK_RUN_OVERRIDES)
    if image_downscale_factor < QUICK_RUN_DOWNSCALE:
        overrides["image-downscale-factor"] = QUICK_RUN_DOWNSCALE
    quick = command + "".join(f" --{key} {value}" for key, value in overrides.items())
    if torch.cuda.is_available():
        duration = "roughly an hour on this machine's CUDA GPU (not measured by this project)"
    else:
        duration = "many hours on this machine's CPU (torch sees no CUDA GPU)"
    steps = f"{QUICK_RUN_OVERRIDES['num-iterations']:,} steps at 1/{max(image_downscale_factor, QUICK_RUN_DOWNSCALE)}"
    return [f"train with: {command}",
            f"  the official schedule, 30,000 steps at {resolution}: {duration}",
            f"  a CPU-sized run ({steps} resolution, 10 to 20 minutes on 2 cores for the README's scenes):",
            f"  {quick}"]
