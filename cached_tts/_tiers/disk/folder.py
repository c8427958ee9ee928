"""The disk tier's folder: its layout, and listing and removing its files.

Layout of a cache folder (0700; files 0600)::

    <cache_dir>/
        entries/<key digest>.safetensors   the entries
        locks/<key digest>.lock            cross-process single flight
        hashes/<path digest>.json          remembered content hashes

Files being written carry :data:`~cached_tts._atomic.TEMP_PREFIX` until they
are renamed into place: listings tell them apart. A folder that cannot be
written (a cache baked into an image, a read-only volume, a folder another
user warmed) is still read: ``writable`` says which.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cached_tts._atomic import TEMP_PREFIX, ensure_private_dir
from cached_tts._entries.format import ENTRY_SUFFIX
from cached_tts._keys.key import EntryKey
from cached_tts._tiers.base import TierSettings

__all__ = ["DiskFolder", "StoredFile"]

logger = logging.getLogger("cached_tts")


@dataclass(frozen=True)
class StoredFile:
    """An entry file as the folder lists it (not yet read or verified)."""

    path: Path
    size: int
    last_used: float


class DiskFolder:
    """Where a cache folder keeps entries, locks and remembered hashes, and which are there.

    >>> import tempfile
    >>> folder = DiskFolder(Path(tempfile.mkdtemp()) / "cache")
    >>> folder.prepare()
    >>> folder.writable, folder.files()
    (True, [])
    """

    def __init__(
        self, directory: Path, max_bytes: int | None = None, *, max_entry_bytes: int | None = None
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        #: The largest entry file read or written; the shared tiers' bound by default.
        self.max_entry_bytes = (
            TierSettings().max_value_bytes if max_entry_bytes is None else max_entry_bytes
        )
        self.entries_dir = directory / "entries"
        self.locks_dir = directory / "locks"
        self.hashes_dir = directory / "hashes"
        self._entries = os.fspath(self.entries_dir)
        #: Whether entries can be stored here; a read-only folder is still read.
        self.writable = True
        # The folder's bytes at the last eviction plus what was noted since: a
        # cheap guess that says when a remembered hash needs an eviction pass.
        self._approx_bytes: int | None = None

    def prepare(self) -> None:
        """Create the folders, or find that the folder can only be read.

        Sets ``writable``. Raises ``OSError`` if the folder can be neither
        written nor read.
        """
        try:
            for folder in (self.directory, self.entries_dir, self.locks_dir, self.hashes_dir):
                ensure_private_dir(folder)
            self.writable = os.access(self.entries_dir, os.W_OK | os.X_OK)
        except OSError:
            if not self._readable():
                raise
            self.writable = False
        if not self.writable and not self._readable():
            raise PermissionError(f"{self.entries_dir} can be neither written nor read")

    def _readable(self) -> bool:
        return self.entries_dir.is_dir() and os.access(self.entries_dir, os.R_OK | os.X_OK)

    def path_for(self, key: EntryKey) -> Path:
        """Where the entry for ``key`` lives."""
        return self.entries_dir / f"{key.digest}{ENTRY_SUFFIX}"

    def _entry_path(self, digest: str) -> str:
        # Plain strings, not Path: this runs on every disk hit.
        return os.path.join(self._entries, f"{digest}{ENTRY_SUFFIX}")

    def files(self) -> list[StoredFile]:
        """Every entry file, least recently used first."""
        return _listing(self.entries_dir, ENTRY_SUFFIX)[0]

    def _entry_paths(self) -> Iterator[Path]:
        for name in _names_in(self.entries_dir):
            if name.endswith(ENTRY_SUFFIX) and not name.startswith(TEMP_PREFIX):
                yield self.entries_dir / name

    def _temp_files(self) -> list[StoredFile]:
        """Temporary files (of writers running or killed), least recently used first."""
        temps = [*_listing(self.entries_dir, None)[1], *_listing(self.hashes_dir, None)[1]]
        return sorted(temps, key=_last_used)

    @staticmethod
    def _remove(path: Path, inode: int | None = None) -> bool:
        """Unlink ``path``; with ``inode``, only if no one has replaced it since. Whether it did."""
        try:
            if inode is not None and path.stat().st_ino != inode:
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            logger.warning("Could not remove cache file %s: %s", path, exc)
            return False
        return True


def _listing(folder: Path, suffix: str | None) -> tuple[list[StoredFile], list[StoredFile]]:
    """The files of ``folder`` named ``*suffix``, and its temporary files; each LRU first.

    With ``suffix`` ``None``, only the temporary files (the first list is empty).
    """
    found: list[StoredFile] = []
    temps: list[StoredFile] = []
    try:
        with os.scandir(folder) as scan:
            items = list(scan)
    except FileNotFoundError:
        return found, temps
    for item in items:
        name = item.name
        if name.startswith(TEMP_PREFIX):
            kept = temps
        elif suffix is not None and name.endswith(suffix):
            kept = found
        else:
            continue
        try:
            st = item.stat()
        except FileNotFoundError:
            continue  # removed by someone else meanwhile
        kept.append(StoredFile(folder / name, st.st_size, st.st_mtime))
    found.sort(key=_last_used)
    temps.sort(key=_last_used)
    return found, temps


def _last_used(stored: StoredFile) -> float:
    return stored.last_used


def _names_in(folder: Path) -> list[str]:
    """The names in ``folder``; none if it does not exist."""
    try:
        with os.scandir(folder) as scan:
            return [item.name for item in scan]
    except FileNotFoundError:
        return []
