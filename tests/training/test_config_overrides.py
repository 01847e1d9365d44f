"""Config overrides on the command line (`--key value`, nested keys with dots), checked like the
YAML file's keys."""
from __future__ import annotations

from pathlib import Path

import pytest

from taichi_3dgs.training.config import (ConfigError, apply_overrides, config_to_yaml, load_train_config,
                                         parse_overrides)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "conf" / "x.yaml"
    path.parent.mkdir()
    path.write_text("num-iterations: 100\nadaptive-controller-config:\n  percent-dense: 0.02\n")
    return load_train_config(path)


def test_overrides_set_top_level_and_nested_keys_and_keep_the_rest(config):
    updated = apply_overrides(config, ["--num-iterations", "5",
                                       "--adaptive-controller-config.densify-until-iteration=1000",
                                       "--background_color", "[1, 1, 1]", "--random-background", "true"])
    assert updated.num_iterations == 5
    assert updated.adaptive_controller_config.densify_until_iteration == 1000
    assert updated.adaptive_controller_config.percent_dense == 0.02  # from the file
    assert updated.background_color == (1.0, 1.0, 1.0)
    assert updated.random_background is True
    assert config.num_iterations == 100  # the loaded config is not changed in place


def test_overrides_are_written_into_the_effective_yaml(config, tmp_path):
    updated = apply_overrides(config, ["--learning-rates.opacity", "0.025"])
    written = tmp_path / "effective.yaml"
    written.write_text(config_to_yaml(updated))
    assert load_train_config(written).learning_rates.opacity == 0.025


def test_relative_override_paths_resolve_against_the_working_directory(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    updated = apply_overrides(config, ["--output-model-dir", "runs/a"])
    assert updated.output_model_dir == (tmp_path / "runs" / "a").resolve()
    assert config.summary_writer_log_dir == (tmp_path / "conf" / "logs").resolve()  # YAML's own: beside it


def test_misspelled_override_gets_the_did_you_mean_of_the_file(config):
    with pytest.raises(ConfigError, match=r"command line: unknown key 'num-iteration' at top level; "
                                          r"did you mean 'num-iterations'"):
        apply_overrides(config, ["--num-iteration", "5"])
    with pytest.raises(ConfigError, match=r"'densify-until' in section 'adaptive-controller-config'.*"
                                          r"'densify-until-iteration'"):
        apply_overrides(config, ["--adaptive-controller-config.densify-until", "5"])


@pytest.mark.parametrize("arguments, message", [
    (["--num-iterations", "many"], "key 'num-iterations': expected an integer, got 'many'"),
    (["--num-iterations", "0"], "key 'num-iterations' must be > 0"),
    (["--strategy", "fast"], "key 'strategy': expected one of 'default', 'mcmc'"),
    (["--num-iterations"], "--num-iterations needs a value"),
    (["--num-iterations", "--seed", "1"], "--num-iterations needs a value"),
    (["5"], "unexpected argument '5'"),
    (["--seed", "1", "--seed=2"], "--seed is given twice"),
    (["--logging", "3", "--logging.progress-bar", "false"], "'logging' is given a value and nested keys"),
], ids=["type", "range", "choice", "no-value", "value-is-option", "positional", "twice", "section-value"])
def test_bad_override_names_the_key_and_what_was_expected(config, arguments, message):
    with pytest.raises(ConfigError) as info:
        apply_overrides(config, arguments)
    assert str(info.value).startswith("command line")
    assert message in str(info.value)


def test_values_are_parsed_as_yaml():
    assert parse_overrides(["--a", "1", "--b", "1.5", "--c", "null", "--d.e", "text", "--f=-2"]) == {
        "a": 1, "b": 1.5, "c": None, "d": {"e": "text"}, "f": -2}


def test_the_trainer_s_own_options_take_hyphens_as_its_overrides_take_underscores(tmp_path, capsys):
    from taichi_3dgs.train_cli import main

    assert main(["--train-config", str(tmp_path / "template.yaml"), "--gen-template-only"]) == 0
    assert load_train_config(tmp_path / "template.yaml").num_iterations == 30000
    # hyphenated options are options, not overrides: --gen-template-only refuses overrides
    with pytest.raises(SystemExit):
        main(["--train-config", str(tmp_path / "other.yaml"), "--gen-template-only", "--num_iterations", "5"])
    assert "takes no config overrides (got --num_iterations 5)" in capsys.readouterr().err
