"""Run a script of tools/ in-process (its `main(argv)`), as the command line would."""
from __future__ import annotations

import importlib.util

from conftest import REPO_ROOT


def run_tool(name: str, *argv: str) -> int:
    """Exit code of `python tools/<name>.py <argv...>`."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([str(arg) for arg in argv])
