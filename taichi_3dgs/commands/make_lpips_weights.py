"""Assemble the LPIPS weights file that taichi_3dgs reads (`logging.lpips-weights`,
gaussian_point_render.py --lpips_weights; layout: docs/FORMATS.md "LPIPS weights").

Runs where the `lpips` and torchvision packages are installed and torchvision may download its
ImageNet AlexNet once (taichi_3dgs itself needs neither):

    pip install lpips torchvision
    python tools/make_lpips_weights.py --output lpips_alex.pt

It saves the weights of `lpips.LPIPS(net="alex", version="0.1")`: torchvision's AlexNet features,
under torchvision's names `features.<i>.*`, and the package's learnt `lin<l>.model.1.weight`.
"""
from __future__ import annotations

from pathlib import Path

from taichi_3dgs.cli import ToolParser, run_tool


def main(argv: list[str] | None = None, prog: str = "make_lpips_weights.py") -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = ToolParser(prog, __doc__)
    parser.add_argument("--output", required=True, help="weights file to write (must not exist)")
    args = parser.parse_args(argv)

    def work() -> None:
        import torch

        from taichi_3dgs.atomic_io import atomic_path
        from taichi_3dgs.lpips import LPIPS, expected_shapes

        if Path(args.output).exists():
            raise ValueError(f"--output {args.output}: already exists; choose another file name")
        try:
            import lpips
        except ImportError as error:
            raise ValueError(f"needs the lpips and torchvision packages (pip install lpips torchvision): {error}") \
                from None
        state = lpips.LPIPS(net="alex", version="0.1", verbose=False).state_dict()
        # lpips keeps torchvision's layer index: net.slice<k>.<i>.weight is features.<i>.weight
        renamed = {"features." + key.split(".", 2)[2] if key.startswith("net.slice") else key: value
                   for key, value in state.items()}
        weights = {key: renamed[key] for key in expected_shapes() if key in renamed}
        LPIPS(weights)  # every key and shape, before anything is written
        with atomic_path(args.output) as tmp:
            torch.save(weights, tmp)
        print(f"wrote the LPIPS AlexNet v0.1 weights to {args.output}")

    return run_tool(parser.prog, work, args.debug)

