"""What a training run reports, outside the loop (the official `training_report`).

`Reporter` owns the TensorBoard writer, the progress bar, the printed lines, metrics.json, the
warnings about renders that cannot train, and the live viewer the command line may hand to
`train` (`LiveViewer`, e.g. `viewer.web.WebViewer`; training never imports the viewer). Only the
main process writes or prints; every method is a no-op (or only prints nothing) elsewhere.

TensorBoard tags (no spaces): train/loss, train/l1_loss, train/ssim_loss (1 - SSIM), train/psnr,
train/depth_loss (with depth-loss), value/num_valid_points, train/step_time_ms, lr/<parameter>
(the learning rate of each of the Gaussians' parameter groups), the camera optimisation's own, at
logging steps; val/psnr, val/ssim, val/lpips, val/depth_error, val/images/<name> (`image_grid`)
and, with `logging.log-histograms`, params/<name> histograms at each evaluation. The log folder is
printed when the run ends.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Sequence

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from taichi_3dgs.data.cameras import CameraRecord
from taichi_3dgs.rasterizer import RasterizeOutput
from taichi_3dgs.scene.diagnostics import diagnose_scene
from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.scene.model import GaussianModel
from taichi_3dgs.training.evaluation import EvaluationResult, write_metrics
from taichi_3dgs.training.image_grid import image_grid

# TensorBoard tag of each logged loss term (losses.LOGGED_TERMS); SSIM is logged as 1 - SSIM.
TRAIN_TAGS = {"loss": "train/loss", "l1": "train/l1_loss", "ssim": "train/ssim_loss", "psnr": "train/psnr",
              "depth": "train/depth_loss"}


class LiveViewer(Protocol):
    """A live view of the training (`viewer.web.WebViewer` is one): it renders the scene `set_scene`
    gives whenever it needs a frame, and `update` may block (a pause button)."""

    url: str

    def set_scene(self, scene: Callable[[], GaussianScene]) -> None:
        """Show the scene the callable builds from the live parameters."""

    def update(self, step: int, loss: Optional[float] = None, num_gaussians: Optional[int] = None,
               steps_per_second: Optional[float] = None) -> None:
        """Report a finished step."""

    def release(self) -> None:
        """Training is stopping: a paused `update` returns (called from a signal handler)."""

    def stop(self) -> None:
        """Stop serving."""


# What the command line hands to `train`: builds the viewer from the training cameras. The caller
# owns the viewer: `train` does not stop it, so it can go on showing the final scene afterwards.
LiveViewerFactory = Callable[[Sequence[CameraRecord]], LiveViewer]


def scores_line(evaluation: EvaluationResult) -> str:
    """'val PSNR x dB, SSIM y[, LPIPS z][, depth error e %]' for the printed lines."""
    lpips = "" if evaluation.lpips is None else f", LPIPS {evaluation.lpips:.4f}"
    depth = "" if evaluation.depth_error is None else f", depth error {100 * evaluation.depth_error:.2f} %"
    return f"val PSNR {evaluation.psnr:.2f} dB, SSIM {evaluation.ssim:.4f}{lpips}{depth}"


def log_histograms(writer: SummaryWriter, model: GaussianModel, step: int) -> None:
    """Histograms of the parameters; empty tensors are skipped (TensorBoard refuses them)."""
    with torch.no_grad():
        tensors = {"means": model.means, "log_scales": model.log_scales,
                   "opacities": torch.sigmoid(model.opacity_logits), "quats": model.quats,
                   "sh_dc": model.sh_dc, "sh_rest": model.sh_rest}
        for name, tensor in tensors.items():
            if tensor.numel():
                writer.add_histogram(f"params/{name}", tensor.cpu(), step)


class Reporter:
    """The run's reports; see the module docstring.

    Args:
        main: this process writes and prints.
        progress_bar: show a tqdm bar (`logging.progress-bar`).
        histograms: log the parameters' histograms at each evaluation (`logging.log-histograms`).
    """

    def __init__(self, main: bool, progress_bar: bool, histograms: bool = False) -> None:
        self.main = main
        self.progress_bar = progress_bar
        self.histograms = histograms
        self.log_dir: Optional[Path] = None
        self.writer: Optional[SummaryWriter] = None
        self.bar: Optional[tqdm] = None
        self.viewer: Optional[LiveViewer] = None
        self.warned_blank = False
        self.started = time.perf_counter()

    def say(self, message: str) -> None:
        """Print a line (above the progress bar) in the main process."""
        if self.main:
            tqdm.write(message)

    def minutes(self) -> float:
        """Wall time since `start`, minutes."""
        return (time.perf_counter() - self.started) / 60.0

    def start(self, log_dir: Path, purge_step: Optional[int], total_steps: int, start_step: int,
              viewer: Optional[LiveViewerFactory], cameras: Sequence[CameraRecord],
              scene: Callable[[], GaussianScene]) -> None:
        """Open the TensorBoard writer (`purge_step`: drop events from this step on, when resuming),
        the progress bar and the live viewer (`viewer(cameras)` showing `scene()`); start the clock."""
        if self.main:
            self.writer = SummaryWriter(str(log_dir), purge_step=purge_step)
            self.log_dir = log_dir
            if viewer is not None:
                self.viewer = viewer(cameras)
                # Rendered from the live parameters whenever the page needs a frame (densification
                # replaces the tensors, so the scene is built anew each time).
                self.viewer.set_scene(scene)
                self.say(f"watch the training at {self.viewer.url}")
        self.bar = tqdm(total=total_steps, initial=start_step, disable=not (self.progress_bar and self.main),
                        dynamic_ncols=True, desc="training")
        self.started = time.perf_counter()

    def close(self) -> None:
        """Close the bar and the writer (naming the log folder); the viewer serves on (its maker
        stops it)."""
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()
            self.say(f"TensorBoard logs in {self.log_dir} (tensorboard --logdir {self.log_dir})")

    def interrupted(self) -> None:
        """Ctrl-C was pressed: release a paused live viewer so the loop can stop (signal-handler safe)."""
        if self.viewer is not None:
            self.viewer.release()

    def first_render(self, model: GaussianModel, out: RasterizeOutput, view_name: str, step: int, extent: float,
                     alpha_threshold: float) -> None:
        """Warn when the first render of a run shows that nothing can be learnt as set up: no
        Gaussian visible from the camera, or a problem `diagnose_scene` finds (no Gaussians,
        non-finite values, every Gaussian transparent, absurd scales)."""
        if not self.main:
            return
        problems = [] if int((out.radii > 0).sum()) else [
            f"none of the {model.num_gaussians} Gaussians is visible from training view {view_name} (check that "
            "the cameras' T_pointcloud_camera, camera-to-world, and the point cloud share one world frame)"]
        problems += diagnose_scene(model.to_scene(), extent, alpha_threshold)
        for problem in problems:
            warnings.warn(f"step {step}: {problem}")
        self.warned_blank = bool(problems)

    def train_step(self, step: int, means: dict[str, float], model: GaussianModel, step_started: float,
                   first: tuple[RasterizeOutput, str, float], alpha_threshold: float, depth_loss: bool,
                   cameras_opt: Any, optimizer: torch.optim.Optimizer) -> None:
        """Log a logging step: the batch means of the loss terms (`losses.LossLog.means`), the
        Gaussian count, step time and learning rates; warn once when the first view's render is blank.

        Args:
            first: (render, name, train PSNR in dB) of this process's first view of the step.
            optimizer: the Gaussians' optimizer, one param group per parameter, named.
            cameras_opt: the `CameraOptimization`, which logs its own scalars.
        """
        if not self.main:
            return
        out, name, view_psnr = first
        if not self.warned_blank and float(out.alpha.detach().max()) < alpha_threshold:
            self.warned_blank = True
            warnings.warn(f"step {step}: the render of training view {name} is blank (train PSNR {view_psnr:.2f} "
                          "dB is that of the background alone): every Gaussian is transparent or out of its view")
        for term, tag in TRAIN_TAGS.items():
            if term == "depth" and not depth_loss:
                continue
            self.writer.add_scalar(tag, 1.0 - means[term] if term == "ssim" else means[term], step)
        self.writer.add_scalar("value/num_valid_points", model.num_gaussians, step)
        self.writer.add_scalar("train/step_time_ms", 1000.0 * (time.perf_counter() - step_started), step)
        for group in optimizer.param_groups:
            self.writer.add_scalar(f"lr/{group['name']}", group["lr"], step)
        cameras_opt.log(self.writer, step)
        self.bar.set_postfix(loss=f"{means['loss']:.4f}", psnr=f"{means['psnr']:.2f}", gaussians=model.num_gaussians,
                             refresh=False)

    def step_done(self, step: int, start_step: int, loss: Optional[float], num_gaussians: int) -> None:
        """Advance the bar; report the step to the live viewer (which blocks while paused).

        The bar's rate and ETA count from the end of the run's first step, which compiles the
        kernels (else the first ETA reads tens of minutes for a run of a few)."""
        if step == start_step + 1:
            self.bar.reset()
            self.bar.initial = self.bar.n = self.bar.last_print_n = step
            self.bar.refresh()
        else:
            self.bar.update(1)
        if self.viewer is not None:
            self.viewer.update(step, loss=loss, num_gaussians=num_gaussians,
                               steps_per_second=(step - start_step) / (time.perf_counter() - self.started))

    def evaluation(self, step: int, result: Optional[EvaluationResult], model: GaussianModel,
                   metrics_path: Path) -> None:
        """Log and print an evaluation's scores and images (and the parameters' histograms), and
        write metrics.json."""
        if not self.main:
            return
        num_gaussians = model.num_gaussians
        if self.histograms:
            log_histograms(self.writer, model, step)
        if result is not None:
            self.writer.add_scalar("val/psnr", result.psnr, step)
            self.writer.add_scalar("val/ssim", result.ssim, step)
            if result.lpips is not None:
                self.writer.add_scalar("val/lpips", result.lpips, step)
            if result.depth_error is not None:
                self.writer.add_scalar("val/depth_error", result.depth_error, step)
            for name, prediction, target, depth, alpha in result.renders:
                self.writer.add_image(f"val/images/{name}", image_grid(prediction, target, depth, alpha), step,
                                      dataformats="HWC")
            self.say(f"step {step}: {scores_line(result)}, {num_gaussians} Gaussians")
        write_metrics(metrics_path, result, num_gaussians, step=step, train_minutes=self.minutes())
