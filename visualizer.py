#!/usr/bin/env python3
"""View trained scenes in a window, in a web browser (--web), or render an orbit (--headless).

The command `taichi-3dgs view`; see taichi_3dgs/commands/view.py."""
import sys

from taichi_3dgs.commands.view import main

if __name__ == "__main__":
    sys.exit(main())
