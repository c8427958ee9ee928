"""The tiers behind one key, with single flight and stats.

A lookup tries memory, then disk, then each shared tier (Redis, object
stores) in the order given, then prepares. A hit fills the tiers before the
one that served it; a preparation is written to all. Threads asking for one
key at once share a single preparation; processes sharing a folder take turns
on a file lock per key, and a fleet takes turns on a lease per key from the
first shared tier that has leases (Redis), so usually only one of them
prepares, and every reader sees whole, verified entries whatever the timing.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from cached_tts._cache.singleflight import SingleFlight
from cached_tts._cache.stats import CacheStats, HitCounts, stats_html, stats_text
from cached_tts._entries.entry import Entry
from cached_tts._entries.format import encode
from cached_tts._forksafe import renew_after_fork
from cached_tts._keys.clip import Clip, clip_of
from cached_tts._keys.fingerprint import model_fingerprint
from cached_tts._keys.key import EntryKey
from cached_tts._tiers.base import Found, TierSettings
from cached_tts._tiers.disk.tier import (
    _DEFAULT_DIR,
    CACHE_DIR_ENV,
    DiskTier,
    _DefaultDir,
    default_cache_dir,
)
from cached_tts._tiers.memory import MemoryTier
from cached_tts._tiers.redis.tier import REMOTE_ENV
from cached_tts._tiers.shared import _REMOTE_FROM_ENV, Remote, _RemoteFromEnv, open_given_tiers

if TYPE_CHECKING:
    from cached_tts._tiers.disk.store import DiskStore

__all__ = [
    "CACHE_DIR_ENV",
    "DEFAULT_MAX_DISK_BYTES",
    "DEFAULT_MAX_MEMORY_BYTES",
    "REMOTE_ENV",
    "ConditionalCache",
    "default_cache",
    "default_cache_dir",
]

#: About 1,500 voices at 165 KB each.
DEFAULT_MAX_MEMORY_BYTES: Final = 256 * 1024 * 1024
#: About 6,000 voices at 165 KB each.
DEFAULT_MAX_DISK_BYTES: Final = 1024 * 1024 * 1024
#: How long a process waits for another one preparing the same voice.
DEFAULT_LOCK_TIMEOUT: Final = 300.0


class ConditionalCache:
    """Prepared voices in memory and on disk, shared by any number of models.

    ``cache_dir`` left out means :func:`default_cache_dir`; ``None`` means
    memory only. Budgets are in bytes; ``None`` means unbounded.

    ``max_memory_bytes`` counts the tensor bytes of the entries this cache
    holds (about 165 KB a voice), in host memory: entries are kept on the
    CPU whatever device a model prepares on, and each hit copies one to the
    model's device (a GPU model gets its own copy in VRAM, as upstream's
    ``self.conds``). It does not count Python overhead, copies handed to
    models, or disk. ``max_disk_bytes`` counts the entry files on disk.

    ``remote`` adds tiers shared by a fleet, looked up in order after disk:
    a ``redis://`` or ``rediss://`` URL (credentials and database may be in
    it) or a ``redis.Redis`` client (``pip install 'cached-tts[redis]'``); an
    object store's fsspec URL, ``s3://bucket/prefix`` (``cached-tts[s3]``),
    ``gs://`` (``[gcs]``), ``az://``/``abfs://`` (``[azure]``), ``file://``
    or ``memory://``; or a list of those (a string may hold several URLs
    separated by commas). Left out, it is ``$CACHED_TTS_REMOTE`` when that is
    set; ``None`` means none. A ``remote`` given here that cannot be opened
    (a malformed URL, a missing extra) raises at once; one in
    ``$CACHED_TTS_REMOTE`` is skipped instead, with one warning a process
    naming the variable and the fix, and the cache works without it.
    ``remote_settings`` sets the timeouts and back-off of every shared tier
    (see :class:`RemoteSettings`); ``remote_options`` are fsspec options for
    the object stores (credentials, ``endpoint_url``...), over those from the
    URL, the environment and fsspec's configuration.

    Models use a cache through its lower-level methods, which are public too
    (for wrapping a model class of your own): :meth:`hash_clip` returns a
    :class:`~cached_tts.Clip`, :meth:`get_or_prepare` and :meth:`from_memory`
    look up :class:`~cached_tts.EntryKey` keys and return
    :class:`~cached_tts.Entry` values, and :meth:`share` copies one to the
    shared tiers. All four types are exported by ``cached_tts``.

    >>> cache = ConditionalCache(cache_dir=None)
    >>> cache.stats().entries
    0
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | _DefaultDir | None = _DEFAULT_DIR,
        *,
        max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
        max_disk_bytes: int | None = DEFAULT_MAX_DISK_BYTES,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        remote: Remote | Sequence[Remote] | _RemoteFromEnv | None = _REMOTE_FROM_ENV,
        remote_settings: TierSettings | None = None,
        remote_options: Mapping[str, Any] | None = None,
    ) -> None:
        _check_budget("max_memory_bytes", max_memory_bytes)
        if max_disk_bytes is not None:
            _check_budget("max_disk_bytes", max_disk_bytes)
        self._memory = MemoryTier(max_memory_bytes)
        self._disk: Final = DiskTier(
            cache_dir,
            max_disk_bytes,
            lock_timeout=lock_timeout,
            remote_settings=remote_settings,
            held=self._memory,
        )
        # In lookup order; set once, like the folder.
        self._tiers: Final = open_given_tiers(remote, remote_settings, remote_options)
        self._hasher = self._disk.file_hasher()
        self._flights: SingleFlight[tuple[Entry, str]] = SingleFlight()
        self._counts = HitCounts()

    @property
    def directory(self) -> Path | None:
        """The disk tier's folder, or ``None`` when the cache is memory only."""
        return self._disk.directory

    @property
    def _store(self) -> DiskStore | None:
        """The disk tier's folder itself, for housekeeping (stats, erasure, the command line)."""
        return self._disk.store

    def __copy__(self) -> ConditionalCache:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ConditionalCache:
        # A cache is a shared service, like a connection pool: copying a model
        # (copy.deepcopy) must give a model that uses the same cache.
        return self

    def __repr__(self) -> str:
        where = self.directory or "memory only"
        return f"<ConditionalCache {where}: {len(self._memory)} entries in memory>"

    def _repr_html_(self) -> str:
        return stats_html(self.stats(), title=repr(self))

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self) if cycle else stats_text(self.stats(), title=repr(self)))

    # -- keys -------------------------------------------------------------

    def content_hash(self, path: str | os.PathLike[str]) -> str:
        """sha256 of a clip, rehashed only when the file changes.

        Raises :class:`~cached_tts.ContentChangedError` if the file keeps
        changing while it is read.
        """
        return self._hasher.hash(path)

    def hash_clip(self, clip: str | os.PathLike[str] | IO[bytes]) -> Clip | None:
        """The content hash of a clip given as a path or a seekable stream.

        The returned :class:`~cached_tts.Clip` also tells whether the clip
        still holds those bytes later. ``None`` for a stream that cannot be
        read and put back.

        >>> import io
        >>> clip = ConditionalCache(cache_dir=None).hash_clip(io.BytesIO(b"abc"))
        >>> clip.digest[:16], clip.unchanged()
        ('ba7816bf8f01cfea', True)
        """
        return clip_of(clip, self._hasher)

    def model_fingerprint(self, model: Any) -> str:
        """The fingerprint of the weights ``model`` prepares voices with."""
        return model_fingerprint(model)

    # -- lookups ----------------------------------------------------------

    def from_memory(self, key: EntryKey) -> Entry | None:
        """The :class:`~cached_tts.Entry` for ``key`` if the memory tier holds it.

        Counted as a memory hit; ``None`` (and not counted) otherwise.

        >>> from cached_tts import EntryKey
        >>> key = EntryKey(content="c" * 64, weights="w", settings=())
        >>> ConditionalCache(cache_dir=None).from_memory(key) is None
        True
        """
        entry = self._memory.get(key.digest)
        if entry is not None:
            self._counts.add("memory", entry.prepare_seconds)
            self._disk.used(key.digest)
        return entry

    def get_or_prepare(
        self,
        key: EntryKey,
        prepare: Callable[[], Entry],
        *,
        source: str = "",
        wait: bool = True,
    ) -> Entry:
        """The :class:`~cached_tts.Entry` for ``key``, from any tier or from ``prepare()``.

        ``prepare`` runs at most once at a time per key in this process, and
        usually once across processes sharing the folder or a Redis server.
        Its exceptions propagate, and nothing is stored for them.

        ``wait=False`` never waits for another thread, process or worker
        preparing the same key: the caller prepares it too. It is for a caller
        that holds a lock the one preparing may need.
        """
        entry = self.from_memory(key)
        if entry is not None:
            return entry
        if not wait:
            entry, tier = self._load_or_prepare(key, prepare, source, wait=False)
            self._counts.add(tier, entry.prepare_seconds)
            return entry
        (entry, tier), computed_here = self._flights.do(
            key.digest, lambda: self._load_or_prepare(key, prepare, source)
        )
        # A thread that waited for another one's result was served from memory.
        self._counts.add(tier if computed_here else "memory", entry.prepare_seconds)
        return entry

    def _load_or_prepare(
        self, key: EntryKey, prepare: Callable[[], Entry], source: str, *, wait: bool = True
    ) -> tuple[Entry, str]:
        entry = self._memory.get(key.digest)
        if entry is not None:
            return entry, "memory"
        entry = self._disk.get(key)
        if entry is not None:
            self._memory.put(key.digest, entry, content=key.content)
            return entry, "disk"
        found = self._from_shared_tiers(key)
        if found is not None:
            entry, data = found
            self._disk.put(key, data)
            self._memory.put(key.digest, entry, content=key.content)
            return entry, "remote"
        if wait:
            entry, tier = self._prepare_once_across_processes(key, prepare, source)
        else:
            entry, tier = self._prepare_and_store(key, prepare, source), "miss"
        self._memory.put(key.digest, entry, content=key.content)
        return entry, tier

    def _prepare_once_across_processes(
        self, key: EntryKey, prepare: Callable[[], Entry], source: str
    ) -> tuple[Entry, str]:
        with self._disk.lease(key, source) as found:
            if found is not None:  # another process prepared it while we waited
                return found, "disk"
            # Errors from prepare() itself are the caller's, never the folder's.
            return self._prepare_once_across_fleet(key, prepare, source)

    def _from_shared_tiers(self, key: EntryKey) -> Found | None:
        """The first shared tier's verified entry; the tiers before it get a copy."""
        for index, tier in enumerate(self._tiers):
            found = tier.get(key)
            if found is not None:
                for earlier in self._tiers[:index]:
                    earlier.put(key, found[1])
                return found
        return None

    def _prepare_once_across_fleet(
        self, key: EntryKey, prepare: Callable[[], Entry], source: str
    ) -> tuple[Entry, str]:
        # Without a tier that has leases (an object store alone), workers that
        # miss one voice at once may each prepare it: correct, only duplicated.
        leasing = next((tier for tier in self._tiers if tier.leases), None)
        if leasing is None:
            return self._prepare_and_store(key, prepare, source), "miss"
        with leasing.lease(key) as found:
            if found is not None:  # another worker prepared it while we waited
                self._disk.put(key, found[1])
                return found[0], "remote"
            return self._prepare_and_store(key, prepare, source), "miss"

    def _prepare_and_store(self, key: EntryKey, prepare: Callable[[], Entry], source: str) -> Entry:
        entry = _timed(prepare)
        # Disk and every shared tier hold the very same bytes.
        data = encode(key, entry, source=source, created=time.time())
        self._disk.put(key, data)
        for tier in self._tiers:
            tier.put(key, data)
        return entry

    def share(self, key: EntryKey) -> bool:
        """Copy the disk entry for ``key`` to every shared tier; whether there was one.

        A lookup served by the disk writes no shared tier (a hit stays local).
        This fills them, as ``cached-tts warm --remote s3://...`` does on a
        machine whose folder is already warm. Never raises for a tier.

        >>> from cached_tts import EntryKey
        >>> key = EntryKey(content="c" * 64, weights="w", settings=())
        >>> ConditionalCache(cache_dir=None, remote="memory://doctest/share").share(key)
        False
        """
        if not self._tiers:
            return False
        data = self._disk.read_verified(key)
        if data is None:  # absent, or damaged: never shared
            return False
        for tier in self._tiers:
            tier.put(key, data)
        return True

    # -- stats and housekeeping --------------------------------------------

    def stats(self) -> CacheStats:
        """Counters of this cache object, and what each tier holds now."""
        files = self._disk.files()
        return self._counts.snapshot(
            entries=len(self._memory),
            memory_bytes=self._memory.nbytes,
            disk_entries=len(files),
            disk_bytes=sum(f.size for f in files),
            remote_errors=sum(tier.errors for tier in self._tiers),
            remote_tiers=tuple(tier.stats() for tier in self._tiers),
            disk_tier=self._store is not None,
        )

    def clear(self) -> None:
        """Remove every entry from memory and disk, and forget file hashes.

        Entries in shared tiers (Redis, object stores) are the fleet's and stay.
        """
        self._memory.clear()
        self._hasher.forget()
        self._disk.clear()

    def forget(self, clip: str | os.PathLike[str] | bytes) -> int:
        """Erase a voice: every entry made from ``clip`` (a path or its bytes).

        Entries for any model and any settings go, from this process's memory,
        the disk folder and every shared tier configured (they are shared:
        the whole fleet forgets it). Returns how many distinct entries were removed.
        Other processes still hold it in memory until they forget it too.

        >>> cache = ConditionalCache(cache_dir=None, remote=None)
        >>> cache.forget(b"the bytes of a clip never prepared")
        0
        """
        from cached_tts._cache.forget import Erased, clip_hash, erase_content

        content = clip_hash(clip)
        erased = Erased()
        erased.memory.extend(self._memory.discard_made_from(content))
        self._disk.forget_used(erased.memory)
        erase_content(content, self._store, self._tiers, erased)
        return erased.count


def _timed(prepare: Callable[[], Entry]) -> Entry:
    """``prepare()``, with how long it took unless the entry says so itself.

    A model's preparation times its own upstream run: it may first wait for a
    turn on the model, which no later hit saves.
    """
    started = time.perf_counter()
    entry = prepare()
    if entry.prepare_seconds > 0:
        return entry
    return dataclasses.replace(entry, prepare_seconds=time.perf_counter() - started)


def _check_budget(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number of bytes >= 0, got {value!r}")


_default: ConditionalCache | None = None
_default_lock = threading.Lock()
renew_after_fork(sys.modules[__name__], _default_lock=threading.Lock)


def default_cache() -> ConditionalCache:
    """The process-wide cache that models use when given none.

    It lives in :func:`default_cache_dir` and is created on first use.
    """
    global _default  # noqa: PLW0603 -- one lazily built process-wide cache
    with _default_lock:
        if _default is None:
            _default = ConditionalCache()
        return _default
