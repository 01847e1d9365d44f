"""The training loop: `train(config)` trains a scene end to end.

Per step, as the official `train.py`: pick the next view of a shuffled stack, raise the SH degree
every `increase-color-max-sh-band-interval` steps, set the means' learning rate, render, loss
(1 - lambda) L1 + lambda (1 - SSIM) (+ the strategy's regulariser), backward, densification
statistics, Adam step, logs, evaluation, densification (not after the last step), checkpoints.

Outputs in `output-model-dir` (all written atomically): `train_config.yaml` (the effective
config, absolute paths), `train.json` / `val.json` (the cameras), `scene_<step>.parquet` at each
evaluation, `best_scene.parquet` (best val PSNR), `final_scene.parquet` and `point_cloud.ply`
(official PLY) at the end, `metrics.json` (the last evaluation) and `checkpoints/`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from taichi_3dgs.atomic_io import write_text_atomic
from taichi_3dgs.backend import torch_device
from taichi_3dgs.data.cameras import read_cameras_json, write_cameras_json
from taichi_3dgs.data.views import load_views
from taichi_3dgs.scene.model import GaussianModel, load_initial_model
from taichi_3dgs.scene.parquet import write_scene_parquet
from taichi_3dgs.scene.ply import write_ply
from taichi_3dgs.training.checkpoint import checkpoint_dir, latest_checkpoint, load_checkpoint, save_checkpoint
from taichi_3dgs.training.config import TrainConfig, config_to_yaml, require_paths
from taichi_3dgs.training.dataset import ViewSampler, scene_extent
from taichi_3dgs.training.densification import make_strategy
from taichi_3dgs.training.evaluation import EvaluationResult, evaluate, image_grid, render_view
from taichi_3dgs.metrics import psnr, ssim
from taichi_3dgs.training.losses import l1_loss
from taichi_3dgs.training.optimization import make_optimizer, means_learning_rate, set_learning_rate


@dataclass
class TrainResult:
    """What a `train` call did.

    Attributes:
        step: last completed step.
        interrupted: True when stopped by Ctrl-C (a checkpoint of `step` was saved).
        num_gaussians: Gaussians at the end.
        evaluation: the last evaluation (None without val views or when interrupted early).
        minutes: wall time of this call's training steps and evaluations, minutes.
    """

    step: int
    interrupted: bool
    num_gaussians: int
    evaluation: Optional[EvaluationResult]
    minutes: float


class _StopFlag:
    """Ctrl-C sets a flag; the loop finishes its step, saves a checkpoint and returns.

    A second Ctrl-C raises KeyboardInterrupt at once.
    """

    def __init__(self) -> None:
        self.requested = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            tqdm.write("Ctrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to abort)")

        try:
            previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: signals cannot be caught here
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def _log_histograms(writer: SummaryWriter, model: GaussianModel, step: int) -> None:
    with torch.no_grad():
        writer.add_histogram("params/means", model.means.cpu(), step)
        writer.add_histogram("params/log_scales", model.log_scales.cpu(), step)
        writer.add_histogram("params/opacities", torch.sigmoid(model.opacity_logits).cpu(), step)
        writer.add_histogram("params/quats", model.quats.cpu(), step)
        writer.add_histogram("params/sh_dc", model.sh_dc.cpu(), step)
        writer.add_histogram("params/sh_rest", model.sh_rest.cpu(), step)


def _write_metrics(path: Path, step: int, evaluation: Optional[EvaluationResult], num_gaussians: int,
                   minutes: float) -> None:
    metrics = {
        "step": step,
        "val": None if evaluation is None else evaluation.to_json(),
        "num_gaussians": num_gaussians,
        "train_minutes": minutes,
    }
    write_text_atomic(path, json.dumps(metrics, indent=2) + "\n")


def train(config: TrainConfig, resume: bool = False, config_source: str = "<config>") -> TrainResult:
    """Train a Gaussian scene as `config` says; see the module docstring for the outputs.

    Args:
        config: the validated config (paths absolute, as `load_train_config` gives).
        resume: continue from the newest checkpoint in `<output-model-dir>/checkpoints`; the run
            then ends with the same result as an uninterrupted one with the same config.
        config_source: name of the config file, for error messages.

    Raises:
        ConfigError: a required path is not set.
        FileNotFoundError / ValueError: missing or invalid cameras, images, point cloud or
            checkpoint (the message names the file).
    """
    require_paths(config, config_source)
    device = torch_device()
    out_dir = Path(config.output_model_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    background = torch.tensor(config.background_color, dtype=torch.float32, device=device)

    train_records = read_cameras_json(config.train_dataset_json_path)
    val_records = read_cameras_json(config.val_dataset_json_path) if config.val_dataset_json_path else []
    load = lambda records, source: load_views(  # noqa: E731
        records, config.image_downscale_factor, config.max_image_long_side, device, source
    )
    train_views = load(train_records, str(config.train_dataset_json_path))
    val_views = load(val_records, str(config.val_dataset_json_path))
    extent = scene_extent(train_records)
    first = train_views[0]
    tqdm.write(
        f"{len(train_views)} train / {len(val_views)} val views at {first.width}x{first.height} px "
        f"(first view), scene extent {extent:.3f}"
    )

    scene_cfg = config.gaussian_point_cloud_scene_config
    generator = torch.Generator().manual_seed(config.seed)
    sampler = ViewSampler(len(train_views))
    best = {"psnr": -math.inf, "step": 0}
    start_step = 0
    checkpoint = None
    if resume:
        path = latest_checkpoint(out_dir)
        if path is None:
            raise FileNotFoundError(f"--resume: no checkpoint in {checkpoint_dir(out_dir)}")
        checkpoint = load_checkpoint(path, device)
        start_step = int(checkpoint["step"])
        tensors = checkpoint["model"]
        model = GaussianModel(
            tensors["means"], tensors["quats"], tensors["log_scales"], tensors["opacity_logits"],
            torch.cat([tensors["sh_dc"], tensors["sh_rest"]], dim=1), checkpoint["color_activation"],
            checkpoint["active_sh_degree"],
        ).to(device)
        initial_sh_degree = int(checkpoint["initial_sh_degree"])
        tqdm.write(f"resuming from {path} (step {start_step})")
    else:
        model = load_initial_model(
            config.pointcloud_parquet_path, scene_cfg.initial_opacity, scene_cfg.num_neighbours, config.seed, device
        )
        initial_sh_degree = model.active_sh_degree

    rates = config.learning_rates
    optimizer = make_optimizer(model, rates, extent)
    white = all(c == 1.0 for c in config.background_color)
    strategy = make_strategy(config.strategy, config.adaptive_controller_config, config.mcmc_config, extent, white)
    if checkpoint is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        strategy.load_state_dict(checkpoint["strategy"], device)
        sampler.load_state_dict(checkpoint["sampler"])
        generator.set_state(checkpoint["generator"])
        best = dict(checkpoint["best"])

    raster_cfg = dataclasses.replace(config.rasterisation_config, color_activation=model.color_activation)
    loss_cfg = config.loss_function_config
    log_cfg = config.logging
    config_yaml = config_to_yaml(config)
    write_text_atomic(out_dir / "train_config.yaml", config_yaml)
    write_cameras_json(out_dir / "train.json", train_records)
    if val_records:
        write_cameras_json(out_dir / "val.json", val_records)

    writer = SummaryWriter(str(config.summary_writer_log_dir), purge_step=start_step + 1 if resume else None)
    stop = _StopFlag()
    evaluation: Optional[EvaluationResult] = None
    started = time.perf_counter()

    def minutes() -> float:
        return (time.perf_counter() - started) / 60.0

    def save(step: int) -> None:
        save_checkpoint(out_dir, step, {
            "model": {name: p.detach() for name, p in model.parameter_dict().items()},
            "color_activation": model.color_activation,
            "active_sh_degree": model.active_sh_degree,
            "initial_sh_degree": initial_sh_degree,
            "optimizer": optimizer.state_dict(),
            "strategy": strategy.state_dict(),
            "sampler": sampler.state_dict(),
            "generator": generator.get_state(),
            "best": dict(best),
            "config_yaml": config_yaml,
        })

    def validate(step: int) -> Optional[EvaluationResult]:
        result = evaluate(model, val_views, raster_cfg, background, log_cfg.num_log_images,
                          loss_cfg.ssim_window_size, loss_cfg.ssim_sigma)
        scene = model.to_scene()
        write_scene_parquet(out_dir / f"scene_{step}.parquet", scene)
        if result is not None:
            writer.add_scalar("val/psnr", result.psnr, step)
            writer.add_scalar("val/ssim", result.ssim, step)
            for name, prediction, target, depth, alpha in result.renders:
                writer.add_image(f"val/images/{name}", image_grid(prediction, target, depth, alpha), step,
                                 dataformats="HWC")
            if result.psnr > best["psnr"]:
                best.update(psnr=result.psnr, step=step)
                write_scene_parquet(out_dir / "best_scene.parquet", scene)
            tqdm.write(f"step {step}: val PSNR {result.psnr:.2f} dB, SSIM {result.ssim:.4f}, "
                       f"{model.num_gaussians} Gaussians")
        _write_metrics(out_dir / "metrics.json", step, result, model.num_gaussians, minutes())
        return result

    step = start_step
    bar = tqdm(total=config.num_iterations, initial=start_step, disable=not log_cfg.progress_bar,
               dynamic_ncols=True, desc="training")
    try:
        with stop.installed():
            for step in range(start_step + 1, config.num_iterations + 1):
                step_started = time.perf_counter()
                model.active_sh_degree = max(
                    initial_sh_degree, min(scene_cfg.max_sh_degree, step // config.increase_color_max_sh_band_interval)
                )
                means_lr = means_learning_rate(step, rates, extent, config.num_iterations)
                set_learning_rate(optimizer, "means", means_lr)
                view = train_views[sampler.next(generator)]
                step_background = torch.rand(3, generator=generator).to(device) if config.random_background else background
                target = view.target(step_background)
                mask = view.mask

                out = render_view(model, view, raster_cfg, step_background)
                l1 = l1_loss(out.image, target, mask)
                ssim_value = ssim(out.image, target, mask, loss_cfg.ssim_window_size, loss_cfg.ssim_sigma)
                loss = (1.0 - loss_cfg.lambda_value) * l1 + loss_cfg.lambda_value * (1.0 - ssim_value)
                loss = loss + strategy.regularization_loss(model)
                loss.backward()
                strategy.step_post_backward(step, out, view.width, view.height)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

                if step % log_cfg.log_loss_interval == 0:
                    train_psnr = float(psnr(out.image.detach().clamp(0.0, 1.0), target, mask))
                    writer.add_scalar("train/loss", loss.item(), step)
                    writer.add_scalar("train/l1 loss", l1.item(), step)
                    writer.add_scalar("train/ssim loss", 1.0 - ssim_value.item(), step)
                    writer.add_scalar("train/psnr", train_psnr, step)
                    writer.add_scalar("value/num_valid_points", model.num_gaussians, step)
                    writer.add_scalar("train/step time ms", 1000.0 * (time.perf_counter() - step_started), step)
                    bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{train_psnr:.2f}", gaussians=model.num_gaussians,
                                    refresh=False)
                bar.update(1)
                # Evaluate before densifying, as the official training_report: fresh clones and
                # splits need a few steps to settle. Nothing trains after the last step, so the
                # strategy does not run there.
                if step % config.val_interval == 0 or step == config.num_iterations:
                    evaluation = validate(step)
                if step < config.num_iterations:
                    refined = strategy.step_post_optimizer(step, model, optimizer, means_lr, generator)
                    if refined and log_cfg.log_histograms:
                        _log_histograms(writer, model, step)
                if stop.requested:
                    save(step)
                    tqdm.write(f"stopped at step {step}; continue with --resume")
                    return TrainResult(step, True, model.num_gaussians, evaluation, minutes())
                if step % config.checkpoint_interval == 0 or step == config.num_iterations:
                    save(step)
    finally:
        bar.close()
        writer.close()

    if resume and start_step >= config.num_iterations:
        tqdm.write(f"the checkpoint is at step {start_step} >= num-iterations; writing the final outputs")
        evaluation = validate(start_step)
    final = model.to_scene()
    write_scene_parquet(out_dir / "final_scene.parquet", final)
    write_ply(out_dir / "point_cloud.ply", final)
    result = TrainResult(step, False, model.num_gaussians, evaluation, minutes())
    tqdm.write(
        f"done: {step} steps in {result.minutes:.1f} min, {model.num_gaussians} Gaussians"
        + (f", val PSNR {evaluation.psnr:.2f} dB, SSIM {evaluation.ssim:.4f}" if evaluation else "")
        + f"; outputs in {out_dir}"
    )
    return result

