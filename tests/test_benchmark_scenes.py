"""benchmarks/scenes.py: the variants it trains, the spread and the rule it reports, and one end-to-end
run on two real scenes for 2 steps at 1/16 resolution, two trainings at once (its figures are the
trainer's metrics.json)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from conftest import REPO_ROOT, dataset_path

import benchmarks.scenes as scenes


def _metrics(psnr: float) -> dict:
    return {"val": {"psnr": psnr, "ssim": 0.5}, "num_gaussians": 100, "train_minutes": 1.0}


def test_every_variant_runs_the_official_recipe_or_the_converters_config_with_its_overrides():
    args, extra = scenes.parse_args(["--steps", "300", "--variants", "converter", "beyond-cloud+absgrad",
                                     "initial-points.camera-shell=50", "--beyond_cloud_points", "7",
                                     "--val_interval", "100"])
    runs = scenes._variant_runs(args, extra)
    assert list(runs) == ["official", "converter", "beyond-cloud+absgrad", "initial-points.camera-shell=50"]
    # The CPU configs' schedule (2,000 steps) scaled to 300 steps; the extra override wins.
    schedule = {"adaptive-controller-config.num-iterations-warm-up": "75",
                "adaptive-controller-config.num-iterations-densify": "15",
                "adaptive-controller-config.densify-until-iteration": "150",
                "adaptive-controller-config.num-iterations-reset-alpha": "450",
                "increase-color-max-sh-band-interval": "150", "val-interval": "100",
                "checkpoint-interval": "300", "num-iterations": "300", "image-downscale-factor": "4"}
    assert runs["official"] == ("official.yaml", schedule)
    assert runs["converter"] == ("train_config.yaml", schedule)
    assert runs["beyond-cloud+absgrad"] == ("official.yaml", {**schedule, "initial-points.beyond-cloud": "7",
                                                               "adaptive-controller-config.absgrad": "true"})
    assert runs["initial-points.camera-shell=50"][1]["initial-points.camera-shell"] == "50"
    # A variant that sets scale-schedule keeps the config's own schedule: no CPU schedule.
    own = scenes._variant_runs(*scenes.parse_args(["--steps", "300", "--variants", "converter+scale-schedule=true",
                                                   "scale-schedule=false"]))
    reporting = {"val-interval": "300", "checkpoint-interval": "300", "num-iterations": "300",
                 "image-downscale-factor": "4"}
    assert own["converter+scale-schedule=true"] == ("train_config.yaml", {**reporting, "scale-schedule": "true"})
    assert own["scale-schedule=false"] == ("official.yaml", {**reporting, "scale-schedule": "false"})
    with pytest.raises(ValueError, match="unknown variant part 'shel'"):
        scenes._variant_runs(*scenes.parse_args(["--variants", "shel"]))


def test_the_summary_applies_the_rule_with_each_scenes_seed_spread():
    official = {"a": [20.0, 20.4], "b": [30.0, 30.1]}
    candidates = {"better": {"a": [20.5, 20.7], "b": [30.0, 30.3]},  # +0.40 and +0.10
                  "within spread": {"a": [20.5, 20.7], "b": [29.8, 30.1]},  # b: -0.10, spread max(0.1, 0.3)
                  "costs b": {"a": [22.0, 22.0], "b": [29.5, 29.6]},  # b: -0.50, spread 0.1
                  "lower mean": {"a": [19.9, 20.1], "b": [30.0, 30.1]}}  # a: -0.20 (within 0.4), b: 0
    results = {scene: {"official": scenes.Runs([_metrics(p) for p in psnrs])} for scene, psnrs in official.items()}
    for variant, by_scene in candidates.items():
        for scene, psnrs in by_scene.items():
            results[scene][variant] = scenes.Runs([_metrics(p) for p in psnrs])
    assert results["a"]["official"].spread == pytest.approx(0.4)
    rows = {variant: scenes.summary_rows(results, variant) for variant in ["official", *candidates]}
    assert rows["better"].endswith("| +0.25 | +0.10 (b) | 0.40 | passes |")
    assert "| passes |" in rows["within spread"]
    assert rows["costs b"].endswith("fails (worse than the spread on b) |")
    assert rows["lower mean"].endswith("fails (mean not higher) |")
    assert rows["official"].endswith("| the reference |")
    one_seed = {"a": {name: scenes.Runs(runs.metrics[:1]) for name, runs in results["a"].items()}}
    assert scenes.summary_rows(one_seed, "better").endswith("| needs 2 seeds |")


def test_two_scenes_for_two_steps_end_to_end(tmp_path):
    for name in ("colmap_desk", "colmap_table_txt"):
        dataset_path(name)
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "scenes.py"), "--scenes", "colmap_desk,colmap_table_txt",
               "--steps", "2", "--image_downscale_factor", "16", "--cache_dir", str(tmp_path / "cache"),
               "--output_dir", str(tmp_path / "runs"), "--jobs", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    official = yaml.safe_load((tmp_path / "cache" / "colmap_table_txt" / "official.yaml").read_text())
    assert set(official) == {"train-dataset-json-path", "val-dataset-json-path", "pointcloud-parquet-path"}
    for scene in ("colmap_desk", "colmap_table_txt"):
        metrics = yaml.safe_load((tmp_path / "runs" / scene / "official" / "seed0" / "metrics.json").read_text())
        assert metrics["step"] == 2
        written = yaml.safe_load((tmp_path / "runs" / scene / "official" / "seed0" / "train_config.yaml").read_text())
        assert written["adaptive-controller-config"]["absgrad"] is False  # the official recipe
        row = (f"| {scene} | official | {metrics['val']['psnr']:.2f} | +0.00 | - | {metrics['val']['ssim']:.3f} | "
               f"{metrics['num_gaussians']:,} |")
        assert row in result.stdout
    assert "| official | " in result.stdout and "| the reference |" in result.stdout
