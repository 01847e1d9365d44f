"""A training run's folders: checked before the run writes anything, locked while it writes.

`check_output_folder` refuses a folder the run could not create or write (an existing file in its
place, a file among its parents, no write permission) before anything is read or written, so a
run fails at once instead of after its first steps.

`RunLock` keeps one run per output folder: `<output-model-dir>/.lock` is created atomically
(`O_CREAT | O_EXCL`) and holds the owner's pid, host name and process start time; it is removed when
the run ends, whatever way it ends short of the process being killed. A lock whose owner is gone
(same host, pid not running, or running but started at another time, i.e. a reused pid) is taken
over with a warning; a lock of a live process, or of another host, is refused with its pid.
"""
from __future__ import annotations

import json
import os
import socket
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Optional, Sequence

from taichi_3dgs.training.config_loader import ConfigError

LOCK_NAME = ".lock"


class FolderInUseError(OSError):
    """The output folder is locked by another training run; the message names the folder and pid."""


def check_output_folder(path: str | os.PathLike, key: str, source: str) -> None:
    """Check that the folder `path` (the config's `key`) exists or can be created, and is writable.

    Nothing is created. Root passes the permission test on any folder of a writable file system,
    as it would pass the write itself.

    Args:
        path: the folder (absolute, as the loaded config holds it).
        key: the config key it comes from, for the message (e.g. "output-model-dir").
        source: the config's name, for the message.

    Raises:
        ConfigError: `path` is an existing file, one of its parents is a file, or its nearest
            existing folder is not writable; the message names `source`, `key` and the path.
    """
    path = Path(path)
    where = f"{source}: key '{key}' is {path}"
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{where}, which is a file; expected a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{where}, which cannot be created: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{where}, which is not writable (no write permission on {existing})")


def check_outputs_are_not_inputs(output_dir: str | os.PathLike, outputs: Sequence[str],
                                 inputs: dict[str, Optional[str | os.PathLike]], source: str) -> None:
    """Refuse a run whose outputs would overwrite one of its inputs ("inputs are never outputs").

    Args:
        output_dir: the run's folder (key 'output-model-dir').
        outputs: the names of the files the run writes into it (train.json, train_config.yaml, ...).
        inputs: what the run reads, by the key that names it (a config key, or "the config file"),
            None for an unset key.
        source: the config's name, for the message.

    Raises:
        ConfigError: an output is the same file as an input (also through links or another
            spelling of the path); the message names both keys and the file.
    """
    for name in outputs:
        written = Path(output_dir) / name
        if not written.exists():
            continue
        for key, path in inputs.items():
            if path is not None and Path(path).exists() and os.path.samefile(written, path):
                raise ConfigError(f"{source}: key 'output-model-dir' is {output_dir}, where the run writes {name}, "
                                  f"which is the input {written} of {key}: the run would overwrite it; choose "
                                  "another output-model-dir (e.g. a subfolder 'output')")


def _process_start(pid: int) -> Optional[str]:
    """The start time of process `pid` in clock ticks since boot (/proc/<pid>/stat field 22), or
    None where /proc does not tell (not Linux, no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2, the command name, is in parentheses and may hold spaces: count after its end.
    return stat.rpartition(")")[2].split()[19]


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class RunLock:
    """The lock file `<folder>/.lock` of a run's output folder; a context manager.

    `with RunLock(folder):` creates `folder` if needed, takes the lock (or raises) and releases it
    on exit, also on an exception or Ctrl-C.

    The file is one line of JSON: `{"pid": 123, "host": "name", "process_start": "4567"}`
    (process_start null where /proc does not exist).
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._content: Optional[str] = None

    def acquire(self) -> None:
        """Create the lock file, taking over a stale one (with a warning).

        Raises:
            FolderInUseError: a live process holds the lock, the lock belongs to another host, or
                the lock file does not say who holds it.
            OSError: the folder or the file cannot be created.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        content = json.dumps({"pid": pid, "host": socket.gethostname(), "process_start": _process_start(pid)})
        # The second attempt follows the removal of a stale lock; if another run took the freed
        # lock in between, `_remove_stale` finds that run and refuses.
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._remove_stale()
                continue
            try:
                os.write(fd, (content + "\n").encode())
            except BaseException:
                os.close(fd)
                self.path.unlink(missing_ok=True)
                raise
            os.close(fd)
            self._content = content
            return
        raise FolderInUseError(f"{self.folder}: another training run took the lock {self.path} first")

    def _read(self) -> str:
        """The lock file's text ('' if it is gone); waits briefly for a holder that has created the
        file but not yet written its line."""
        for attempt in range(3):
            try:
                text = self.path.read_text(encoding="utf-8", errors="replace").strip()
            except FileNotFoundError:
                return ""
            if text or attempt == 2:
                return text
            time.sleep(0.05)
        return ""

    def _remove_stale(self) -> None:
        """Delete the existing lock file if its owner is gone; raise FolderInUseError if not."""
        text = self._read()
        if not text and not self.path.exists():
            return  # released meanwhile
        try:
            owner = json.loads(text)
            pid, host = int(owner["pid"]), str(owner["host"])
            started = owner.get("process_start")
        except (ValueError, TypeError, KeyError):
            raise FolderInUseError(
                f"{self.folder} is locked by {self.path}, which does not say which run holds it "
                f"({text[:80]!r}); if no training run writes into this folder, delete that file"
            ) from None
        if host != socket.gethostname():
            raise FolderInUseError(
                f"{self.folder} is in use by training run pid {pid} on host {host} (lock file {self.path}); "
                "if that run has ended, delete the lock file"
            )
        running = _pid_running(pid) and (started is None or _process_start(pid) in (None, started))
        if running:
            raise FolderInUseError(
                f"{self.folder} is in use by another training run, pid {pid} (lock file {self.path}); "
                "wait for it to end or choose another output-model-dir"
            )
        warnings.warn(f"{self.folder}: taking over the lock of training run pid {pid}, which is no "
                      "longer running (it was killed or crashed)")
        # Delete only the lock just judged stale, not one another run created since.
        if self._read() == text:
            self.path.unlink(missing_ok=True)

    def release(self) -> None:
        """Delete the lock file if this object holds it (a lock taken over by another run stays)."""
        if self._content is not None and self._read() == self._content:
            self.path.unlink(missing_ok=True)
        self._content = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, kind: Optional[type], error: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        self.release()
