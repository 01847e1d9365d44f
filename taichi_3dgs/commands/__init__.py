"""The installed command `taichi-3dgs` and its subcommands, one per tool (as nerfstudio's `ns-*`):

    taichi-3dgs train --train_config config/demo.yaml      # = python gaussian_point_train.py ...
    taichi-3dgs prepare-colmap --base_path ... --output_dir ...
    taichi-3dgs --help                                     # every subcommand
    taichi-3dgs --version

One entry point (`pyproject.toml` [project.scripts]) instead of one per tool, so a new tool is one
line of `COMMANDS`: its module's `main(argv, prog)` parses the rest of the command line. The root
scripts and tools/ are two-line shims over the same `main`, which names itself by the script's
file name there and `taichi-3dgs <name>` here. Standard library only at import (taichi_3dgs/cli.py:
`--help` answers before torch or Taichi load).
"""
from __future__ import annotations

import difflib
import importlib
import sys
from typing import NamedTuple, Optional, Sequence

from taichi_3dgs import __version__
from taichi_3dgs.cli import EXIT_ERROR

PROG = "taichi-3dgs"


class Command(NamedTuple):
    """One subcommand: the module whose `main(argv, prog)` runs it, the script that runs the same
    (relative to the repository root), and one line for `taichi-3dgs --help`."""
    module: str
    script: str
    summary: str


COMMANDS: dict[str, Command] = {
    "train": Command("taichi_3dgs.train_cli", "gaussian_point_train.py", "train a scene from a YAML config"),
    "render": Command("taichi_3dgs.commands.render", "gaussian_point_render.py",
                      "render a scene at camera poses, with metrics; optionally an MP4"),
    "view": Command("taichi_3dgs.commands.view", "visualizer.py", "view scenes in a window or a browser (--web)"),
    "export": Command("taichi_3dgs.commands.export", "parquet_to_ply.py", "write a scene as official PLY or a web format (.spz, .sog, .compressed.ply, .glb, .splat)"),
    "import-ply": Command("taichi_3dgs.commands.import_ply", "ply_to_parquet.py",
                          "read a PLY or web-format scene into a scene parquet"),
    "prepare-images": Command("taichi_3dgs.commands.prepare_images", "tools/prepare_images.py",
                              "photos or a video -> structure from motion (pycolmap) -> a dataset for training"),
    "refine-poses": Command("taichi_3dgs.commands.refine_poses", "tools/refine_poses.py",
                            "check rough camera poses against their photos, replace those they contradict"),
    "prepare-colmap": Command("taichi_3dgs.commands.prepare_colmap", "tools/prepare_colmap.py",
                              "convert a COLMAP reconstruction for training"),
    "prepare-blender": Command("taichi_3dgs.commands.prepare_blender", "tools/prepare_blender_nerf.py",
                               "convert a NeRF-synthetic / BlenderNeRF scene for training"),
    "prepare-instant-ngp": Command("taichi_3dgs.commands.prepare_instant_ngp", "tools/prepare_InstantNGP_with_mesh.py",
                                   "convert an Instant-NGP transforms.json for training"),
    "ellipse-path": Command("taichi_3dgs.commands.ellipse_path", "tools/generate_ellipse_path.py",
                            "write an elliptical fly-through (poses.pt) for render --video"),
    "make-demo-scene": Command("taichi_3dgs.commands.make_demo_scene", "tools/make_demo_scene.py",
                               "generate the procedural demo scene"),
    "make-lpips-weights": Command("taichi_3dgs.commands.make_lpips_weights", "tools/make_lpips_weights.py",
                                  "assemble the LPIPS weights file (needs lpips, torchvision)"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: {PROG} COMMAND [options]   ({PROG} COMMAND --help for its options)", "",
             "3D Gaussian Splatting with Taichi kernels. Commands (each also a script in the repository):"]
    lines += [f"  {name:<{width}}  {command.summary}  [{command.script}]" for name, command in COMMANDS.items()]
    return "\n".join(lines + ["", "  --version  print the version and exit"])


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run `taichi-3dgs COMMAND ARGS...`; the command's exit code (2 for an unknown command)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else EXIT_ERROR
    if argv[0] == "--version":
        print(f"{PROG} {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, COMMANDS, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else f"; expected one of {', '.join(COMMANDS)}"
        print(f"{PROG}: error: unknown command {name!r}{hint}", file=sys.stderr)
        return 2
    return importlib.import_module(COMMANDS[name].module).main(rest, prog=f"{PROG} {name}")
