"""The disk tier: one verified safetensors file per entry, bounded in bytes.

Layout of a cache folder (0700; files 0600)::

    <cache_dir>/
        entries/<key digest>.safetensors   the entries
        locks/<key digest>.lock            cross-process single flight
        hashes/<path digest>.json          remembered content hashes

Entries are written atomically and never rewritten in place. A file's mtime is
its last use: hits touch it. ``max_bytes`` bounds the whole folder (entries,
remembered hashes, locks and temporary files): after each write, eviction
removes remembered hashes first (those of vanished files, then the least
recently used), then the least recently used entries, each with its lock, and
temporary files a killed writer left. A damaged entry is logged, removed, and
reported as absent, so the caller recomputes it.

No read takes more than ``max_entry_bytes`` and one byte, the bound of the
shared tiers (:attr:`TierSettings.max_value_bytes`): a larger file, such as a
sparse one of 8 GiB, is damage like any other (logged, removed, recomputed),
never loaded whole. Entries over the bound are not written.

A folder that cannot be written (a cache baked into an image, a read-only
volume, a folder another user warmed) is still read: ``writable`` says which.

:class:`DiskStore` is built in layers, a module each: the folder's layout
and listing (:mod:`~cached_tts._tiers.disk_folder`), the per-key lock files
(:mod:`~cached_tts._tiers.disk_locks`), and here eviction and tidying, and
reading and writing entries. A cache uses it through
:mod:`~cached_tts._tiers.disk_tier`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cached_tts._atomic import write_atomically
from cached_tts._entries.format import ENTRY_SUFFIX, EntryInfo, check, decode, encode
from cached_tts._exceptions import DamagedEntryError
from cached_tts._keys.hashing import MEMO_SUFFIX, remembered_path
from cached_tts._keys.key import EntryKey
from cached_tts._tiers.base import size_problem
from cached_tts._tiers.disk_folder import StoredFile, _listing
from cached_tts._tiers.disk_locks import LockingFolder

if TYPE_CHECKING:
    from cached_tts._entries.entry import Entry

__all__ = ["DiskStore", "ScannedEntry", "StoredFile"]

logger = logging.getLogger("cached_tts")

# Remembered hashes may keep up to 1/16 of the budget when entries need room.
_MEMO_SHARE = 16

#: A temporary file this old belongs to a writer that died (a write takes milliseconds).
STALE_TEMP_SECONDS = 600.0


@dataclass(frozen=True)
class ScannedEntry:
    """An entry file, read and checked: its ``info``, or why it is damaged."""

    file: StoredFile
    info: EntryInfo | None
    damage: str | None


class DiskStore(LockingFolder):
    """Entries in one folder, shared safely by threads and processes.

    >>> import tempfile, torch
    >>> from cached_tts._entries.entry import Entry
    >>> store = DiskStore(Path(tempfile.mkdtemp()) / "cache")
    >>> store.prepare()
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

    def read(self, key: EntryKey) -> tuple[Entry, EntryInfo] | None:
        """The verified entry for ``key``, or ``None`` if absent or damaged."""
        path = self._entry_path(key.digest)
        try:
            with open(path, "rb", buffering=0) as f:
                data, st = self._read_bounded(f)
        except FileNotFoundError:
            return None
        damage = size_problem(data, self.max_entry_bytes)
        if damage is None:
            try:
                # The tensors share the bytes just read: no one else holds them.
                found = decode(data, key, owned=True)
            except DamagedEntryError as exc:
                damage = str(exc)
        if damage is not None:
            logger.warning(
                "Removing damaged cache entry %s (%s); it will be recomputed", path, damage
            )
            self._remove(Path(path), st.st_ino)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # what touch() does
        return found

    def write(
        self, key: EntryKey, entry: Entry, *, source: str, created: float | None = None
    ) -> None:
        """Store ``entry`` atomically, then evict down to ``max_bytes``."""
        created = time.time() if created is None else created
        self.write_bytes(key, encode(key, entry, source=source, created=created))

    def write_bytes(self, key: EntryKey, data: bytes) -> None:
        """Store an encoded entry (as :func:`encode` makes it) atomically, then evict.

        An entry over ``max_entry_bytes`` is not stored: no read would take it.
        """
        if len(data) > self.max_entry_bytes:
            logger.debug(
                "Not storing %s on disk: %d bytes is over max_value_bytes",
                key.digest[:12],
                len(data),
            )
            return
        path = self.path_for(key)
        write_atomically(path, data)
        if self.max_bytes is not None:
            self.evict(self.max_bytes, keep=path)

    def touch(self, digest: str) -> None:
        """Mark the entry whose key digest is ``digest`` as just used."""
        with contextlib.suppress(OSError):
            os.utime(self._entry_path(digest))

    def scan(self) -> list[ScannedEntry]:
        """Every entry file, least recently used first, each verified.

        Verified means its checksum holds and its file name is its key's digest.
        Nothing is removed: listing is not repairing.
        """
        scanned = []
        for stored in self.files():
            try:
                data = self.read_file(stored.path)
            except FileNotFoundError:
                continue  # removed by someone else meanwhile
            too_large = size_problem(data, self.max_entry_bytes)
            if too_large is not None:
                scanned.append(ScannedEntry(stored, None, too_large))
            else:
                scanned.append(ScannedEntry(stored, *check(data, stored.path.stem)))
        return scanned

    def read_file(self, path: str | os.PathLike[str]) -> bytearray:
        """The bytes of the entry file at ``path``, unverified: ``max_entry_bytes + 1`` at most.

        A longer file reads as its start, which :func:`size_problem` calls damage.
        """
        with open(path, "rb", buffering=0) as f:
            return self._read_bounded(f)[0]

    def _read_bounded(self, f: io.RawIOBase) -> tuple[bytearray, os.stat_result]:
        """An open entry file's bytes, ``max_entry_bytes + 1`` at most, and its stat."""
        st = os.fstat(f.fileno())
        return _read_whole(f, min(st.st_size, self.max_entry_bytes + 1)), st

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


def _read_whole(f: io.RawIOBase, size: int) -> bytearray:
    """The bytes of an open file whose size is ``size``, in a buffer of their own.

    An entry file is never rewritten in place, so one read usually fills it;
    a file cut short meanwhile gives fewer bytes (and fails its checksum).
    """
    data = bytearray(size)
    view, filled = memoryview(data), 0
    with view:
        while filled < size and (got := f.readinto(view[filled:])):
            filled += got
    if filled < size:
        del data[filled:]
    return data


def _vanished_first(memos: list[StoredFile]) -> list[StoredFile]:
    """Remembered hashes of files that no longer exist, then the others; each LRU first."""

    def vanished(memo: StoredFile) -> bool:
        path = remembered_path(memo.path)
        return path is None or not os.path.exists(path)

    return sorted(memos, key=lambda memo: not vanished(memo))  # stable: LRU order kept
