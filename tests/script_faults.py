"""Run a script of the repository as a user would, and check how it fails on bad input.

The fault tests of every tool (tests/*/test_*_faults.py) share `assert_script_fails`: exit code 1
(or argparse's 2), exactly one `<prog>: error: ...` line naming the bad input, no traceback, and
the folder the run may write into exactly as it was before (an absent output stays absent, an
existing one keeps its bytes). `run_script` runs one that should succeed.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

SCRIPT_TIMEOUT_S = 300


def run_script(script: str, *args: object, cwd: Path) -> subprocess.CompletedProcess:
    """`python <repo>/<script> <args...>` run in `cwd` (script relative to the repository root,
    e.g. "visualizer.py" or "tools/make_demo_scene.py"), output captured as text."""
    return subprocess.run([sys.executable, str(REPO_ROOT / script), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S)


def folder_state(folder: Path) -> dict[str, bytes | None]:
    """Everything under `folder`: relative path -> file bytes, or None for a sub-folder; {} when
    `folder` does not exist, and {".": file bytes} when it is a file."""
    if folder.is_file():
        return {".": folder.read_bytes()}
    if not folder.exists():
        return {}
    return {str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
            for path in sorted(folder.rglob("*"))}


def assert_script_fails(script: str, *args: object, cwd: Path, names: tuple[str, ...],
                        watched: Path | None = None, exit_code: int = 1) -> str:
    """Run `script` with `args` in `cwd` and assert a clean failure.

    Asserts: exit code `exit_code`; the last line of stderr is the only `<prog>: error: ` line
    (`<prog>` the script's file name) and contains every string of `names` (the bad file, field,
    key or value); no "Traceback" on stderr; `watched` (default `cwd`, which holds the inputs
    and the outputs of these tests) unchanged: the same files with the same bytes and the same
    folders as before the run.

    Returns:
        The error line, for further checks.
    """
    watched = cwd if watched is None else watched
    before = folder_state(watched)
    result = run_script(script, *args, cwd=cwd)
    prog = Path(script).name
    stderr = result.stderr
    assert result.returncode == exit_code, f"exit code {result.returncode}:\n{stderr}"
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith(f"{prog}: error: ")]
    assert len(errors) == 1 and stderr.rstrip("\n").splitlines()[-1] == errors[0], stderr
    for name in names:
        assert name in errors[0], f"{name!r} not in {errors[0]!r}"
    after = folder_state(watched)
    assert after == before, (f"{watched} changed: added {sorted(set(after) - set(before))}, removed "
                             f"{sorted(set(before) - set(after))}, rewritten "
                             f"{sorted(k for k in set(after) & set(before) if after[k] != before[k])}")
    return errors[0]
