"""requirements.txt lists exactly what the package, the top-level scripts and tools/ import at run
time: nothing imported is missing from it, nothing in it is unused."""
import ast
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from conftest import REPO_ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SEPARATELY_INSTALLED = {"torch"}
"""Distributions installed before requirements.txt (README: the CPU or CUDA build of torch)."""

BUILD_TOOL_IMPORTS = {"taichi_3dgs/commands/make_lpips_weights.py": {"lpips"}}
"""Imports of tools that run on another machine to make an optional input file, never where
taichi_3dgs runs: make_lpips_weights.py reads the `lpips` package (with torchvision) to write the
LPIPS weights file (docs/FORMATS.md), which taichi_3dgs then reads without either package."""

SERVED_BY = {"torch.utils.tensorboard": "tensorboard"}
"""Modules of one distribution that import another one: torch's SummaryWriter needs the
tensorboard package, which no source file imports by name."""


def _runtime_sources() -> list[Path]:
    """The package, the top-level scripts (not setup.py, which runs at install time) and tools/."""
    scripts = [path for path in REPO_ROOT.glob("*.py") if path.name != "setup.py"]
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


def _required_distributions() -> set[str]:
    """Canonical names in requirements.txt whose environment marker holds on this machine (so
    only one of open3d-cpu / open3d, the two wheels of the `open3d` import)."""
    required = set()
    for line in (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate():
                required.add(canonicalize_name(requirement.name))
    return required


def test_every_runtime_import_is_a_requirement_and_every_requirement_is_imported():
    imported = _imported_distributions()
    expected = _required_distributions() | SEPARATELY_INSTALLED
    missing = {dist: sorted(files) for dist, files in imported.items() if dist not in expected}
    assert not missing, f"imported at run time but not in requirements.txt: {missing}"
    unused = expected - imported.keys()
    assert not unused, f"in requirements.txt but imported by no runtime file: {sorted(unused)}"


def test_open3d_is_imported_only_by_the_mesh_sampler():
    [open3d] = {canonicalize_name(dist) for dist in packages_distributions()["open3d"]}
    # inside sample_mesh_surface: the scan reads imports in functions too
    assert _imported_distributions()[open3d] == {"taichi_3dgs/data/initial_points.py"}
