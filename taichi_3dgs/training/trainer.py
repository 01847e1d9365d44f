"""The training loop: `train(config)` trains a scene end to end, reading top to bottom as the
official `train.py`: prepare the run (`run_setup.prepare_run`: everything read and checked), lock
the output folder, then per step `_train_step` (render -> loss -> backward -> Adam), evaluation,
densification (`strategies`), checkpoint; everything reported goes through `reporting.Reporter`.

Per step, as the official `train.py`: pick the next view of a shuffled stack, raise the SH degree
every `increase-color-max-sh-band-interval` steps, set the means' learning rate, render, loss
(`losses.view_loss`: (1 - lambda) L1 + lambda (1 - SSIM), + the strategy's regulariser), backward, densification
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
(with `exposure-compensation`, at each evaluation), `metrics.json` (the last evaluation: val PSNR,
SSIM, and LPIPS with `logging.lpips-weights`), `checkpoints/`, and each scene written once:
`scene_<step>.parquet` at each evaluation before the last step; `final_scene.parquet` (the last
step's scene) and `point_cloud.ply` (official PLY) at the end; `best_scene.parquet` (best val
PSNR) only when an earlier evaluation than the last scored best: when the final scene does, an
earlier best_scene.parquet is removed at the end. The final line names the best scene. Every
parquet scene records the training resolution (`TrainingResolution`), which
`gaussian_point_render.py` evaluates at by default.

Failing early, changing nothing: every input (config paths, output folders, cameras, images, point
cloud, and with `--resume` the checkpoint and whether it belongs to this config) is read and checked
before anything is created, so a run that fails on its input leaves the output and log folders as
they were. Then the run locks its output folder (`run_folder.RunLock`: one run per folder), deletes
the temporary files an interrupted run left there, and only then writes. A scene that becomes empty
or non-finite stops the run with an error naming the step, keeping the last good checkpoint.
"""
from __future__ import annotations

import contextlib
import math
import signal
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import torch
from tqdm import tqdm

from taichi_3dgs.atomic_io import remove_stale_temporaries, write_text_atomic
from taichi_3dgs.data.cameras import write_cameras_json
from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.scene.parquet import TrainingResolution, write_scene_parquet
from taichi_3dgs.scene.ply import write_ply
from taichi_3dgs.training.checkpoint import checkpoint_dir, latest_checkpoint, save_checkpoint
from taichi_3dgs.training.config import TrainConfig
from taichi_3dgs.training.depth_supervision import depth_loss_weight
from taichi_3dgs.training.distributed import SINGLE_PROCESS, World
from taichi_3dgs.training.evaluation import EvaluationResult, evaluate_across_ranks, render_model_view
from taichi_3dgs.training.losses import LossLog, view_loss
from taichi_3dgs.training.optimization import means_learning_rate, set_learning_rate
from taichi_3dgs.training.reporting import LiveViewerFactory, Reporter, scores_line
from taichi_3dgs.training.run_folder import RunLock
from taichi_3dgs.training.run_setup import PreparedRun, prepare_run


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
    but one of several processes, which all get the signal from torchrun); `on_request` is called
    too (`Reporter.interrupted`: a paused live viewer lets the loop go on to stop).
    """

    def __init__(self, announce: Callable[[str], None] = tqdm.write,
                 on_request: Callable[[], None] = lambda: None) -> None:
        self.requested = False
        self.announce = announce
        self.on_request = on_request

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            self.on_request()
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


def _degenerate(run: PreparedRun, step: int, what: str) -> DegenerateTrainingError:
    """The error that stops a run whose scene cannot go on, naming the checkpoint kept."""
    last = latest_checkpoint(run.out_dir)
    kept = f"the last checkpoint, {last}, is kept" if last else "no checkpoint was written"
    return DegenerateTrainingError(f"step {step}: {what}; {kept}")


def _write_run_files(run: PreparedRun, say: Callable[[str], None]) -> None:
    """Under the lock: remove an interrupted write's leftovers, write the effective config and the cameras."""
    out_dir = run.out_dir
    # No other run writes here now: temporary files are leftovers of a killed run.
    removed = remove_stale_temporaries(out_dir) + remove_stale_temporaries(checkpoint_dir(out_dir))
    if removed:
        say(f"removed {len(removed)} temporary file(s) of an interrupted write: "
            + ", ".join(str(p.relative_to(out_dir)) for p in removed))
    write_text_atomic(out_dir / "train_config.yaml", run.config_yaml)
    write_cameras_json(out_dir / "train.json", run.train_records)
    if run.val_records:
        write_cameras_json(out_dir / "val.json", run.val_records)
    run.cameras_opt.write_outputs(out_dir)  # refined train.json, exposure.json (when on)


def _save(run: PreparedRun, world: World, step: int) -> None:
    """Save the checkpoint of `step` (rank 0), after checking that the parameters are finite and
    that pose optimisation kept every camera in the scene."""
    finite = torch.stack([torch.isfinite(p).all() for p in run.model.parameters()]).all()
    if not bool(finite):  # a diverged scene must not replace the last good checkpoint
        raise _degenerate(run, step, "parameters became NaN or infinite: training diverged (learning rates too "
                                     "high?)")
    runaway = run.cameras_opt.runaway_pose()
    if runaway is not None:  # nor cameras that left the scene
        raise _degenerate(run, step, runaway)
    if world.is_main:
        save_checkpoint(run.out_dir, step, run.checkpoint_payload())


def _write_scene(run: PreparedRun, name: str, scene: GaussianScene) -> None:
    """Write `scene` as `<output-model-dir>/<name>`, recording the training resolution (which
    `gaussian_point_render.py` evaluates at by default)."""
    resolution = TrainingResolution(run.config.image_downscale_factor, run.config.max_image_long_side)
    write_scene_parquet(run.out_dir / name, scene, training_resolution=resolution)


def _validate(run: PreparedRun, world: World, reporter: Reporter, step: int) -> Optional[EvaluationResult]:
    """Evaluate on the val views (each rank its share), write the refined cameras and report the
    scores; before the last step also scene_<step>.parquet and, when val PSNR improved,
    best_scene.parquet (the last step's scene is final_scene.parquet, written once by `train`)."""
    config, model = run.config, run.model
    result = evaluate_across_ranks(world, model, run.val_views, len(run.val_records), run.raster_cfg,
                                   run.background, config.logging.num_log_images,
                                   config.loss_function_config.ssim_window_size,
                                   config.loss_function_config.ssim_sigma, run.lpips)
    improved = result is not None and result.psnr > run.best["psnr"]
    if improved:
        run.best.update(psnr=result.psnr, step=step)
    if world.is_main:
        run.cameras_opt.write_outputs(run.out_dir)
        if step < config.num_iterations:
            scene = model.to_scene()
            _write_scene(run, f"scene_{step}.parquet", scene)
            if improved:
                _write_scene(run, "best_scene.parquet", scene)
    reporter.evaluation(step, result, model, run.out_dir / "metrics.json")
    return result


def _train_step(run: PreparedRun, world: World, reporter: Reporter, step: int) -> tuple[float, Optional[float]]:
    """One optimisation step on a batch of views: render, loss, backward, statistics, Adam; log on
    logging steps. Returns (the means' learning rate, the step's loss on logging steps else None)."""
    config, model, device = run.config, run.model, run.device
    batch_size = config.batch_size
    step_started = time.perf_counter()
    max_sh_degree = config.gaussian_point_cloud_scene_config.max_sh_degree
    model.active_sh_degree = max(run.initial_sh_degree,
                                 min(max_sh_degree, step // config.increase_color_max_sh_band_interval))
    means_lr = means_learning_rate(step, config.learning_rates, run.extent, config.num_iterations, batch_size)
    set_learning_rate(run.optimizer, "means", means_lr)
    run.cameras_opt.set_learning_rates(step)
    depth_weight = depth_loss_weight(step, config.depth_loss_config, config.num_iterations)
    # Every process draws the whole batch (the same generator state everywhere), then trains on its share.
    indices = run.sampler.next_batch(run.generator, batch_size)
    backgrounds = [torch.rand(3, generator=run.generator).to(device) if config.random_background
                   else run.background for _ in indices]
    log = LossLog(device) if step % config.logging.log_loss_interval == 0 else None
    renders, first = [], None
    for index, background in world.share(list(zip(indices, backgrounds))):
        view = run.train_views[index]
        target = view.target(background)
        supervise_depth = config.depth_loss and view.depth is not None
        out = render_model_view(model, run.cameras_opt.training_view(index, view), run.raster_cfg, background,
                          render_inverse_depth=supervise_depth, absgrad=run.strategy.absgrad)
        image = run.cameras_opt.compensate(index, out.image)  # what the loss compares
        if step == run.start_step + 1 and not renders:
            reporter.first_render(model, out, view.name, step, run.extent, run.raster_cfg.alpha_threshold)
        terms = view_loss(image, target, view, out, config.loss_function_config,
                          depth_weight if supervise_depth else None)
        # The step's loss is the mean over the batch plus the regulariser (added once over all
        # processes); each view's part is backpropagated at once, freeing its render.
        loss = terms.total / batch_size
        if not renders:
            loss = loss + run.strategy.regularization_loss(model) / world.size
        loss.backward()
        renders.append((out, view.width, view.height))
        if log is not None:
            view_psnr = log.add(loss, terms, image, target, view.mask)
            if first is None:  # this process's first view: the blank-render check
                first = (out, view.name, float(view_psnr))
    world.sum_gradients(list(model.parameters()) + run.cameras_opt.parameters())
    run.strategy.step_post_backward(step, renders, batch_size, world)
    if config.optimizer == "sparse-adam":
        # Visible: radius > 0 in any render of the batch, in any process.
        visible = torch.stack([out.radii > 0 for out, _, _ in renders]).any(dim=0)
        run.optimizer.step(world.union(visible))
    else:
        run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.cameras_opt.step()
    if log is None:
        return means_lr, None
    means = log.means(world, batch_size)
    if not math.isfinite(means["loss"]):
        raise _degenerate(run, step, f"the loss is {means['loss']}: training diverged (learning rates too high?)")
    runaway = run.cameras_opt.runaway_pose()
    if runaway is not None:
        raise _degenerate(run, step, runaway)
    reporter.train_step(step, means, model, step_started, first, run.raster_cfg.alpha_threshold,
                        config.depth_loss, run.cameras_opt, run.optimizer)
    return means_lr, means["loss"]


def _refine(run: PreparedRun, step: int, means_lr: float) -> None:
    """The strategy's step after Adam; stop the run when it left no Gaussian."""
    config, model = run.config, run.model
    run.strategy.step_post_optimizer(step, model, run.optimizer, means_lr, run.generator)
    if model.num_gaussians == 0:
        cfg = config.adaptive_controller_config
        raise _degenerate(run, step, (
            "densification pruned every Gaussian, the scene is empty; likely causes: opacities below "
            f"adaptive-controller-config.transparent-opacity-threshold ({cfg.transparent_opacity_threshold:g}), "
            f"e.g. from a too high learning-rates.opacity ({config.learning_rates.opacity:g}), or Gaussians beyond "
            f"max-screen-radius ({cfg.max_screen_radius:g} px) / max-world-size-ratio "
            f"({cfg.max_world_size_ratio:g})"
        ))


def train(config: TrainConfig, resume: bool = False, config_source: str = "<config>",
          world: World = SINGLE_PROCESS, viewer: Optional[LiveViewerFactory] = None) -> TrainResult:
    """Train a Gaussian scene as `config` says; see the module docstring for the outputs.

    Args:
        config: the validated config (paths absolute, as `load_train_config` gives).
        resume: continue from the newest checkpoint in `<output-model-dir>/checkpoints`; the run
            then ends with the same result as an uninterrupted one with the same config. The
            checkpoint must come from this config (`checkpoint.check_resumable`).
        config_source: name of the config file, for error messages.
        world: the processes training together (`distributed.joined_world`); every one calls
            `train` with the same arguments, rank 0 writes and prints.
        viewer: builds, from the training cameras, the live viewer rank 0 reports to
            (`reporting.LiveViewer`; the command line hands over `viewer.web.WebViewer`), or None.
            `train` does not stop it: after `train` it shows the final scene until its maker stops it.

    Warns:
        UserWarning: as `reporting.Reporter` says (the first render, a blank render); when a stale
            lock of a dead run is taken over.

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
        DegenerateTrainingError: the scene became empty or non-finite (names the step).
    """
    reporter = Reporter(world.is_main, config.logging.progress_bar, config.logging.log_histograms)
    # Read and check everything first: nothing is created or changed before the lock below.
    run = prepare_run(config, resume, config_source, world, reporter.say)
    config, model, start_step = run.config, run.model, run.start_step  # config: the batch-scaled one
    # Every process has read its inputs: none is left to fail on them after rank 0 starts writing.
    world.barrier()
    with RunLock(run.out_dir) if world.is_main else contextlib.nullcontext():
        if world.is_main:
            _write_run_files(run, reporter.say)
        reporter.start(config.summary_writer_log_dir, start_step + 1 if resume else None, config.num_iterations,
                       start_step, viewer, run.train_records, lambda: model.to_scene(run.device))
        stop = _StopFlag(reporter.say, reporter.interrupted)
        evaluation: Optional[EvaluationResult] = None
        last_loss: Optional[float] = None
        step = start_step
        try:
            with stop.installed():
                for step in range(start_step + 1, config.num_iterations + 1):
                    means_lr, loss = _train_step(run, world, reporter, step)
                    last_loss = last_loss if loss is None else loss
                    # Evaluate before densifying, as the official training_report: fresh clones and
                    # splits need a few steps to settle. Nothing trains after the last step, so the
                    # strategy does not run there.
                    if step % config.val_interval == 0 or step == config.num_iterations:
                        evaluation = _validate(run, world, reporter, step)
                    if step < config.num_iterations:
                        _refine(run, step, means_lr)
                    reporter.step_done(step, start_step, last_loss, model.num_gaussians)  # blocks while paused
                    if world.any(stop.requested):  # every process stops after the same step
                        _save(run, world, step)
                        world.barrier()  # no process ends (ending the job) before rank 0 has saved
                        reporter.say(f"stopped at step {step}; continue with --resume")
                        return TrainResult(step, True, model.num_gaussians, evaluation, reporter.minutes())
                    if step % config.checkpoint_interval == 0 or step == config.num_iterations:
                        _save(run, world, step)
        finally:
            reporter.close()

        if resume and start_step >= config.num_iterations:
            reporter.say(f"the checkpoint is at step {start_step} >= num-iterations; writing the final outputs")
            evaluation = _validate(run, world, reporter, start_step)
        if world.is_main:
            final = model.to_scene()
            _write_scene(run, "final_scene.parquet", final)
            write_ply(run.out_dir / "point_cloud.ply", final)
            if run.best["step"] >= step:  # the final scene is the best: an earlier best_scene is not
                (run.out_dir / "best_scene.parquet").unlink(missing_ok=True)
    result = TrainResult(step, False, model.num_gaussians, evaluation, reporter.minutes())
    reporter.say(f"done: {step} steps in {result.minutes:.1f} min, {model.num_gaussians} Gaussians"
                 + (f", {scores_line(evaluation)}" if evaluation else "") + f"; outputs in {run.out_dir}"
                 + _best_line(run, step))
    return result


def _best_line(run: PreparedRun, last_step: int) -> str:
    """Which saved scene has the best val PSNR, for the final line ('' without val views)."""
    if run.best["psnr"] == -math.inf:
        return ""
    if run.best["step"] >= last_step:
        return "; the final scene, final_scene.parquet, has the best val PSNR"
    return f"; the best val PSNR ({run.best['psnr']:.2f} dB) is step {run.best['step']}'s, best_scene.parquet"
