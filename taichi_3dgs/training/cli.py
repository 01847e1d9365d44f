"""Command line of `gaussian_point_train.py` (the original project's script name and arguments)."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from taichi_3dgs.training.config import ConfigError, load_train_config, write_config_template
from taichi_3dgs.training.trainer import train


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse arguments, then train, or write the config template; return the exit code.

    Exit codes: 0 done, 1 bad input (message on stderr, no traceback), 130 stopped by Ctrl-C
    after saving a checkpoint.
    """
    parser = argparse.ArgumentParser(
        prog="gaussian_point_train.py",
        description="Train a 3D Gaussian Splatting scene from a YAML config (see config/*.yaml).",
    )
    parser.add_argument("--train_config", required=True, help="YAML training config")
    parser.add_argument(
        "--gen_template_only", action="store_true",
        help="write the full default config to --train_config (which must not exist) and exit",
    )
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in the config's output-model-dir")
    args = parser.parse_args(argv)
    try:
        if args.gen_template_only:
            write_config_template(args.train_config)
            print(f"wrote the default config to {args.train_config}")
            return 0
        config = load_train_config(args.train_config)
        result = train(config, resume=args.resume, config_source=args.train_config)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 130 if result.interrupted else 0
