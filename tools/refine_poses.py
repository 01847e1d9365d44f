#!/usr/bin/env python3
"""Check rough camera poses against their photos and replace those the photos contradict.

The command `taichi-3dgs refine-poses`; see taichi_3dgs/commands/refine_poses.py."""
import sys

from taichi_3dgs.commands.refine_poses import main

if __name__ == "__main__":
    sys.exit(main())
