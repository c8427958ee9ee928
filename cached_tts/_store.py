"""The disk tier: one verified safetensors file per entry, bounded in bytes.

Layout of a cache folder (0700; files 0600)::

    <cache_dir>/
        entries/<key digest>.safetensors   the entries
        locks/<key digest>.lock            cross-process single flight
        hashes/<path digest>.json          remembered content hashes

Entries are written atomically and never rewritten in place. A file's mtime is
its last use: hits touch it, and eviction removes the least recently used
files until the folder fits ``max_bytes``. A damaged entry is logged, removed,
and reported as absent, so the caller recomputes it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from cached_tts._atomic import TEMP_PREFIX, ensure_private_dir, write_atomically
from cached_tts._entry import Entry
from cached_tts._exceptions import DamagedEntryError
from cached_tts._format import EntryInfo, check, decode, encode
from cached_tts._keys import EntryKey

__all__ = ["DiskStore", "ScannedEntry", "StoredFile"]

logger = logging.getLogger("cached_tts")

ENTRY_SUFFIX = ".safetensors"

# A temporary file this old belongs to a writer that died.
_STALE_TEMP_SECONDS = 3600.0


@dataclass(frozen=True)
class StoredFile:
    """An entry file as the folder lists it (not yet read or verified)."""

    path: Path
    size: int
    last_used: float


@dataclass(frozen=True)
class ScannedEntry:
    """An entry file, read and checked: its ``info``, or why it is damaged."""

    file: StoredFile
    info: EntryInfo | None
    damage: str | None


class DiskStore:
    """Entries in one folder, shared safely by threads and processes.

    >>> import tempfile, torch
    >>> store = DiskStore(Path(tempfile.mkdtemp()) / "cache")
    >>> key = EntryKey(content="c", weights="w", settings=())
    >>> voice = {"ref.prompt_token": torch.zeros(1, 2, dtype=torch.int64),
    ...          "ref.prompt_token_len": torch.tensor([2]),
    ...          "ref.prompt_feat": torch.zeros(1, 4, 80),
    ...          "ref.embedding": torch.ones(1, 4)}  # a VC voice; prompt_feat_len is None
    >>> store.write(key, Entry(voice, absent=("ref.prompt_feat_len",)), source="a.wav")
    >>> entry, info = store.read(key)
    >>> entry.tensors["ref.embedding"].sum().item(), info.source
    (4.0, 'a.wav')
    """

    def __init__(self, directory: Path, max_bytes: int | None = None) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.entries_dir = directory / "entries"
        self.locks_dir = directory / "locks"
        self.hashes_dir = directory / "hashes"

    def prepare(self) -> None:
        """Create the folders. Raises ``OSError`` if that is not possible."""
        for folder in (self.directory, self.entries_dir, self.locks_dir, self.hashes_dir):
            ensure_private_dir(folder)
        if not os.access(self.entries_dir, os.W_OK | os.X_OK):
            raise PermissionError(f"{self.entries_dir} is not writable")

    def path_for(self, key: EntryKey) -> Path:
        """Where the entry for ``key`` lives."""
        return self.entries_dir / f"{key.digest}{ENTRY_SUFFIX}"

    def lock_for(self, key: EntryKey, timeout: float) -> FileLock:
        """A lock that processes computing ``key`` take turns on."""
        return FileLock(self.locks_dir / f"{key.digest}.lock", timeout=timeout)

    def read(self, key: EntryKey) -> tuple[Entry, EntryInfo] | None:
        """The verified entry for ``key``, or ``None`` if absent or damaged."""
        path = self.path_for(key)
        try:
            with open(path, "rb") as f:
                inode = os.fstat(f.fileno()).st_ino
                data = f.read()
        except FileNotFoundError:
            return None
        try:
            found = decode(data, key)
        except DamagedEntryError as exc:
            logger.warning("Removing damaged cache entry %s (%s); it will be recomputed", path, exc)
            self._remove(path, inode)
            return None
        self.touch(key)
        return found

    def write(
        self, key: EntryKey, entry: Entry, *, source: str, created: float | None = None
    ) -> None:
        """Store ``entry`` atomically, then evict down to ``max_bytes``."""
        created = time.time() if created is None else created
        self.write_bytes(key, encode(key, entry, source=source, created=created))

    def write_bytes(self, key: EntryKey, data: bytes) -> None:
        """Store an encoded entry (as :func:`encode` makes it) atomically, then evict."""
        path = self.path_for(key)
        write_atomically(path, data)
        if self.max_bytes is not None:
            self.evict(self.max_bytes, keep=path)

    def touch(self, key: EntryKey) -> None:
        """Mark the entry for ``key`` as just used."""
        with contextlib.suppress(OSError):
            os.utime(self.path_for(key))

    def files(self) -> list[StoredFile]:
        """Every entry file, least recently used first."""
        found = []
        for path in self._entry_paths():
            try:
                st = path.stat()
            except FileNotFoundError:
                continue  # evicted or cleared by someone else meanwhile
            found.append(StoredFile(path, st.st_size, st.st_mtime))
        return sorted(found, key=lambda f: f.last_used)

    def scan(self) -> list[ScannedEntry]:
        """Every entry file, least recently used first, each verified.

        Verified means its checksum holds and its file name is its key's digest.
        Nothing is removed: listing is not repairing.
        """
        scanned = []
        for stored in self.files():
            try:
                data = stored.path.read_bytes()
            except FileNotFoundError:
                continue  # removed by someone else meanwhile
            scanned.append(ScannedEntry(stored, *check(data, stored.path.stem)))
        return scanned

    def evict(self, max_bytes: int, *, keep: Path | None = None) -> int:
        """Remove least recently used entries until the rest fit; returns how many.

        ``keep`` (the entry just written, whose mtime may tie with older ones
        on a coarse clock) goes last.
        """
        files = sorted(self.files(), key=lambda f: f.path == keep)  # stable: LRU order kept
        total = sum(f.size for f in files)
        removed = 0
        for stored in files:
            if total <= max_bytes:
                break
            self._remove(stored.path)
            total -= stored.size
            removed += 1
        if removed:
            logger.debug("Evicted %d entries from %s", removed, self.entries_dir)
        self._reap_stale_temp_files()
        return removed

    def clear(self) -> None:
        """Remove every entry."""
        for path in self._entry_paths():
            self._remove(path)

    def _entry_paths(self) -> Iterator[Path]:
        try:
            with os.scandir(self.entries_dir) as scan:
                for item in scan:
                    if item.name.endswith(ENTRY_SUFFIX) and not item.name.startswith(TEMP_PREFIX):
                        yield Path(item.path)
        except FileNotFoundError:
            return

    def _reap_stale_temp_files(self) -> None:
        cutoff = time.time() - _STALE_TEMP_SECONDS
        for path in self.entries_dir.glob(f"{TEMP_PREFIX}*"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()

    @staticmethod
    def _remove(path: Path, inode: int | None = None) -> None:
        """Unlink ``path``; with ``inode``, only if no one has replaced it since."""
        try:
            if inode is not None and path.stat().st_ino != inode:
                return
            path.unlink(missing_ok=True)
        except FileNotFoundError:
            return
        except OSError as exc:
            logger.warning("Could not remove cache entry %s: %s", path, exc)
