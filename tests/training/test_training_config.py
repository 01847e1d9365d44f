"""The YAML training config: key checking, paths, template, CLI errors."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from taichi_3dgs.training.config import (ConfigError, TrainConfig, config_to_yaml, load_train_config,
                                         parse_train_config, write_config_template)

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_misspelled_top_level_key_names_key_file_and_suggestion(tmp_path):
    path = write_yaml(tmp_path / "x.yaml", "num-iteration: 100\n")
    with pytest.raises(ConfigError) as info:
        load_train_config(path)
    message = str(info.value)
    assert "'num-iteration'" in message
    assert str(path) in message
    assert "'num-iterations'" in message


def test_misspelled_nested_key_names_its_section_and_suggestion(tmp_path):
    path = write_yaml(tmp_path / "x.yaml", "adaptive-controller-config:\n  percent-dens: 0.02\n")
    with pytest.raises(ConfigError, match=r"'percent-dens' in section 'adaptive-controller-config'.*'percent-dense'"):
        load_train_config(path)


def test_value_of_wrong_type_is_rejected_with_key_and_expected_type(tmp_path):
    path = write_yaml(tmp_path / "x.yaml", "learning-rates:\n  opacity: fast\n")
    with pytest.raises(ConfigError, match=r"'learning-rates.opacity': expected a number, got 'fast'"):
        load_train_config(path)


def test_exponent_without_a_dot_is_a_number_though_yaml_reads_it_as_a_string(tmp_path):
    text = "learning-rates:\n  opacity: 1e-4\n  scales: 5E-3\n"
    assert yaml.safe_load(text)["learning-rates"]["opacity"] == "1e-4"  # YAML 1.1's float needs the dot
    rates = load_train_config(write_yaml(tmp_path / "x.yaml", text)).learning_rates
    assert rates.opacity == 1e-4 and rates.scales == 5e-3


@pytest.mark.parametrize("value", ["nan", ".inf", "0x10", "1e-4 fast"])
def test_strings_that_are_not_decimal_numbers_are_still_refused(tmp_path, value):
    path = write_yaml(tmp_path / "x.yaml", f"learning-rates:\n  opacity: '{value}'\n")
    with pytest.raises(ConfigError, match=r"'learning-rates.opacity': expected a number"):
        load_train_config(path)


def test_snake_case_keys_equal_kebab_case_keys(tmp_path):
    kebab = write_yaml(tmp_path / "a.yaml", "num-iterations: 7\nloss-function-config:\n  lambda-value: 0.3\n")
    snake = write_yaml(tmp_path / "b.yaml", "num_iterations: 7\nloss_function_config:\n  lambda_value: 0.3\n")
    assert load_train_config(kebab) == load_train_config(snake)
    assert load_train_config(snake).loss_function_config.lambda_value == 0.3


def test_relative_paths_resolve_against_the_yaml_folder(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    path = write_yaml(folder / "x.yaml", "train-dataset-json-path: ../data/train.json\noutput-model-dir: out\n")
    monkeypatch.chdir(tmp_path / "configs")
    config = load_train_config(path)
    assert config.train_dataset_json_path == (tmp_path / "data" / "train.json").resolve()
    assert config.output_model_dir == (folder / "out").resolve()
    assert config.summary_writer_log_dir == (folder / "logs").resolve()  # default, also beside the YAML


def test_template_holds_every_key_and_loads_back_to_the_defaults(tmp_path):
    path = tmp_path / "template.yaml"
    write_config_template(path)
    data = yaml.safe_load(path.read_text())
    expected_top = {f.name.replace("_", "-") for f in dataclasses.fields(TrainConfig)}
    assert set(data) == expected_top
    assert set(data["adaptive-controller-config"]) == {
        f.name.replace("_", "-") for f in dataclasses.fields(type(TrainConfig().adaptive_controller_config))}
    loaded = load_train_config(path)
    defaults = TrainConfig()
    assert loaded.learning_rates == defaults.learning_rates
    assert loaded.rasterisation_config == defaults.rasterisation_config
    assert loaded.num_iterations == defaults.num_iterations


def test_template_never_overwrites_an_existing_file(tmp_path):
    path = write_yaml(tmp_path / "mine.yaml", "num-iterations: 5\n")
    with pytest.raises(ConfigError, match="already exists"):
        write_config_template(path)
    assert path.read_text() == "num-iterations: 5\n"


def test_effective_config_yaml_round_trips(tmp_path):
    config = parse_train_config(
        {"num-iterations": 123, "strategy": "mcmc", "background-color": [1, 1, 1], "train-dataset-json-path": "t.json"},
        "test", tmp_path)
    (tmp_path / "elsewhere").mkdir()
    path = write_yaml(tmp_path / "elsewhere" / "effective.yaml", config_to_yaml(config))
    assert load_train_config(path) == config


def test_train_script_reports_a_bad_key_with_exit_code_1(tmp_path):
    path = write_yaml(tmp_path / "bad.yaml", "val-intervall: 10\n")
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "gaussian_point_train.py"), "--train_config", str(path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 1
    assert "'val-intervall'" in result.stderr and "'val-interval'" in result.stderr
    assert "Traceback" not in result.stderr


def test_gen_template_only_writes_a_config_the_trainer_loads(tmp_path):
    path = tmp_path / "template.yaml"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "gaussian_point_train.py"), "--train_config", str(path), "--gen_template_only"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert load_train_config(path).adaptive_controller_config == TrainConfig().adaptive_controller_config
