"""Keeping the disk tier's folder within its budget, and tidying what writers left.

``max_bytes`` bounds the whole folder (entries, remembered hashes, locks and
temporary files): after each write, eviction removes remembered hashes first
(those of vanished files, then the least recently used), then the least
recently used entries, each with its lock, and temporary files a killed
writer left. A file's mtime is its last use: hits touch it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from cached_tts._entries.format import ENTRY_SUFFIX
from cached_tts._keys.hashing import MEMO_SUFFIX, remembered_path
from cached_tts._tiers.disk.folder import StoredFile, _listing
from cached_tts._tiers.disk.locks import LockingFolder

__all__ = ["STALE_TEMP_SECONDS", "BoundedFolder"]

logger = logging.getLogger("cached_tts")

# Remembered hashes may keep up to 1/16 of the budget when entries need room.
_MEMO_SHARE = 16

#: A temporary file this old belongs to a writer that died (a write takes milliseconds).
STALE_TEMP_SECONDS = 600.0


class BoundedFolder(LockingFolder):
    """A cache folder kept within ``max_bytes``, and tidied of what killed writers left.

    >>> import tempfile
    >>> folder = BoundedFolder(Path(tempfile.mkdtemp()) / "cache", max_bytes=0)
    >>> folder.prepare()
    >>> folder.evict(0), folder.reap_temp_files()
    (0, 0)
    """

    def noted(self, nbytes: int) -> None:
        """Count a file of ``nbytes`` written here by others (a remembered hash).

        An eviction pass runs when the folder may be over ``max_bytes``, so
        that files written without an entry (a server hashing uploads it
        already has entries for) stay within the budget too.
        """
        if self.max_bytes is None:
            return
        if self._approx_bytes is not None:
            self._approx_bytes += nbytes
            if self._approx_bytes <= self.max_bytes:
                return
        else:
            # A new process's first remembered hash (on a disk hit's path): the
            # folder's size, file included, says whether anything must go.
            total = self._folder_bytes()
            if total <= self.max_bytes:
                self._approx_bytes = total
                return
        self.evict(self.max_bytes)

    def _folder_bytes(self) -> int:
        """The bytes that count against ``max_bytes``: entries, hashes, temporary files."""
        entries, hashes = (
            _listing(self.entries_dir, ENTRY_SUFFIX),
            _listing(self.hashes_dir, MEMO_SUFFIX),
        )
        return sum(f.size for files in (*entries, *hashes) for f in files)

    def evict(self, max_bytes: int, *, keep: Path | None = None) -> int:
        """Remove files until the whole folder fits; returns how many entries went.

        The folder's bytes are its entries, remembered hashes and temporary
        files (lock files are empty). Temporary files a killed writer left go
        first. Remembered hashes (a lost one costs a rehash, about a
        millisecond per MB) go next, those of files that no longer exist
        first, then the least recently used, down to their share of the
        budget; then the least recently used entries; ``keep`` (the entry just
        written, whose mtime may tie with older ones on a coarse clock) last.
        The lock files of entries that are gone go too, unless a process
        holds them.
        """
        # One listing of each folder (this runs after each write, and on a
        # new process's first remembered hash): entries, hashes, temporary files.
        entries, entry_temps = _listing(self.entries_dir, ENTRY_SUFFIX)
        memos, memo_temps = _listing(self.hashes_dir, MEMO_SUFFIX)
        cutoff = time.time() - STALE_TEMP_SECONDS
        temp_bytes = 0
        for temp in (*entry_temps, *memo_temps):
            # Counted unless removed here: a bound may overcount, never undercount.
            if temp.last_used >= cutoff or not self._remove(temp.path):
                temp_bytes += temp.size
        memo_paths = {f.path for f in memos}
        memo_bytes = sum(f.size for f in memos)
        total = sum(f.size for f in entries) + memo_bytes + temp_bytes
        gone: set[Path] = set()

        def remove_while(over: Callable[[], bool], files: Iterable[StoredFile]) -> None:
            nonlocal total, memo_bytes
            for stored in files:
                if not over():
                    return
                if self._remove(stored.path):
                    total -= stored.size
                    memo_bytes -= stored.size if stored.path in memo_paths else 0
                    gone.add(stored.path)

        if total > max_bytes:
            # Reading memos to find vanished files only pays when over budget.
            memos = _vanished_first(memos)
            share = max_bytes // _MEMO_SHARE
            remove_while(lambda: total > max_bytes and memo_bytes > share, memos)
            others = [f for f in entries if f.path != keep]
            just_written = [f for f in entries if f.path == keep]
            remove_while(lambda: total > max_bytes, [*others, *memos, *just_written])
        evicted = sum(f.path in gone for f in entries)
        if evicted:
            logger.debug("Evicted %d entries from %s", evicted, self.entries_dir)
        self.remove_orphan_locks({f.path.stem for f in entries if f.path not in gone})
        self._approx_bytes = total
        return evicted

    def remove_entry(self, path: Path) -> None:
        """Remove the entry file at ``path`` and its lock file (unless someone holds it)."""
        self._remove(path)
        self._remove_lock(path.name.removesuffix(ENTRY_SUFFIX))

    def tidy(self) -> None:
        """Remove temporary files killed writers left, and lock files of absent entries."""
        self.reap_temp_files()
        self.remove_orphan_locks()

    def clear(self) -> None:
        """Remove every entry, every temporary file, and the lock files no one holds."""
        for path in self._entry_paths():
            self._remove(path)
        # A writer still running only loses that write; clear means empty.
        self.reap_temp_files(older_than=None)
        self.remove_orphan_locks(set())

    def reap_temp_files(self, older_than: float | None = STALE_TEMP_SECONDS) -> int:
        """Remove temporary files older than ``older_than`` s (``None``: all); how many."""
        cutoff = None if older_than is None else time.time() - older_than
        removed = 0
        for stored in self._temp_files():
            if (cutoff is None or stored.last_used < cutoff) and self._remove(stored.path):
                removed += 1
        return removed


def _vanished_first(memos: list[StoredFile]) -> list[StoredFile]:
    """Remembered hashes of files that no longer exist, then the others; each LRU first."""

    def vanished(memo: StoredFile) -> bool:
        path = remembered_path(memo.path)
        return path is None or not os.path.exists(path)

    return sorted(memos, key=lambda memo: not vanished(memo))  # stable: LRU order kept
