"""The training loop: `train(config)` trains a scene end to end.

Per step, as the official `train.py`: pick the next view of a shuffled stack, raise the SH degree
every `increase-color-max-sh-band-interval` steps, set the means' learning rate, render, loss
(1 - lambda) L1 + lambda (1 - SSIM) (+ the strategy's regulariser), backward, densification
statistics, Adam step (with `optimizer: sparse-adam`, of the Gaussians visible in the step's
renders only), logs, evaluation, densification (not after the last step), checkpoints.
With `batch-size` B > 1 a step takes B distinct views off the stack, renders and backpropagates
them one by one (the loss is their mean) and then steps Adam once; rates and schedule scale as
`batch_scaling` says. Under torchrun (`distributed.World`) each process trains on its share of the
batch, gradients and statistics are summed over the processes, the val views are split between
them, and only rank 0 locks the output folder, writes, logs and prints.
With `pose-optimization` the training view is rendered from its corrected pose, with
`exposure-compensation` its render goes through its colour transform before the loss
(`camera_optimization.CameraOptimization`; validation and the saved scenes use neither). With
`depth-loss` a training view with a depth map also renders its inverse depth and adds the
weighted depth loss (`depth_supervision`); val views with a depth map report the depth error.

Outputs in `output-model-dir` (all written atomically): `train_config.yaml` (the effective
config, absolute paths), `train.json` / `val.json` (the cameras; with `pose-optimization`
train.json holds the refined training cameras, rewritten at each evaluation), `exposure.json`
(with `exposure-compensation`, at each evaluation), `scene_<step>.parquet` at each evaluation,
`best_scene.parquet` (best val PSNR), `final_scene.parquet` and `point_cloud.ply` (official PLY) at
the end, `metrics.json` (the last evaluation: val PSNR, SSIM, and LPIPS with `logging.lpips-weights`)
and `checkpoints/`.

Failing early, changing nothing: every input (config paths, output folders, cameras, images, point
cloud, and with `--resume` the checkpoint and whether it belongs to this config) is read and checked
before anything is created, so a run that fails on its input leaves the output and log folders as
they were. Then the run locks its output folder (`run_folder.RunLock`: one run per folder), deletes
the temporary files an interrupted run left there, and only then writes. A scene that becomes empty
or non-finite stops the run with an error naming the step, keeping the last good checkpoint.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from taichi_3dgs.atomic_io import remove_stale_temporaries, write_text_atomic
from taichi_3dgs.backend import torch_device
from taichi_3dgs.cli import check_port_free
from taichi_3dgs.data.background_points import background_points
from taichi_3dgs.data.cameras import CameraRecord, read_cameras_json, write_cameras_json
from taichi_3dgs.data.point_cloud import PointCloud
from taichi_3dgs.data.views import View, load_view, load_views
from taichi_3dgs.lpips import LPIPS, check_image_size, load_lpips
from taichi_3dgs.rasterizer import RasterizeOutput
from taichi_3dgs.scene.diagnostics import diagnose_scene
from taichi_3dgs.scene.model import GaussianModel, load_initial_model
from taichi_3dgs.scene.parquet import write_scene_parquet
from taichi_3dgs.scene.ply import write_ply
from taichi_3dgs.training.batch_scaling import learning_rate_factor, schedule_in_batches
from taichi_3dgs.training.camera_optimization import CameraOptimization
from taichi_3dgs.training.checkpoint import (
    camera_fingerprint, check_resumable, checkpoint_dir, latest_checkpoint, load_checkpoint, model_from_checkpoint,
    restoring, save_checkpoint,
)
from taichi_3dgs.training.config import ConfigError, TrainConfig, config_to_yaml, require_paths
from taichi_3dgs.training.dataset import ViewSampler, scene_centre, scene_extent
from taichi_3dgs.training.densification import make_strategy
from taichi_3dgs.training.depth_supervision import depth_loss, depth_loss_weight
from taichi_3dgs.training.distributed import SINGLE_PROCESS, World, evaluate_across_ranks
from taichi_3dgs.training.evaluation import EvaluationResult, image_grid, render_view
from taichi_3dgs.metrics import psnr, ssim
from taichi_3dgs.training.losses import l1_loss
from taichi_3dgs.training.optimization import make_optimizer, means_learning_rate, set_learning_rate
from taichi_3dgs.training.run_folder import RunLock, check_output_folder



class DegenerateTrainingError(ValueError):
    """Training made a scene it cannot go on with: every Gaussian pruned, or non-finite values.

    The message names the step and the likely cause; the last checkpoint written before is kept.
    """


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

    A second Ctrl-C raises KeyboardInterrupt at once. `announce` prints the notice (a no-op in all
    but one of several processes, which all get the signal from torchrun).
    """

    def __init__(self, announce: Callable[[str], None] = tqdm.write) -> None:
        self.requested = False
        self.announce = announce

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            self.announce("Ctrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to abort)")

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
    """Histograms of the parameters; empty tensors are skipped (TensorBoard refuses them)."""
    with torch.no_grad():
        tensors = {"means": model.means, "log_scales": model.log_scales,
                   "opacities": torch.sigmoid(model.opacity_logits), "quats": model.quats,
                   "sh_dc": model.sh_dc, "sh_rest": model.sh_rest}
        for name, tensor in tensors.items():
            if tensor.numel():
                writer.add_histogram(f"params/{name}", tensor.cpu(), step)


def _read_cameras(config: TrainConfig, source: str) -> tuple[list[CameraRecord], list[CameraRecord]]:
    """The train and val camera records; raise ConfigError when there is no train camera."""
    train_records = read_cameras_json(config.train_dataset_json_path)
    if not train_records:
        raise ConfigError(f"{source}: key 'train-dataset-json-path' is {config.train_dataset_json_path}, which "
                          "holds no camera record; expected at least one")
    val_records = read_cameras_json(config.val_dataset_json_path) if config.val_dataset_json_path else []
    return train_records, val_records


def _warn_about_first_render(model: GaussianModel, out: RasterizeOutput, view_name: str, step: int,
                             extent: float, alpha_threshold: float) -> bool:
    """Warn when the first render of a run shows that nothing can be learnt as set up: no Gaussian
    visible from the camera, or a problem `diagnose_scene` finds (no Gaussians, non-finite values,
    every Gaussian transparent, absurd scales). True if warned."""
    problems = [] if int((out.radii > 0).sum()) else [
        f"none of the {model.num_gaussians} Gaussians is visible from training view {view_name} (check that "
        "the cameras' T_pointcloud_camera, camera-to-world, and the point cloud share one world frame)"]
    problems += diagnose_scene(model.to_scene(), extent, alpha_threshold)
    for problem in problems:
        warnings.warn(f"step {step}: {problem}")
    return bool(problems)


def _load_lpips(config: TrainConfig, source: str, device: torch.device) -> Optional[LPIPS]:
    """The LPIPS metric of `logging.lpips-weights` on `device`, or None when the key is null.

    Raises:
        ConfigError: the file is missing or not valid LPIPS weights (names the key and the file).
    """
    path = config.logging.lpips_weights
    if path is None:
        return None
    try:
        return load_lpips(path, device)
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError(f"{source}: key 'logging.lpips-weights': {error}") from None


def _scores_line(evaluation: EvaluationResult) -> str:
    """'val PSNR x dB, SSIM y[, LPIPS z][, depth error e %]' for the printed lines."""
    lpips = "" if evaluation.lpips is None else f", LPIPS {evaluation.lpips:.4f}"
    depth = "" if evaluation.depth_error is None else f", depth error {100 * evaluation.depth_error:.2f} %"
    return f"val PSNR {evaluation.psnr:.2f} dB, SSIM {evaluation.ssim:.4f}{lpips}{depth}"


def _write_metrics(path: Path, step: int, evaluation: Optional[EvaluationResult], num_gaussians: int,
                   minutes: float) -> None:
    metrics = {
        "step": step,
        "val": None if evaluation is None else evaluation.to_json(),
        "num_gaussians": num_gaussians,
        "train_minutes": minutes,
    }
    write_text_atomic(path, json.dumps(metrics, indent=2) + "\n")


def _initial_points(config: TrainConfig, train_views: list[View], train_records: list[CameraRecord], extent: float,
                    background: torch.Tensor) -> Optional[Callable[[PointCloud], PointCloud]]:
    """The `extra_points` of `load_initial_model` for the config's `initial-points` (None when all
    counts are 0): the view-volume, far-shell, beyond-cloud and camera-shell points of
    `data.background_points`."""
    points = config.initial_points
    if not (points.random_in_view_volume or points.far_shell or points.beyond_cloud or points.camera_shell):
        return None
    return functools.partial(
        background_points, views=train_views, num_view_volume=points.random_in_view_volume,
        depth_quantiles=points.view_volume_depth_quantiles, num_far_shell=points.far_shell,
        shell_centre=scene_centre(train_records), shell_radius=points.far_shell_radius * extent,
        background=background, seed=config.seed, num_beyond_cloud=points.beyond_cloud,
        beyond_cloud_depth_quantiles=points.beyond_cloud_depth_quantiles,
        beyond_cloud_far_factor=points.beyond_cloud_far_factor, num_camera_shell=points.camera_shell,
        camera_shell_radius=points.camera_shell_radius,
    )


def _check_batch(batch_size: int, world: World, num_train_views: int, config: TrainConfig, source: str) -> None:
    """Refuse a batch the processes cannot share evenly, or larger than the training cameras."""
    if batch_size % world.size:
        raise ConfigError(f"{source}: key 'batch-size' is {batch_size}, the global batch, which {world.size} "
                          f"processes cannot share evenly; use a multiple of {world.size}")
    if batch_size > num_train_views:
        raise ConfigError(f"{source}: key 'batch-size' is {batch_size} but key 'train-dataset-json-path' "
                          f"({config.train_dataset_json_path}) holds {num_train_views} camera(s); a batch takes "
                          f"distinct cameras, so at most {num_train_views}")


def _check_depth_maps(config: TrainConfig, train_records: list[CameraRecord], source: str) -> None:
    """Refuse `depth-loss: true` when no training camera names a depth map: it would train nothing."""
    if config.depth_loss and all(record.depth_path is None for record in train_records):
        raise ConfigError(f"{source}: key 'depth-loss' is true but no record of key 'train-dataset-json-path' "
                          f"({config.train_dataset_json_path}) names a depth map; expected depth_path in the "
                          "records to supervise (docs/FORMATS.md), or depth-loss: false")


def train(config: TrainConfig, resume: bool = False, config_source: str = "<config>",
          world: World = SINGLE_PROCESS, viewer: Optional[tuple[str, int]] = None) -> TrainResult:
    """Train a Gaussian scene as `config` says; see the module docstring for the outputs.

    Args:
        config: the validated config (paths absolute, as `load_train_config` gives).
        resume: continue from the newest checkpoint in `<output-model-dir>/checkpoints`; the run
            then ends with the same result as an uninterrupted one with the same config. The
            checkpoint must come from this config (`checkpoint.check_resumable`).
        config_source: name of the config file, for error messages.
        world: the processes training together (`distributed.joined_world`); every one calls
            `train` with the same arguments, rank 0 writes and prints.
        viewer: (host, port) where rank 0 serves the live web viewer (`viewer.web.WebViewer`: the
            scene being trained, step, loss, Gaussian count, steps/s and a pause button; its renders
            take at most `web.TRAINING_RENDER_FRACTION` of the wall time), or None.

    Warns:
        UserWarning: at the first step, when no Gaussian is visible from the first training view,
            every Gaussian is transparent or scales are absurd; later, once, when a training
            render is blank; when a stale lock of a dead run is taken over.

    Raises:
        ConfigError: a required path is not set, an output folder cannot be created or written,
            `logging.lpips-weights` names a missing or malformed file (or val images too small
            for LPIPS), there is no train camera, `batch-size` exceeds the train cameras or is not
            a multiple of the number of processes, or `depth-loss` is on and no train camera has a
            depth map.
        FileNotFoundError / ValueError: missing or invalid cameras, images, depth maps, point
            cloud or checkpoint, or a checkpoint written by another config (the message names the
            file).
        FolderInUseError: another live run holds the output folder.
        ValueError: the viewer's port is in use (checked before anything is written).
        DegenerateTrainingError: the scene became empty or non-finite (names the step).
    """
    main = world.is_main

    def say(message: str) -> None:
        if main:
            tqdm.write(message)

    # Read and check everything first: nothing is created or changed before the lock below.
    require_paths(config, config_source)
    out_dir = Path(config.output_model_dir)
    check_output_folder(out_dir, "output-model-dir", config_source)
    check_output_folder(config.summary_writer_log_dir, "summary-writer-log-dir", config_source)
    if viewer is not None and main:
        check_port_free(*viewer)
    device = torch_device()
    background = torch.tensor(config.background_color, dtype=torch.float32, device=device)
    lpips = _load_lpips(config, config_source, device)

    train_records, val_records = _read_cameras(config, config_source)
    batch_size = config.batch_size
    _check_batch(batch_size, world, len(train_records), config, config_source)
    _check_depth_maps(config, train_records, config_source)
    cameras = {"train": camera_fingerprint(train_records), "val": camera_fingerprint(val_records)}
    # Training depth maps are loaded only for the depth loss (they take more memory than the images).
    train_views = load_views(train_records, config.image_downscale_factor, config.max_image_long_side, device,
                             str(config.train_dataset_json_path), with_depth=config.depth_loss)
    # Each process decodes only the val images it renders (`evaluate_across_ranks`).
    val_views = [load_view(record, config.image_downscale_factor, config.max_image_long_side, device,
                           f"{config.val_dataset_json_path}: record {index}", with_depth=True)
                 for index, record in world.share(list(enumerate(val_records)))]
    for view in val_views if lpips is not None else []:  # refused now, not at the first evaluation
        try:
            check_image_size(view.width, view.height, f"val image {view.name}")
        except ValueError as error:
            raise ConfigError(f"{config_source}: key 'logging.lpips-weights': {error}") from None
    extent = scene_extent(train_records)
    first = train_views[0]
    say(f"{len(train_views)} train / {len(val_records)} val views at {first.width}x{first.height} px "
        f"(first view), scene extent {extent:.3f}")
    # The loop counts optimisation steps of batch_size views; the config counts images.
    schedule = schedule_in_batches(config)
    if batch_size > 1 or world.size > 1:
        shared = f" ({batch_size // world.size} in each of {world.size} processes)" if world.size > 1 else ""
        say(f"batches of {batch_size} views{shared}: {schedule.num_iterations} steps, learning rates x "
            f"{learning_rate_factor(batch_size):.3g}")

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
        check_resumable(checkpoint, path, config, cameras, config_source)
        model = model_from_checkpoint(checkpoint, path, device)
        start_step = checkpoint["step"]
        initial_sh_degree = checkpoint["initial_sh_degree"]
    else:
        model = load_initial_model(
            config.pointcloud_parquet_path, scene_cfg.initial_opacity, scene_cfg.num_neighbours, config.seed, device,
            _initial_points(config, train_views, train_records, extent, background),
        )
        initial_sh_degree = model.active_sh_degree
        earlier = latest_checkpoint(out_dir)
        if earlier is not None:
            say(f"{out_dir} holds {earlier.name} of an earlier run: this run starts afresh and replaces it at its "
                "first checkpoint (to continue the earlier run instead, stop now and run again with --resume)")
    # The config's filter, also for a warm start from a scene that recorded another one: the saved
    # scenes record the filter they were trained with, for every renderer to apply.
    model.antialiased = config.rasterisation_config.antialiased

    rates = schedule.learning_rates
    optimizer = make_optimizer(model, rates, extent, batch_size, config.optimizer)
    white = all(c == 1.0 for c in config.background_color)
    strategy = make_strategy(config.strategy, schedule.adaptive_controller_config, schedule.mcmc_config, extent, white)
    # Pose optimisation and exposure compensation: with both off, each cameras_opt hook is a no-op.
    cameras_opt = CameraOptimization(schedule, train_records, train_views, device, config_source)
    if checkpoint is not None:
        cameras_opt.load_checkpoint(checkpoint, path)
        with restoring(path, "optimizer"):
            optimizer.load_state_dict(checkpoint["optimizer"])
        with restoring(path, "strategy"):
            strategy.load_state_dict(checkpoint["strategy"], device)
        with restoring(path, "sampler"):
            sampler.load_state_dict(checkpoint["sampler"])
        with restoring(path, "generator"):
            generator.set_state(checkpoint["generator"])
        best = dict(checkpoint["best"])
        say(f"resuming from {path} (step {start_step})")

    raster_cfg = dataclasses.replace(config.rasterisation_config, color_activation=model.color_activation)
    loss_cfg = config.loss_function_config
    log_cfg = schedule.logging
    config_yaml = config_to_yaml(config)
    # Every process has read its inputs: none is left to fail on them after rank 0 starts writing.
    world.barrier()

    with RunLock(out_dir) if main else contextlib.nullcontext():
        writer: Optional[SummaryWriter] = None
        if main:
            # No other run writes here now: temporary files are leftovers of a killed run.
            removed = remove_stale_temporaries(out_dir) + remove_stale_temporaries(checkpoint_dir(out_dir))
            if removed:
                say(f"removed {len(removed)} temporary file(s) of an interrupted write: "
                    + ", ".join(str(p.relative_to(out_dir)) for p in removed))
            write_text_atomic(out_dir / "train_config.yaml", config_yaml)
            write_cameras_json(out_dir / "train.json", train_records)
            if val_records:
                write_cameras_json(out_dir / "val.json", val_records)
            cameras_opt.write_outputs(out_dir)  # refined train.json, exposure.json (when on)
            writer = SummaryWriter(str(config.summary_writer_log_dir), purge_step=start_step + 1 if resume else None)
        web = None
        if viewer is not None and main:
            from taichi_3dgs.viewer.web import WebViewer  # viser loads only for --viewer

            web = WebViewer(cameras=train_records, host=viewer[0], port=viewer[1])
            # Rendered from the live parameters whenever the page needs a frame (densification
            # replaces the tensors, so the scene is built anew each time, on the training device).
            web.set_scene(lambda: model.to_scene(device))
            say(f"watch the training at {web.url}")
        last_loss: Optional[float] = None
        stop = _StopFlag(say)
        evaluation: Optional[EvaluationResult] = None
        started = time.perf_counter()

        def minutes() -> float:
            return (time.perf_counter() - started) / 60.0

        def degenerate(step: int, what: str) -> DegenerateTrainingError:
            last = latest_checkpoint(out_dir)
            kept = f"the last checkpoint, {last}, is kept" if last else "no checkpoint was written"
            return DegenerateTrainingError(f"step {step}: {what}; {kept}")

        def save(step: int) -> None:
            finite = torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all()
            if not bool(finite):  # a diverged scene must not replace the last good checkpoint
                raise degenerate(step, "parameters became NaN or infinite: training diverged (learning rates "
                                       "too high?)")
            if not main:
                return
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
                "cameras": cameras,
                **cameras_opt.checkpoint_entries(),
            })

        def validate(step: int) -> Optional[EvaluationResult]:
            # Every rank renders its share of the val views; the scores reach every rank.
            result = evaluate_across_ranks(world, model, val_views, len(val_records), raster_cfg, background,
                                           log_cfg.num_log_images, loss_cfg.ssim_window_size, loss_cfg.ssim_sigma,
                                           lpips)
            improved = result is not None and result.psnr > best["psnr"]
            if improved:
                best.update(psnr=result.psnr, step=step)
            if not main:
                return result
            scene = model.to_scene()
            write_scene_parquet(out_dir / f"scene_{step}.parquet", scene)
            cameras_opt.write_outputs(out_dir)
            if result is not None:
                writer.add_scalar("val/psnr", result.psnr, step)
                writer.add_scalar("val/ssim", result.ssim, step)
                if result.lpips is not None:
                    writer.add_scalar("val/lpips", result.lpips, step)
                if result.depth_error is not None:
                    writer.add_scalar("val/depth error", result.depth_error, step)
                for name, prediction, target, depth, alpha in result.renders:
                    writer.add_image(f"val/images/{name}", image_grid(prediction, target, depth, alpha), step,
                                     dataformats="HWC")
                if improved:
                    write_scene_parquet(out_dir / "best_scene.parquet", scene)
                say(f"step {step}: {_scores_line(result)}, {model.num_gaussians} Gaussians")
            _write_metrics(out_dir / "metrics.json", step, result, model.num_gaussians, minutes())
            return result

        step = start_step
        warned_blank = False
        bar = tqdm(total=schedule.num_iterations, initial=start_step, disable=not (log_cfg.progress_bar and main),
                   dynamic_ncols=True, desc="training")
        try:
            with stop.installed():
                for step in range(start_step + 1, schedule.num_iterations + 1):
                    step_started = time.perf_counter()
                    model.active_sh_degree = max(
                        initial_sh_degree, min(scene_cfg.max_sh_degree, step // schedule.increase_color_max_sh_band_interval)
                    )
                    means_lr = means_learning_rate(step, rates, extent, schedule.num_iterations, batch_size)
                    set_learning_rate(optimizer, "means", means_lr)
                    cameras_opt.set_learning_rates(step)
                    depth_weight = depth_loss_weight(step, config.depth_loss_config, schedule.num_iterations)
                    # Every process draws the whole batch (the same generator state everywhere), then
                    # trains on its share of it.
                    indices = sampler.next_batch(generator, batch_size)
                    backgrounds = [torch.rand(3, generator=generator).to(device) if config.random_background
                                   else background for _ in indices]
                    logging_step = step % log_cfg.log_loss_interval == 0
                    logged = torch.zeros(5, device=device)  # loss, L1, SSIM, PSNR, depth loss: batch means
                    renders = []
                    for index, step_background in world.share(list(zip(indices, backgrounds))):
                        view = train_views[index]
                        target = view.target(step_background)
                        supervise_depth = config.depth_loss and view.depth is not None
                        out = render_view(model, cameras_opt.training_view(index, view), raster_cfg, step_background,
                                          render_inverse_depth=supervise_depth, absgrad=strategy.absgrad)
                        image = cameras_opt.compensate(index, out.image)  # what the loss compares
                        if step == start_step + 1 and main and not renders:
                            warned_blank = _warn_about_first_render(model, out, view.name, step, extent,
                                                                    raster_cfg.alpha_threshold)
                        l1 = l1_loss(image, target, view.mask)
                        ssim_value = ssim(image, target, view.mask, loss_cfg.ssim_window_size, loss_cfg.ssim_sigma)
                        loss = (1.0 - loss_cfg.lambda_value) * l1 + loss_cfg.lambda_value * (1.0 - ssim_value)
                        depth_value = depth_loss(view, out.inverse_depth, out.alpha) if supervise_depth else None
                        if depth_value is not None:
                            loss = loss + depth_weight * depth_value
                        # The step's loss is the mean over the batch plus the regulariser (added once over
                        # all processes); each view's part is backpropagated at once, freeing its render.
                        loss = loss / batch_size
                        if not renders:
                            loss = loss + strategy.regularization_loss(model) / world.size
                        loss.backward()
                        renders.append((out, view.width, view.height))
                        if logging_step:
                            view_psnr = psnr(image.detach().clamp(0.0, 1.0), target, view.mask)
                            view_depth = torch.zeros((), device=device) if depth_value is None else depth_value.detach()
                            logged += torch.stack([loss.detach(), l1.detach(), ssim_value.detach(), view_psnr, view_depth])
                            if len(renders) == 1:  # this process's first view: the blank-render check
                                first_view = (view.name, float(view_psnr))
                    world.sum_gradients(list(model.parameters()) + cameras_opt.parameters())
                    strategy.step_post_backward(step, renders, batch_size, world)
                    if config.optimizer == "sparse-adam":
                        # Visible: radius > 0 in any render of the batch, in any process.
                        visible = torch.stack([out.radii > 0 for out, _, _ in renders]).any(dim=0)
                        optimizer.step(world.union(visible))
                    else:
                        optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    cameras_opt.step()

                    if logging_step:
                        world.sum_(logged)
                        loss_value = last_loss = float(logged[0])
                        l1_value, ssim_mean, train_psnr, depth_mean = (logged[1:] / batch_size).tolist()
                        if not math.isfinite(loss_value):
                            raise degenerate(step, f"the loss is {loss_value}: training diverged (learning rates "
                                                   "too high?)")
                        if main:
                            out = renders[0][0]
                            if not warned_blank and float(out.alpha.detach().max()) < raster_cfg.alpha_threshold:
                                warned_blank = True
                                name, view_psnr = first_view
                                warnings.warn(f"step {step}: the render of training view {name} is blank (train "
                                              f"PSNR {view_psnr:.2f} dB is that of the background alone): every "
                                              "Gaussian is transparent or out of its view")
                            writer.add_scalar("train/loss", loss_value, step)
                            writer.add_scalar("train/l1 loss", l1_value, step)
                            writer.add_scalar("train/ssim loss", 1.0 - ssim_mean, step)
                            writer.add_scalar("train/psnr", train_psnr, step)
                            if config.depth_loss:
                                writer.add_scalar("train/depth loss", depth_mean, step)
                            writer.add_scalar("value/num_valid_points", model.num_gaussians, step)
                            writer.add_scalar("train/step time ms", 1000.0 * (time.perf_counter() - step_started),
                                              step)
                            cameras_opt.log(writer, step)
                            bar.set_postfix(loss=f"{loss_value:.4f}", psnr=f"{train_psnr:.2f}",
                                            gaussians=model.num_gaussians, refresh=False)
                    bar.update(1)
                    # Evaluate before densifying, as the official training_report: fresh clones and
                    # splits need a few steps to settle. Nothing trains after the last step, so the
                    # strategy does not run there.
                    if step % schedule.val_interval == 0 or step == schedule.num_iterations:
                        evaluation = validate(step)
                    if step < schedule.num_iterations:
                        refined = strategy.step_post_optimizer(step, model, optimizer, means_lr, generator)
                        if model.num_gaussians == 0:
                            cfg = config.adaptive_controller_config
                            raise degenerate(step, (
                                "densification pruned every Gaussian, the scene is empty; likely causes: "
                                "opacities below adaptive-controller-config.transparent-opacity-threshold "
                                f"({cfg.transparent_opacity_threshold:g}), e.g. from a too high "
                                f"learning-rates.opacity ({rates.opacity:g}), or Gaussians beyond max-screen-radius "
                                f"({cfg.max_screen_radius:g} px) / max-world-size-ratio ({cfg.max_world_size_ratio:g})"
                            ))
                        if refined and log_cfg.log_histograms and main:
                            _log_histograms(writer, model, step)
                    if web is not None:  # blocks here while the page's pause button is down
                        web.update(step, loss=last_loss, num_gaussians=model.num_gaussians,
                                   steps_per_second=(step - start_step) / (time.perf_counter() - started))
                    if world.any(stop.requested):  # every process stops after the same step
                        save(step)
                        world.barrier()  # no process ends (ending the job) before rank 0 has saved
                        say(f"stopped at step {step}; continue with --resume")
                        return TrainResult(step, True, model.num_gaussians, evaluation, minutes())
                    if step % schedule.checkpoint_interval == 0 or step == schedule.num_iterations:
                        save(step)
        finally:
            bar.close()
            if writer is not None:
                writer.close()
            if web is not None:
                web.stop()

        if resume and start_step >= schedule.num_iterations:
            say(f"the checkpoint is at step {start_step} >= num-iterations; writing the final outputs")
            evaluation = validate(start_step)
        if main:
            final = model.to_scene()
            write_scene_parquet(out_dir / "final_scene.parquet", final)
            write_ply(out_dir / "point_cloud.ply", final)
    result = TrainResult(step, False, model.num_gaussians, evaluation, minutes())
    say(f"done: {step} steps in {result.minutes:.1f} min, {model.num_gaussians} Gaussians"
        + (f", {_scores_line(evaluation)}" if evaluation else "")
        + f"; outputs in {out_dir}")
    return result
