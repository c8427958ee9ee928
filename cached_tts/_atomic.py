"""Private folders and all-or-nothing file writes.

Readers in other processes must only ever see a whole file or none, so every
file is written to a unique temporary name in the same folder, flushed to the
disk, and renamed over its final name with ``os.replace``. A file is never
rewritten in place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["TEMP_PREFIX", "ensure_private_dir", "write_atomically"]

#: Temporary files start with this, so that scans can skip and reap them.
TEMP_PREFIX = ".tmp-"

PRIVATE_DIR_MODE = 0o700


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and its parents) readable by the owner alone.

    An existing folder is left with the mode it has: it may be shared on
    purpose.

    >>> import tempfile, pathlib, stat
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "cache"
    >>> ensure_private_dir(folder)
    >>> oct(stat.S_IMODE(folder.stat().st_mode))
    '0o700'
    """
    if path.is_dir():
        return
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    # mkdir's mode is filtered by the umask; say it again to be sure.
    os.chmod(path, PRIVATE_DIR_MODE)


def write_atomically(path: str | os.PathLike[str], data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see all of it or nothing.

    The file is readable and writable by its owner alone (0600). ``durable``
    flushes it to the disk before it appears; files that are only a shortcut
    (a lost one is merely recomputed) can skip that cost.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "entry.bin"
    >>> write_atomically(target, b"whole")
    >>> target.read_bytes()
    b'whole'
    """
    folder = os.path.dirname(os.fspath(path))
    if not os.path.isdir(folder):
        ensure_private_dir(Path(folder))
    # mkstemp creates the file with mode 0600 and a name no one else uses.
    fd, temp_name = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX)
    try:
        try:
            # Plain os calls: a remembered clip hash is written on a hit's path.
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
