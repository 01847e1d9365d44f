"""Shared command line of the dataset converters in tools/: the validation-split options and the
run with its summary. Standard library only at import (see taichi_3dgs/cli.py)."""
from __future__ import annotations

import argparse
from typing import Any, Callable

from taichi_3dgs.cli import ToolParser, positive_int, run_tool


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
        print(f"train with: python gaussian_point_train.py --train_config {result.config_path}")

    return run_tool(prog, work, args.debug)
