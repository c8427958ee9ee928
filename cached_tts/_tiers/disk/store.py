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

:class:`DiskStore` is built in layers, a module each: the folder's layout and
listing (:mod:`~cached_tts._tiers.disk.folder`), the per-key lock files
(:mod:`~cached_tts._tiers.disk.locks`), eviction and tidying
(:mod:`~cached_tts._tiers.disk.eviction`), and here reading and writing
entries. A cache uses it through :mod:`~cached_tts._tiers.disk.tier`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cached_tts._atomic import write_atomically
from cached_tts._entries.format import EntryInfo, check, decode, encode
from cached_tts._exceptions import DamagedEntryError
from cached_tts._keys.key import EntryKey
from cached_tts._tiers.base import size_problem
from cached_tts._tiers.disk.eviction import BoundedFolder
from cached_tts._tiers.disk.folder import StoredFile

if TYPE_CHECKING:
    from cached_tts._entries.entry import Entry

__all__ = ["DiskStore", "ScannedEntry", "StoredFile"]

logger = logging.getLogger("cached_tts")


@dataclass(frozen=True)
class ScannedEntry:
    """An entry file, read and checked: its ``info``, or why it is damaged."""

    file: StoredFile
    info: EntryInfo | None
    damage: str | None


class DiskStore(BoundedFolder):
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
