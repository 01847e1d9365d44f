#!/usr/bin/env python3
"""Generate the procedural demo scene: `tools/make_demo_scene.py --output_dir data/demo`.

The command `taichi-3dgs make-demo-scene`; see taichi_3dgs/commands/make_demo_scene.py."""
import sys

from taichi_3dgs.commands.make_demo_scene import main

if __name__ == "__main__":
    sys.exit(main())
