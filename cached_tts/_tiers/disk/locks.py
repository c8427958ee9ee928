"""The disk tier's lock files: processes preparing one key take turns on its lock.

One lock file per key, ``locks/<key digest>.lock``, taken with ``filelock``
for as long as a process prepares that key; the others wait on it and then
read what it stored. Lock files of entries that are gone are removed, never
while a process holds them.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from filelock import FileLock, Timeout

from cached_tts._entries.format import ENTRY_SUFFIX
from cached_tts._keys.key import EntryKey
from cached_tts._tiers.disk.folder import DiskFolder, _names_in

__all__ = ["FILE_MODE", "LOCK_SUFFIX", "LockingFolder"]

LOCK_SUFFIX = ".lock"
#: Entries, locks and temporary files are readable by their owner alone.
FILE_MODE = 0o600


class LockingFolder(DiskFolder):
    """A cache folder with a lock file per key.

    >>> import tempfile
    >>> folder = LockingFolder(Path(tempfile.mkdtemp()) / "cache")
    >>> folder.prepare()
    >>> key = EntryKey(content="c", weights="w", settings=())
    >>> with folder.lock_for(key, timeout=1.0):
    ...     folder.remove_orphan_locks()  # held: it stays
    0
    >>> folder.remove_orphan_locks()  # no entry, no one holds it: it goes
    1
    """

    def lock_for(self, key: EntryKey, timeout: float) -> FileLock:
        """A lock that processes computing ``key`` take turns on."""
        return FileLock(self._lock_path(key.digest), timeout=timeout, mode=FILE_MODE)

    def remove_orphan_locks(self, live: set[str] | None = None) -> int:
        """Remove lock files whose entry is absent and that no one holds; how many.

        ``live`` holds the digests of the entries present, when known.
        """
        if live is None:
            live = {path.name.removesuffix(ENTRY_SUFFIX) for path in self._entry_paths()}
        removed = 0
        for name in _names_in(self.locks_dir):
            digest = name.removesuffix(LOCK_SUFFIX)
            if name.endswith(LOCK_SUFFIX) and digest not in live and self._remove_lock(digest):
                removed += 1
        return removed

    def _lock_path(self, digest: str) -> Path:
        return self.locks_dir / f"{digest}{LOCK_SUFFIX}"

    def _remove_lock(self, digest: str) -> bool:
        """Unlink a key's lock file while holding it, unless someone else holds it.

        The lock is only single flight: a second preparer costs time, never
        correctness, since entries are written atomically. Taking the lock
        without waiting leaves alone a file that a process holds (its waiters
        queue on that very file). A process that opened the file just before
        and locks it just after finds it unlinked (filelock checks the link
        count after locking) and opens the new one.
        """
        path = self._lock_path(digest)
        if not path.exists():
            return False
        lock = FileLock(path, timeout=0, mode=FILE_MODE)
        try:
            lock.acquire()
        except (Timeout, OSError):
            return False
        try:
            return self._remove(path)
        finally:
            with contextlib.suppress(OSError):
                lock.release()
