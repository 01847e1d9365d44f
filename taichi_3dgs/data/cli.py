"""Shared behaviour of the dataset tools in tools/: messages, warnings, errors, exit codes."""
from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any, Callable

from taichi_3dgs.data.prepared_dataset import (POINT_CLOUD_PARQUET, TRAIN_CONFIG_YAML, TRAIN_JSON, VAL_JSON,
                                               PreparedDataset)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (counts, downscale factors)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return value


def run_converter(tool: str, convert: Callable[..., PreparedDataset], **kwargs: Any) -> int:
    """Run `convert(**kwargs)` for the command-line tool `tool` and return its exit code.

    Prints what was done to stdout, each warning once as `<tool>: warning: ...` and a bad input
    (ValueError, OSError: the converters raise nothing else for bad files) as
    `<tool>: error: ...` on stderr, without a traceback.

    Returns:
        0 on success, 1 on bad input (the converters then have written nothing).
    """
    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 (warnings API)
        print(f"{tool}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        try:
            result = convert(**kwargs)
        except (OSError, ValueError) as error:
            print(f"{tool}: error: {error}", file=sys.stderr)
            return 1
    for message in result.messages:
        print(message)
    print(f"wrote {result.output_dir}: {TRAIN_JSON} ({result.num_train} cameras), {VAL_JSON} ({result.num_val} "
          f"cameras), {POINT_CLOUD_PARQUET} ({result.num_points} points), {TRAIN_CONFIG_YAML}")
    print(f"train with: python gaussian_point_train.py --train_config {result.config_path}")
    return 0
