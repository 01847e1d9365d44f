#!/usr/bin/env python3
"""Assemble the LPIPS weights file that taichi_3dgs reads (docs/FORMATS.md "LPIPS weights").

The command `taichi-3dgs make-lpips-weights`; see taichi_3dgs/commands/make_lpips_weights.py."""
import sys

from taichi_3dgs.commands.make_lpips_weights import main

if __name__ == "__main__":
    sys.exit(main())
