"""Benchmark the taichi_3dgs rasterizer on gsplat's garden scene (not a test).

Scene (../shared/spec/PERFORMANCE.md): gsplat's test_garden.npz points cropped to [-2, 2]^3
(111,785 Gaussians), built as gsplat's `load_test_data` does with a fixed seed
(`benchmarks/garden_scene.py`: SH DC from the point colours, higher bands 0, sh_degree 3), camera 0
at 648x420. Prints Gaussians, (tile, Gaussian) pairs, forward and forward+backward ms (median of
--runs after warm-up) on the current device, the time of each stage (projection, SH, binning,
blending; forward and backward), and the ratio to the pure-JAX peer (takah29/3d-gaussian-splatting:
2.3 s forward, 10.3 s forward+backward on the 2-core CPU).

    python benchmarks/rasterizer.py                       # CPU or CUDA, whatever Taichi picks
    python benchmarks/rasterizer.py --device cuda --tile 5 --width 1920 --height 1080 --gsplat
    python benchmarks/rasterizer.py --save_image docs/garden.png
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from benchmarks.garden_scene import load_garden_scene  # noqa: E402
from taichi_3dgs import RasterizerConfig, init_taichi, rasterize  # noqa: E402
from taichi_3dgs.backend import torch_device  # noqa: E402
from taichi_3dgs.scene.gaussians import TENSOR_FIELDS  # noqa: E402
from taichi_3dgs.viewer.rendering import save_png, to_uint8  # noqa: E402

JAX_PEER_FORWARD_S = 2.3
JAX_PEER_FORWARD_BACKWARD_S = 10.3
# ../shared/datasets beside the checkout, as tests/conftest.py finds it
DATASETS_DIR = Path(os.environ.get("TAICHI_3DGS_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
DEFAULT_DATA = DATASETS_DIR / "gsplat_test_garden" / "test_garden.npz"
# stages of `rasterize`, timed by wrapping these names in taichi_3dgs.rasterizer.pipeline
STAGES = ("project_gaussians", "evaluate_sh", "bin_tiles", "blend_tiles")


class Timer:
    """Wall-clock timing that waits for the device (Taichi and torch) before reading the clock."""

    def __init__(self, cuda: bool):
        self.cuda = cuda

    def now(self) -> float:
        if self.cuda:
            import taichi as ti

            ti.sync()
            torch.cuda.synchronize()
        return time.perf_counter()


def device_line(arch: str) -> str:
    """'device: ...' for a benchmark's output: the GPU's name, or the CPU's cores, load average and
    torch threads (CPU figures depend on what else runs: the load lets readers judge them)."""
    if arch == "cuda":
        return f"device: cuda ({torch.cuda.get_device_name()})"
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"device: cpu ({os.cpu_count()} cores, load average {load}, torch threads {torch.get_num_threads()})"


def median_ms(fn, runs: int, warmup: int, timer: Timer) -> float:
    """Median wall time of fn() in milliseconds over `runs` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = timer.now()
        fn()
        times.append((timer.now() - start) * 1e3)
    return statistics.median(times)


@contextlib.contextmanager
def stage_timing(timer: Timer, forward_ms: dict, backward_ms: dict):
    """Time each stage of `rasterize`: forward by wrapping the op, backward by hooks on the autograd
    node that produced the op's output (pre-hook = start, hook = end). Adds into the two dicts."""
    from taichi_3dgs.rasterizer import pipeline as composition

    originals = {name: getattr(composition, name) for name in STAGES if hasattr(composition, name)}

    def wrap(name, op):
        def timed(*args, **kwargs):
            start = timer.now()
            result = op(*args, **kwargs)
            forward_ms[name] = forward_ms.get(name, 0.0) + (timer.now() - start) * 1e3
            outputs = result if isinstance(result, tuple) else (result,)
            nodes = {id(t.grad_fn): t.grad_fn for t in outputs if isinstance(t, torch.Tensor) and t.grad_fn}
            for node in nodes.values():
                clock = {}
                node.register_prehook(lambda grads, clock=clock: clock.__setitem__("start", timer.now()))

                def done(grad_inputs, grad_outputs, clock=clock):
                    elapsed = (timer.now() - clock["start"]) * 1e3
                    backward_ms[name] = backward_ms.get(name, 0.0) + elapsed

                node.register_hook(done)
            return result

        return timed

    for name, op in originals.items():
        setattr(composition, name, wrap(name, op))
    try:
        yield
    finally:
        for name, op in originals.items():
            setattr(composition, name, op)


def benchmark_gsplat(scene: dict, runs: int, warmup: int, timer: Timer) -> tuple[float, float] | None:
    """(forward ms, forward+backward ms) of gsplat's CUDA `rasterization` on the same Gaussians."""
    if not torch.cuda.is_available():
        print("gsplat: skipped (needs CUDA; torch sees no GPU)")
        return None
    from gsplat import rasterization

    params = {name: scene[name].detach().clone().requires_grad_(True)
              for name in TENSOR_FIELDS}

    def forward():
        image, alpha, _ = rasterization(
            params["means"], params["quats"], torch.exp(params["log_scales"]), torch.sigmoid(params["opacity_logits"]),
            params["sh_coeffs"], scene["viewmat"][None], scene["K"][None], scene["width"], scene["height"],
            sh_degree=3, eps2d=0.3, near_plane=0.01, far_plane=1e10, tile_size=16)
        return image, alpha

    def forward_backward():
        image, alpha = forward()
        (image.sum() + alpha.sum()).backward()

    return median_ms(forward, runs, warmup, timer), median_ms(forward_backward, runs, warmup, timer)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="path of gsplat's test_garden.npz")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="Taichi/torch device (default: TAICHI_3DGS_ARCH, else cuda when torch sees a GPU)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before timing (JIT compilation)")
    parser.add_argument("--width", type=int, default=648)
    parser.add_argument("--height", type=int, default=420)
    parser.add_argument("--tile", type=int, default=1, help="repeat the scene on a tile x tile grid (odd)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save_image", type=Path, default=None, help="write the rendered image to this PNG")
    parser.add_argument("--gsplat", action="store_true", help="also time gsplat's CUDA rasterization")
    parser.add_argument("--blend_backward", choices=("atomic", "reproducible"), default="atomic",
                        help="RasterizerConfig.blend_backward (the GPU layout's gradient sums)")
    parser.add_argument("--torch_threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice); on a loaded shared CPU, "
                             "1 avoids OpenMP hand-off stalls in the torch glue (sort, index_add)")
    args = parser.parse_args(argv)
    if (args.runs < 1 or args.warmup < 0 or args.width < 1 or args.height < 1 or args.tile < 1
            or args.tile % 2 == 0 or (args.torch_threads is not None and args.torch_threads < 1)):
        parser.exit(1, "error: --runs, --width, --height, --torch_threads must be >= 1, --warmup >= 0, "
                       "--tile odd and >= 1\n")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)
    try:
        scene = load_garden_scene(args.data, tile=args.tile, width=args.width, height=args.height,
                                  seed=args.seed)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    arch = init_taichi(args.device)
    device = torch_device()
    timer = Timer(cuda=arch == "cuda")
    scene = {name: value.to(device).contiguous() if isinstance(value, torch.Tensor) else value
             for name, value in scene.items()}
    params = {name: scene[name].clone().requires_grad_(True) for name in TENSOR_FIELDS}
    config = RasterizerConfig(blend_backward=args.blend_backward)

    def forward():
        return rasterize(params["means"], params["quats"], params["log_scales"], params["opacity_logits"],
                         params["sh_coeffs"], scene["viewmat"], scene["K"], args.width, args.height, sh_degree=3,
                         config=config)

    def forward_backward():
        out = forward()
        (out.image.sum() + out.alpha.sum()).backward()

    out = forward()
    print(device_line(arch))
    print(f"image: {args.width}x{args.height}, scene tiled {args.tile}x{args.tile}, "
          f"blend_backward {args.blend_backward}")
    print(f"Gaussians: {len(scene['means']):,} ({int((out.radii > 0).sum()):,} visible)")
    print(f"(tile, Gaussian) pairs: {out.num_pairs:,}")
    forward_ms = median_ms(forward, args.runs, args.warmup, timer)
    forward_backward_ms = median_ms(forward_backward, args.runs, args.warmup, timer)
    print(f"forward: {forward_ms:.1f} ms  ({JAX_PEER_FORWARD_S * 1e3 / forward_ms:.1f}x the JAX peer's 2.3 s)")
    print(f"forward+backward: {forward_backward_ms:.1f} ms  "
          f"({JAX_PEER_FORWARD_BACKWARD_S * 1e3 / forward_backward_ms:.1f}x the JAX peer's 10.3 s)")
    if (args.tile, args.width, args.height) != (1, 648, 420) or arch != "cpu":
        print("  (the JAX figures are for 648x420, untiled, on the 2-core CPU)")

    stage_forward, stage_backward = {}, {}
    with stage_timing(timer, stage_forward, stage_backward):
        for _ in range(args.runs):
            forward_backward()
    print("stages (mean ms per run; forward / backward):")
    for name in STAGES:
        if name in stage_forward:
            backward = stage_backward.get(name, 0.0)
            print(f"  {name:18s} {stage_forward[name] / args.runs:9.1f} / {backward / args.runs:9.1f}")

    if args.gsplat:
        result = benchmark_gsplat(scene, args.runs, args.warmup, timer)
        if result is not None:
            gs_forward, gs_forward_backward = result
            print(f"gsplat forward: {gs_forward:.1f} ms (ours / gsplat = {forward_ms / gs_forward:.2f})")
            print(f"gsplat forward+backward: {gs_forward_backward:.1f} ms "
                  f"(ours / gsplat = {forward_backward_ms / gs_forward_backward:.2f})")
    if args.save_image is not None:
        save_png(args.save_image, to_uint8(out.image))
        print(f"image written to {args.save_image}")


if __name__ == "__main__":
    main()
