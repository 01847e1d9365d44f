"""pyproject.toml's dependencies and its `mesh` extra list exactly what the package, the top-level
scripts and tools/ import at run time: nothing imported is missing, nothing listed is unused, and
an optional extra is imported only where it is used."""
import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from conftest import REPO_ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

RUNTIME_EXTRAS = ("mesh",)
"""Optional extras that runtime code imports (where it is used); the `test` extra serves tests/ only."""

BUILD_TOOL_IMPORTS = {"taichi_3dgs/commands/make_lpips_weights.py": {"lpips"}}
"""Imports of tools that run on another machine to make an optional input file, never where
taichi_3dgs runs: make_lpips_weights.py reads the `lpips` package (with torchvision) to write the
LPIPS weights file (docs/FORMATS.md), which taichi_3dgs then reads without either package."""

SERVED_BY = {"torch.utils.tensorboard": "tensorboard"}
"""Modules of one distribution that import another one: torch's SummaryWriter needs the
tensorboard package, which no source file imports by name."""


def _runtime_sources() -> list[Path]:
    """The package, the top-level scripts and tools/."""
    scripts = list(REPO_ROOT.glob("*.py"))
    return sorted(REPO_ROOT.glob("taichi_3dgs/**/*.py")) + sorted(scripts) + sorted(REPO_ROOT.glob("tools/*.py"))


def _absolute_imports(path: Path) -> set[str]:
    """Dotted names of the absolute imports anywhere in a file (module level and in functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.update([node.module] + [f"{node.module}.{alias.name}" for alias in node.names])
    return names


def _imported_distributions() -> dict[str, set[str]]:
    """Canonical distribution name -> the files that import it (stdlib and taichi_3dgs left out).

    Raises:
        AssertionError: an imported third-party module that no installed distribution provides.
    """
    providers = packages_distributions()
    imported: dict[str, set[str]] = {}
    for path in _runtime_sources():
        for name in _absolute_imports(path):
            top = name.split(".")[0]
            relative = str(path.relative_to(REPO_ROOT))
            if top in sys.stdlib_module_names or top == "taichi_3dgs" or top in BUILD_TOOL_IMPORTS.get(relative, ()):
                continue
            assert top in providers, f"{path}: imports {top!r}, which no installed distribution provides"
            distributions = set(providers[top])
            distributions.update(dist for module, dist in SERVED_BY.items() if name == module)
            for dist in distributions:
                imported.setdefault(canonicalize_name(dist), set()).add(relative)
    return imported


def _required_distributions(extras: tuple[str, ...] = ()) -> set[str]:
    """Canonical names of pyproject.toml's dependencies (and of `extras`) whose environment marker
    holds on this machine."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = project["dependencies"] + [line for extra in extras for line in project["optional-dependencies"][extra]]
    required = set()
    for line in lines:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            required.add(canonicalize_name(requirement.name))
    return required


def test_every_runtime_import_is_a_dependency_and_every_dependency_is_imported():
    imported = _imported_distributions()
    expected = _required_distributions(RUNTIME_EXTRAS)
    missing = {dist: sorted(files) for dist, files in imported.items() if dist not in expected}
    assert not missing, f"imported at run time but not in pyproject.toml: {missing}"
    unused = expected - imported.keys()
    assert not unused, f"in pyproject.toml but imported by no runtime file: {sorted(unused)}"


def test_the_mesh_extra_is_imported_only_by_the_mesh_sampler():
    optional = _required_distributions(RUNTIME_EXTRAS) - _required_distributions()
    assert optional == {"trimesh"}
    # inside sample_mesh_surface: the scan reads imports in functions too
    assert _imported_distributions()["trimesh"] == {"taichi_3dgs/data/initial_points.py"}
