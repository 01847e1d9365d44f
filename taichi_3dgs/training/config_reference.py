"""The reference of every YAML training-config key, generated from the config dataclasses.

docs/FORMATS.md ("YAML training config") holds this module's output between two marker lines,
so the documentation of the keys cannot drift from the code: a field's meaning is its
`metadata={"help": ...}` (what `config_to_yaml` writes as the template's comment) or, for a section
without such metadata (`RasterizerConfig`), its entry in the class docstring's `Attributes:`;
types, defaults and the hidden (`derived`) fields come from `config_loader`.

    python -m taichi_3dgs.training.config_reference --write   # regenerate docs/FORMATS.md's part
    python -m taichi_3dgs.training.config_reference --check   # exit 1 when that part is stale
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
import typing
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from taichi_3dgs.atomic_io import write_text_atomic
from taichi_3dgs.training.config import TrainConfig
from taichi_3dgs.training.config_loader import plain, type_name, yaml_fields

BEGIN_MARKER = (
    "<!-- BEGIN GENERATED: yaml keys (python -m taichi_3dgs.training.config_reference --write) -->"
)
END_MARKER = "<!-- END GENERATED: yaml keys -->"
DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "FORMATS.md"
"""docs/FORMATS.md of the source checkout (the package is installed editable, `pip install -e .`)."""

# Google-style docstring section headers; only "Attributes:" entries document fields.
_DOCSTRING_SECTION = re.compile(r"^(Args|Attributes|Raises|Returns|Yields|Notes?|Examples?):\s*$")
_ATTRIBUTE_ENTRY = re.compile(r"^    (\w+(?:, \w+)*): (.*)$")


def _docstring_parts(cls: type) -> tuple[str, dict[str, str]]:
    """(description, {field name: attribute text}) of `cls`'s Google-style docstring."""
    doc = inspect.getdoc(cls) or ""
    if doc.startswith(f"{cls.__name__}("):  # the signature dataclasses writes for an undocumented class
        doc = ""
    description: list[str] = []
    attributes: dict[str, list[str]] = {}
    section: Optional[str] = None
    entry: Optional[list[str]] = None
    for line in doc.splitlines():
        header = _DOCSTRING_SECTION.match(line)
        if header:
            section, entry = header.group(1), None
        elif section is None:
            description.append(line)
        elif section == "Attributes":
            match = _ATTRIBUTE_ENTRY.match(line)
            if match:
                entry = [match.group(2)]
                for name in match.group(1).split(", "):  # "width, height: ..." documents both
                    attributes[name] = entry
            elif entry is not None and line.strip():
                entry.append(line.strip())
    return "\n".join(description).strip(), {name: " ".join(text) for name, text in attributes.items()}


def _cell(text: str) -> str:
    """`text` as one Markdown table cell: on one line, with its pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _yaml_value(value: Any) -> str:
    """`value` as written in a YAML file (flow style, no document-end marker)."""
    dumped = yaml.safe_dump(plain(value), default_flow_style=True, width=float("inf"))
    return dumped.removesuffix("...\n").strip()


def _section_markdown(section: Any, prefix: str, title: str) -> list[str]:
    """The table of the dataclass instance `section` and, after it, those of its sub-sections.

    Raises:
        ValueError: a field has neither help metadata nor a docstring `Attributes:` entry.
    """
    cls = type(section)
    description, attribute_docs = _docstring_parts(cls)
    hints = typing.get_type_hints(cls)
    blocks = [f"### {title}", ""]
    if description:
        blocks += [description, ""]
    blocks += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    subsections: list[tuple[Any, str]] = []
    for key, f in yaml_fields(cls).items():
        full_key = f"{prefix}{key}"
        meaning = f.metadata.get("help") or attribute_docs.get(f.name)
        if not meaning:
            raise ValueError(
                f"{cls.__module__}.{cls.__name__}.{f.name} (YAML key '{full_key}') is undocumented; "
                f"expected metadata={{'help': ...}} or an entry in the class docstring's Attributes:")
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value):
            default = f"see `{full_key}` below"
            subsections.append((value, full_key))
        else:
            default = f"`{_yaml_value(value)}`"
        blocks.append(f"| `{_cell(full_key)}` | {_cell(type_name(hints[f.name]))} | {_cell(default)} "
                      f"| {_cell(meaning)} |")
    for value, full_key in subsections:
        blocks += [""] + _section_markdown(value, f"{full_key}.", f"`{full_key}`")
    return blocks


def config_reference_markdown() -> str:
    """The Markdown reference of every YAML key of `TrainConfig`, with its type and default.

    One table for the top-level keys, then one per section (nested sections after their parent),
    each row `key` (kebab-case, full dotted name for nested keys) | type | default (as YAML) |
    meaning. Fields marked `derived` (`RasterizerConfig.color_activation`) are left out.

    Returns:
        The Markdown text, ending with a newline.

    Raises:
        ValueError: a config field has no documentation (names the class, field and YAML key).
    """
    return "\n".join(_section_markdown(TrainConfig(), "", "Top-level keys")) + "\n"


def _marker_positions(text: str, source: str) -> tuple[int, int]:
    """(start, end) of the generated part of `text`: after the BEGIN line, up to the END marker."""
    begin_line = BEGIN_MARKER + "\n"
    counts = (text.count(begin_line), text.count(END_MARKER))
    if counts != (1, 1):
        raise ValueError(
            f"{source}: found the BEGIN marker line {counts[0]} and the END marker {counts[1]} "
            f"time(s); expected each once: a line '{BEGIN_MARKER}' and, after it, '{END_MARKER}'")
    start = text.index(begin_line) + len(begin_line)
    end = text.index(END_MARKER)
    if end < start:
        raise ValueError(f"{source}: the END marker '{END_MARKER}' comes before the BEGIN marker line")
    return start, end


def generated_part(text: str, source: str = "<text>") -> str:
    """The text between the BEGIN marker line and the END marker of `text` (docs/FORMATS.md's text).

    Raises:
        ValueError: a marker is missing, repeated or out of order (names `source`).
    """
    start, end = _marker_positions(text, source)
    return text[start:end]


def with_generated_part(text: str, generated: str, source: str = "<text>") -> str:
    """`text` with its generated part replaced by `generated`, the rest unchanged.

    Raises:
        ValueError: a marker is missing, repeated or out of order (names `source`).
    """
    start, end = _marker_positions(text, source)
    return text[:start] + generated + text[end:]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Regenerate (`--write`) or check (`--check`) the YAML key reference in docs/FORMATS.md.

    Exit codes: 0 up to date (or rewritten), 1 stale (`--check`), 2 the file is missing or its
    markers are wrong (message on stderr). `--write` replaces the file atomically and only the
    part between the markers; it does not touch an up-to-date file.
    """
    parser = argparse.ArgumentParser(
        prog="python -m taichi_3dgs.training.config_reference",
        description="Generate the YAML key tables of docs/FORMATS.md from the training config.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite the generated part of the file")
    action.add_argument("--check", action="store_true", help="exit 1 when the generated part is stale")
    parser.add_argument("--path", type=Path, default=DOC_PATH, help=f"the Markdown file (default {DOC_PATH})")
    args = parser.parse_args(argv)
    try:
        text = args.path.read_text(encoding="utf-8")
        current = generated_part(text, str(args.path))
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    expected = config_reference_markdown()
    if current == expected:
        print(f"{args.path}: the YAML key reference is up to date")
        return 0
    if args.check:
        print(f"{args.path}: the YAML key reference is stale; run python -m "
              f"taichi_3dgs.training.config_reference --write", file=sys.stderr)
        return 1
    write_text_atomic(args.path, with_generated_part(text, expected, str(args.path)))
    print(f"{args.path}: rewrote the YAML key reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
