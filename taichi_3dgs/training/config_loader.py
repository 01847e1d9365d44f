"""Config dataclasses read from and written to YAML: the generic loader, apart from any schema.

A schema is a tree of dataclasses whose fields carry their meaning as metadata (`setting`): the
help text, and markers other modules read instead of keeping lists of key names (the training
schema's: `steps=True`, the value counts single-camera steps; `resume="may-change"`, a run may
resume with another value; `cameras="train"`, a path whose cameras a checkpoint compares by
content; `strategy="mcmc"`, the section of that densification strategy). Two markers are the
loader's own: `bound=">0"` (or ">=0"), the range `check_bounds` enforces; `derived`, on a field
YAML cannot set, says what decides it instead.

YAML keys are the field names in kebab-case (snake_case accepted). Every key is checked: an
unknown or misspelled key is an error naming the key, the file and the closest valid keys (never
silently ignored); a value of the wrong type is an error naming the key, the file and the
expected type. Relative paths are resolved against a base folder (the YAML file's).
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import yaml


class ConfigError(ValueError):
    """A config file is invalid; the message names the file, the key and the fix."""


# Where command-line overrides come from, in messages.
OVERRIDE_SOURCE = "command line"


def setting(help: str, default: Any = dataclasses.MISSING, default_factory: Any = dataclasses.MISSING,
            **markers: Any) -> Any:
    """A `dataclasses.field` with `default` (or `default_factory`) documented by `help` and
    carrying `markers` (see the module docstring) in its metadata."""
    return field(default=default, default_factory=default_factory, metadata={"help": help, **markers})


def yaml_key(name: str) -> str:
    """The YAML key of a field name (kebab-case)."""
    return name.replace("_", "-")


def yaml_fields(cls: type) -> dict[str, dataclasses.Field]:
    """{YAML key: field} of the dataclass `cls`, without the fields marked `derived`."""
    return {yaml_key(f.name): f for f in dataclasses.fields(cls) if "derived" not in f.metadata}


def marked_keys(cls: type, marker: str, value: Any = True, prefix: str = "") -> tuple[str, ...]:
    """The dotted YAML keys of the fields of `cls` (and its sections) whose metadata[marker] is
    `value`; a marked section stands for all its keys."""
    hints = typing.get_type_hints(cls)
    keys: list[str] = []
    for key, f in yaml_fields(cls).items():
        if f.metadata.get(marker) == value:
            keys.append(prefix + key)
        elif dataclasses.is_dataclass(hints[f.name]):
            keys += marked_keys(hints[f.name], marker, value, f"{prefix}{key}.")
    return tuple(keys)


def replace_marked(obj: Any, marker: str, change: Callable[[Any], Any]) -> Any:
    """A copy of the config dataclass `obj` with every field whose metadata has `marker` (in any
    section) replaced by `change(value)`."""
    changes = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.metadata.get(marker):
            changes[f.name] = change(value)
        elif dataclasses.is_dataclass(value):
            changes[f.name] = replace_marked(value, marker, change)
    return dataclasses.replace(obj, **changes)


# The `bound` markers: a number field's value must satisfy the test, else "must be <text>".
BOUNDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    ">0": ("> 0", lambda value: value > 0),
    ">=0": (">= 0", lambda value: value >= 0),
}


def check_bounds(config: Any, source: str, prefix: str = "") -> None:
    """Check every field marked `bound` (in `BOUNDS`) of the config dataclass `config` and its
    sections; null values pass.

    Raises:
        ConfigError: "<source>: key '<dotted key>' must be > 0, got <value>" for the first field
            out of its bound.
    """
    for key, f in yaml_fields(type(config)).items():
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            check_bounds(value, source, f"{prefix}{key}.")
        elif "bound" in f.metadata and value is not None:
            text, test = BOUNDS[f.metadata["bound"]]
            if not test(value):
                raise ConfigError(f"{source}: key '{prefix}{key}' must be {text}, got {value!r}")


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{dotted key: value} of a nested mapping."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def type_name(tp: Any) -> str:
    """How a field of type `tp` is named in messages and the key reference ("an integer", ...)."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return f"{type_name(args[0])} or null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {len(typing.get_args(tp))} numbers"
    if tp is Path:
        return "a path"
    if dataclasses.is_dataclass(tp):
        return "a mapping (section)"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


# A decimal number as written in YAML or on the command line (no nan, inf or hex).
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def convert(value: Any, tp: Any, where: str, base_dir: Path) -> Any:
    """Convert a YAML value to `tp`; raise ConfigError(where) when it does not fit."""

    def wrong() -> ConfigError:
        return ConfigError(f"{where}: expected {type_name(tp)}, got {value!r}")

    origin = typing.get_origin(tp)
    if origin is typing.Union:
        if value is None:
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)][0]
        return convert(value, inner, where, base_dir)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise wrong()
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise wrong()
        return tuple(convert(v, a, where, base_dir) for v, a in zip(value, args))
    if tp is bool:
        if not isinstance(value, bool):
            raise wrong()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong()
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot in the mantissa) as a string
            if not _NUMBER.fullmatch(value.strip()):
                raise wrong()
            return float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong()
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise wrong()
        return value
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise wrong()
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base_dir / path).resolve()
    raise TypeError(f"unsupported config field type {tp!r} at {where}")


def update_from_yaml(obj: Any, data: Any, section: str, source: str, base_dir: Path) -> Any:
    """A copy of the config dataclass `obj` with the keys of the YAML mapping `data` set.

    Relative paths in `data` resolve against `base_dir`; so do relative default paths of keys
    `data` does not set (logs/, output/ belong beside the YAML, not in the working directory).

    Raises:
        ConfigError: an unknown key (with the closest valid ones), a key given twice (kebab-case
            and snake_case), a value of the wrong type, or a value a section's own check refuses
            (its `__post_init__` raising an error with `field` and `expected` attributes, as
            `RasterizerConfig`'s); the message names `source` and the key.
    """
    where = f"{source}: section '{section}'" if section else source
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {type(data).__name__}")
    cls = type(obj)
    fields = yaml_fields(cls)
    hints = typing.get_type_hints(cls)
    changes: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = yaml_key(str(raw_key))
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=3, cutoff=0.5)
            if close:
                hint = f"did you mean {' or '.join(repr(c) for c in close)}?"
            else:
                hint = f"valid keys: {', '.join(fields)}"
            scope = f"in section '{section}'" if section else "at top level"
            raise ConfigError(f"{source}: unknown key '{raw_key}' {scope}; {hint}")
        f = fields[key]
        if f.name in changes:
            raise ConfigError(f"{where}: key '{key}' is given twice (kebab-case and snake_case)")
        full_key = f"{section}.{key}" if section else key
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            changes[f.name] = update_from_yaml(getattr(obj, f.name), value, full_key, source, base_dir)
        else:
            changes[f.name] = convert(value, tp, f"{source}: key '{full_key}'", base_dir)
    for f in dataclasses.fields(cls):
        value = getattr(obj, f.name)
        if f.name not in changes and isinstance(value, Path) and not value.is_absolute():
            changes[f.name] = (base_dir / value).resolve()
    try:
        return dataclasses.replace(obj, **changes)
    except ValueError as error:
        name, expected = getattr(error, "field", None), getattr(error, "expected", None)
        if name is None or expected is None:
            raise
        full_key = f"{section}.{yaml_key(name)}" if section else yaml_key(name)
        raise ConfigError(f"{source}: {full_key} = {getattr(error, 'value', None)!r}; expected {expected}") from None


def parse_overrides(arguments: Sequence[str]) -> dict[str, Any]:
    """The nested YAML mapping of command-line overrides `--key value` / `--key=value`.

    Keys are YAML keys (kebab-case or snake_case), nested keys joined with dots
    (`--adaptive-controller-config.densify-until-iteration 1000`); values are parsed as YAML
    (`5`, `0.5`, `true`, `null`, `[1, 1, 1]`, a path).

    Raises:
        ConfigError: an argument that is not `--key`, a key without a value, a value that is not
            YAML, or a key given twice.
    """
    overrides: dict[str, Any] = {}
    index = 0
    while index < len(arguments):
        token = arguments[index]
        if not token.startswith("--") or len(token) == 2:
            raise ConfigError(f"{OVERRIDE_SOURCE}: unexpected argument {token!r}; a config override is "
                              "--KEY VALUE (any YAML key, nested keys joined with dots)")
        name, has_value, text = token[2:].partition("=")
        if not has_value:
            if index + 1 >= len(arguments) or arguments[index + 1].startswith("--"):
                raise ConfigError(f"{OVERRIDE_SOURCE}: --{name} needs a value (--{name} VALUE)")
            index += 1
            text = arguments[index]
        index += 1
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"{OVERRIDE_SOURCE}: --{name}: {text!r} is not a YAML value") from None
        *sections, key = name.split(".")
        node = overrides
        for part in sections:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{OVERRIDE_SOURCE}: --{name}: '{part}' is given a value and nested keys")
        if key in node:
            raise ConfigError(f"{OVERRIDE_SOURCE}: --{name} is given twice")
        node[key] = value
    return overrides


def plain(value: Any) -> Any:
    """`value` as YAML writes it: paths as strings, tuples as lists."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value


def to_yaml(config: Any, comments: bool = True) -> str:
    """The YAML text of the config dataclass `config`, every key written, kebab-case; with each
    field's help as a comment. `update_from_yaml` of this text gives back `config`."""
    lines: list[str] = []

    def emit(obj: Any, indent: str) -> None:
        for key, f in yaml_fields(type(obj)).items():
            value = getattr(obj, f.name)
            help_text = f.metadata.get("help")
            if comments and help_text:
                lines.append(f"{indent}# {help_text}")
            if dataclasses.is_dataclass(value):
                lines.append(f"{indent}{key}:")
                emit(value, indent + "  ")
            else:
                dumped = yaml.safe_dump({key: plain(value)}, default_flow_style=True, width=1_000_000).strip()
                lines.append(f"{indent}{dumped[1:-1] if dumped.startswith('{') else dumped}")

    emit(config, "")
    return "\n".join(lines) + "\n"
