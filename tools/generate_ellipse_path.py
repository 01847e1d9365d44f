#!/usr/bin/env python3
"""Write a smooth elliptical fly-through around a capture's focus point as poses.pt.

The command `taichi-3dgs ellipse-path`; see taichi_3dgs/commands/ellipse_path.py."""
import sys

from taichi_3dgs.commands.ellipse_path import main

if __name__ == "__main__":
    sys.exit(main())
