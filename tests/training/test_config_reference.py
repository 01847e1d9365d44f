"""The YAML key reference of docs/FORMATS.md: generated from the config, complete, up to date."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from taichi_3dgs.training.config import TrainConfig, config_to_yaml
from taichi_3dgs.training.config_reference import BEGIN_MARKER, END_MARKER, config_reference_markdown, main

REPO_ROOT = Path(__file__).resolve().parents[2]
FORMATS_MD = REPO_ROOT / "docs" / "FORMATS.md"
_ROW = re.compile(r"^\| `([^`]+)` \| (.*) \| (.*) \| (.*) \|$")


def table_rows(markdown: str) -> dict[str, tuple[str, str, str]]:
    """{key: (type, default, meaning)} of every key row of the generated tables."""
    rows = {}
    for line in markdown.splitlines():
        match = _ROW.match(line)
        if match:
            assert match.group(1) not in rows, f"key {match.group(1)} listed twice"
            rows[match.group(1)] = match.group(2, 3, 4)
    return rows


def dotted_keys(mapping: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in mapping.items():
        keys.append(prefix + key)
        if isinstance(value, dict):
            keys += dotted_keys(value, f"{prefix}{key}.")
    return keys


def test_formats_md_holds_the_current_generated_reference():
    text = FORMATS_MD.read_text(encoding="utf-8")
    part = text.split(BEGIN_MARKER + "\n", 1)[1].split(END_MARKER, 1)[0]
    assert part == config_reference_markdown(), (
        "docs/FORMATS.md is stale: run python -m taichi_3dgs.training.config_reference --write")


def test_every_key_of_the_yaml_template_has_a_documented_row():
    template = yaml.safe_load(config_to_yaml(TrainConfig()))
    rows = table_rows(config_reference_markdown())
    expected = dotted_keys(template)
    assert "adaptive-controller-config.densify-until-iteration" in expected  # nested keys were collected
    assert sorted(rows) == sorted(expected)
    for key, (type_name, default, meaning) in rows.items():
        assert type_name and default and len(meaning) > 5, key


def test_rows_show_each_default_as_the_template_writes_it():
    template = yaml.safe_load(config_to_yaml(TrainConfig()))
    rows = table_rows(config_reference_markdown())
    for section, values in [("", template), *((f"{k}.", v) for k, v in template.items() if isinstance(v, dict))]:
        for key, value in values.items():
            if not isinstance(value, dict):
                shown = rows[section + key][1]
                assert yaml.safe_load(shown.strip("`")) == value, section + key
    assert rows["num-iterations"][:2] == ("an integer", "`30000`")
    assert rows["learning-rates.means-max-steps"][:2] == ("an integer or null", "`null`")
    assert rows["adaptive-controller-config.densify-until-iteration"][1] == "`15000`"


def test_rasterizer_rows_take_their_meaning_from_the_class_docstring():
    rows = table_rows(config_reference_markdown())
    assert rows["rasterisation-config.eps2d"][2] == (
        "px^2 added to the diagonal of every 2D covariance (low-pass filter, EWA dilation).")
    # A multi-line docstring entry is joined into one cell.
    assert rows["rasterisation-config.fov-clamp"][2].endswith("do not get huge footprints.")
    # Decided by the scene, not settable from YAML, so not listed.
    assert "rasterisation-config.color-activation" not in rows


def test_pipes_in_a_meaning_are_escaped_so_the_table_keeps_four_columns():
    rows = table_rows(config_reference_markdown())
    assert rows["logging.num-log-images"][2] == (
        r"val views logged as image grids (prediction \| ground truth \| depth \| \|error\|)")


def test_check_fails_on_a_stale_copy_and_write_regenerates_only_the_marked_part(tmp_path, capsys):
    stale = tmp_path / "FORMATS.md"
    before, after = "# Title\n\nprose before\n", "\nprose after\n"
    stale.write_text(f"{before}{BEGIN_MARKER}\n| old | table |\n{END_MARKER}{after}", encoding="utf-8")

    assert main(["--check", "--path", str(stale)]) == 1
    assert "stale" in capsys.readouterr().err

    assert main(["--write", "--path", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == (
        f"{before}{BEGIN_MARKER}\n{config_reference_markdown()}{END_MARKER}{after}")
    assert main(["--check", "--path", str(stale)]) == 0


def test_a_file_without_markers_is_an_error_naming_it_and_is_not_modified(tmp_path, capsys):
    path = tmp_path / "FORMATS.md"
    path.write_text("# no markers here\n", encoding="utf-8")
    assert main(["--write", "--path", str(path)]) == 2
    stderr = capsys.readouterr().err
    assert str(path) in stderr and "BEGIN marker" in stderr
    assert path.read_text(encoding="utf-8") == "# no markers here\n"
