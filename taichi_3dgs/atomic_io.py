"""Atomic file writes: nothing a user wrote is ever left half-written.

Every writer in the package writes to a temporary file in the destination folder and renames it
over the destination only once the content is complete (`os.replace` is atomic on POSIX and
Windows when both paths are on the same file system). A process killed mid-write leaves its
temporary file behind (`.<name>.<8 random characters>.tmp`); `remove_stale_temporaries` clears
them once nothing else writes into the folder.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

# The names `atomic_path` gives its temporary files: mkstemp's 8 random characters between the
# prefix `.<name>.` and the suffix `.tmp`.
_TEMPORARY_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
# The errors of a write that ran out of room: the disk, the user's quota, or a file-size limit
# (`ulimit -f`). Libraries that write through their own buffers (pyarrow) report the code only
# in their message, as "[Errno 27] ...".
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_ERRNO_IN_MESSAGE = re.compile(r"\[Errno (\d+)\]")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`, on error delete it.

    Usage: `with atomic_path(out) as tmp: writer(tmp)`. The parent folder is created if needed.

    Raises:
        OSError: the write ran out of room (ENOSPC, EDQUOT or EFBIG, also when a library only
            names the code in its message): re-raised with `path` as its filename and a reason
            that says the disk or quota is full.
        Whatever else the body raises; the destination is then left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp creates 0600; give what open() would
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        code = _error_code(error)
        if code in _NO_ROOM:
            raise OSError(code, f"cannot write this file: no room left on its disk ({os.strerror(code)}): the disk "
                                "or the quota is full, or a file-size limit was reached", str(path)) from error
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _error_code(error: OSError) -> int | None:
    """The errno of `error`, also when a library gives it only in the message."""
    if error.errno is not None:
        return error.errno
    found = _ERRNO_IN_MESSAGE.search(str(error))
    return int(found.group(1)) if found else None


@contextlib.contextmanager
def removed_on_error(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield `folder`; if it did not exist before and the body raises, delete it with everything
    the body wrote into it, so a failed run leaves no half-filled output folder behind. A folder
    that existed is left as it is (its files were written atomically)."""
    folder = Path(folder)
    existed = folder.exists()
    try:
        yield folder
    except BaseException:
        if not existed:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that `atomic_path` left in `folder` (not its subfolders) when
    the writing process died; a missing folder has none.

    Call it only while no other process writes into `folder` (e.g. holding the folder's lock): a
    live writer's temporary file has the same kind of name.

    Returns:
        The paths deleted, sorted.

    Raises:
        OSError: a temporary file cannot be deleted.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = sorted(p for p in folder.iterdir() if _TEMPORARY_NAME.match(p.name) and p.is_file())
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
