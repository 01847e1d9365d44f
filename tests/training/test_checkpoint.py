"""Checkpoints: what a checkpoint must hold, and which config changes a resume accepts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from taichi_3dgs.data.cameras import CameraRecord
from taichi_3dgs.training.checkpoint import (
    CHECKPOINT_FORMAT, camera_fingerprint, check_resumable, load_checkpoint, model_from_checkpoint,
)
from taichi_3dgs.training.config import config_to_yaml, parse_train_config

CHECKPOINT = Path("/runs/a/checkpoints/checkpoint_0000100.pt")


def cameras(folder: str, count: int = 3) -> list[CameraRecord]:
    K = np.array([[50.0, 0, 32], [0, 50.0, 32], [0, 0, 1]])
    records = []
    for i in range(count):
        pose = np.eye(4)
        pose[:3, 3] = [float(i), 0.0, -4.0]
        records.append(CameraRecord(Path(folder) / "images" / f"view_{i}.png", K, pose, 64, 64))
    return records


def config(**keys):
    data = {"train-dataset-json-path": "/data/scene/train.json", "pointcloud-parquet-path": "/data/scene/points.parquet",
            "output-model-dir": "/runs/a", "num-iterations": 1000}
    data.update(keys)
    return parse_train_config(data, "run.yaml", Path("/"))


def payload(written_config, train_records) -> dict:
    return {"config_yaml": config_to_yaml(written_config),
            "cameras": {"train": camera_fingerprint(train_records), "val": camera_fingerprint([])}}


def fingerprints(train_records) -> dict:
    return {"train": camera_fingerprint(train_records), "val": camera_fingerprint([])}


def test_the_same_run_with_a_longer_schedule_and_other_logging_resumes():
    written = payload(config(), cameras("/data/scene"))
    later = config(**{"num-iterations": 30000, "val-interval": 7, "checkpoint-interval": 3,
                      "output-model-dir": "/moved/a", "logging": {"progress-bar": False}})
    check_resumable(written, CHECKPOINT, later, fingerprints(cameras("/data/scene")), "run.yaml")


def test_another_strategy_is_refused_naming_both_values():
    written = payload(config(strategy="mcmc"), cameras("/data/scene"))
    with pytest.raises(ValueError, match=rf"checkpoint {CHECKPOINT} was written with strategy 'mcmc' "
                                         r"\(run.yaml says 'default'\)"):
        check_resumable(written, CHECKPOINT, config(), fingerprints(cameras("/data/scene")), "run.yaml")


def test_every_differing_key_is_named():
    written = payload(config(), cameras("/data/scene"))
    changed = config(**{"image-downscale-factor": 2, "seed": 7,
                        "gaussian-point-cloud-scene-config": {"max-sh-degree": 1}})
    with pytest.raises(ValueError) as error:
        check_resumable(written, CHECKPOINT, changed, fingerprints(cameras("/data/scene")), "run.yaml")
    message = str(error.value)
    assert "image-downscale-factor 1 (run.yaml says 2)" in message
    assert "seed 0 (run.yaml says 7)" in message
    assert "gaussian-point-cloud-scene-config.max-sh-degree 3 (run.yaml says 1)" in message


def test_only_the_section_of_the_strategy_in_use_matters():
    written = payload(config(), cameras("/data/scene"))
    other_mcmc = config(**{"mcmc-config": {"cap-max": 5}})
    check_resumable(written, CHECKPOINT, other_mcmc, fingerprints(cameras("/data/scene")), "run.yaml")
    other_density = config(**{"adaptive-controller-config": {"percent-dense": 0.5}})
    with pytest.raises(ValueError, match=r"adaptive-controller-config.percent-dense 0.01 \(run.yaml says 0.5\)"):
        check_resumable(written, CHECKPOINT, other_density, fingerprints(cameras("/data/scene")), "run.yaml")


def test_cameras_are_compared_by_content_so_a_moved_dataset_resumes():
    written = payload(config(), cameras("/data/scene"))
    moved = config(**{"train-dataset-json-path": "/elsewhere/scene/train.json"})
    check_resumable(written, CHECKPOINT, moved, fingerprints(cameras("/elsewhere/scene")), "run.yaml")


def test_fewer_cameras_are_refused_with_both_counts():
    written = payload(config(), cameras("/data/scene", 3))
    with pytest.raises(ValueError, match=r"written with 3 train cameras, run.yaml key 'train-dataset-json-path' "
                                         r"\(/data/scene/train.json\) has 2"):
        check_resumable(written, CHECKPOINT, config(), fingerprints(cameras("/data/scene", 2)), "run.yaml")


def test_a_moved_camera_is_refused():
    records = cameras("/data/scene")
    pose = records[1].T_pointcloud_camera.copy()
    pose[0, 3] += 0.001
    changed = records[:1] + [CameraRecord(records[1].image_path, records[1].K, pose, 64, 64)] + records[2:]
    with pytest.raises(ValueError, match=r"other train cameras .* same count \(3\) but image names, poses"):
        check_resumable(payload(config(), records), CHECKPOINT, config(), fingerprints(changed), "run.yaml")


def test_a_config_this_version_cannot_read_is_a_clear_error():
    written = {"config_yaml": "num-iterations: 10\nretired-key: 1\n",
               "cameras": fingerprints(cameras("/data/scene"))}
    with pytest.raises(ValueError, match=rf"{CHECKPOINT}: key 'config_yaml': unknown key 'retired-key'.*"
                                         "another taichi_3dgs version"):
        check_resumable(written, CHECKPOINT, config(), fingerprints(cameras("/data/scene")), "run.yaml")


def test_a_damaged_config_yaml_names_the_checkpoint_the_key_and_the_place():
    """Issue 27 item 6: the YAML parser's own text named neither the file nor what it holds."""
    written = {"config_yaml": "num-iterations: 10\nlearning-rates: [1, 2\n", "cameras": fingerprints(cameras("/data/scene"))}
    with pytest.raises(ValueError) as caught:
        check_resumable(written, CHECKPOINT, config(), fingerprints(cameras("/data/scene")), "run.yaml")
    message = str(caught.value)
    assert message.startswith(f"{CHECKPOINT}: checkpoint key 'config_yaml' (the config the run was started with) is "
                              "not valid YAML at line 3, column 1")
    assert "damaged" in message and "<unicode string>" not in message and "\n" not in message


def saved(tmp_path: Path, content) -> Path:
    path = tmp_path / "checkpoint_0000001.pt"
    torch.save(content, path)
    return path


def complete_payload() -> dict:
    n = 2
    return {
        "format": CHECKPOINT_FORMAT, "step": 1,
        "model": {"means": torch.zeros(n, 3), "quats": torch.zeros(n, 4), "log_scales": torch.zeros(n, 3),
                  "opacity_logits": torch.zeros(n), "sh_dc": torch.zeros(n, 1, 3), "sh_rest": torch.zeros(n, 15, 3)},
        "color_activation": "linear", "active_sh_degree": 0, "initial_sh_degree": 0, "optimizer": {},
        "strategy": {}, "sampler": {"remaining": []}, "generator": torch.Generator().get_state(),
        "best": {"psnr": 1.0, "step": 1}, "config_yaml": "", "cameras": {"train": {}, "val": {}},
    }


def test_a_complete_checkpoint_loads_and_gives_its_model(tmp_path):
    path = saved(tmp_path, complete_payload())
    model = model_from_checkpoint(load_checkpoint(path, "cpu"), path, "cpu")
    assert model.num_gaussians == 2


@pytest.mark.parametrize("key", ["sampler", "cameras", "config_yaml"])
def test_a_missing_key_is_named(tmp_path, key):
    content = complete_payload()
    del content[key]
    path = saved(tmp_path, content)
    with pytest.raises(ValueError, match=rf"{path}: checkpoint has no key '{key}'"):
        load_checkpoint(path, "cpu")


def test_a_key_of_the_wrong_type_is_named(tmp_path):
    path = saved(tmp_path, {**complete_payload(), "step": "seven"})
    with pytest.raises(ValueError, match=rf"{path}: checkpoint key 'step' is a str; expected"):
        load_checkpoint(path, "cpu")


def test_a_missing_parameter_is_named(tmp_path):
    content = complete_payload()
    del content["model"]["quats"]
    path = saved(tmp_path, content)
    with pytest.raises(ValueError, match=rf"{path}: checkpoint key 'model' has no 'quats'"):
        load_checkpoint(path, "cpu")


def test_an_empty_scene_is_not_resumed(tmp_path):
    content = complete_payload()
    content["model"] = {name: t[:0] for name, t in content["model"].items()}
    path = saved(tmp_path, content)
    with pytest.raises(ValueError, match="holds no Gaussian"):
        model_from_checkpoint(load_checkpoint(path, "cpu"), path, "cpu")


def test_tensors_of_mismatched_shapes_are_named(tmp_path):
    content = complete_payload()
    content["model"]["quats"] = torch.zeros(3, 4)
    path = saved(tmp_path, content)
    with pytest.raises(ValueError, match=rf"{path}: checkpoint key 'model' does not fit this run .*quats"):
        model_from_checkpoint(load_checkpoint(path, "cpu"), path, "cpu")


def test_an_older_format_says_so(tmp_path):
    path = saved(tmp_path, {**complete_payload(), "format": "taichi_3dgs.checkpoint/1"})
    with pytest.raises(ValueError, match="written by an older taichi_3dgs.*start a new run"):
        load_checkpoint(path, "cpu")


def test_other_files_are_refused(tmp_path):
    path = saved(tmp_path, {"state_dict": {}})
    with pytest.raises(ValueError, match="not a taichi_3dgs checkpoint"):
        load_checkpoint(path, "cpu")
    path.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_checkpoint(path, "cpu")
