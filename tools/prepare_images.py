#!/usr/bin/env python3
"""Your own capture: photos or a video -> structure from motion (pycolmap) -> a prepared dataset.

The command `taichi-3dgs prepare-images`; see taichi_3dgs/commands/prepare_images.py."""
import sys

from taichi_3dgs.commands.prepare_images import main

if __name__ == "__main__":
    sys.exit(main())
