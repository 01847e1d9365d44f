"""`python -m taichi_3dgs COMMAND ...`: the same as the installed `taichi-3dgs` command."""
import sys

from taichi_3dgs.commands import main

sys.exit(main())
