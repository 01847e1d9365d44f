#!/usr/bin/env python3
"""Render a trained scene at camera poses, with PSNR / SSIM where images exist, optionally an MP4.

The command `taichi-3dgs render`; see taichi_3dgs/commands/render.py."""
import sys

from taichi_3dgs.commands.render import main

if __name__ == "__main__":
    sys.exit(main())
