"""The disk folder as a cache's tier: lookups that never raise, turns across processes.

:class:`~cached_tts._tiers.disk.store.DiskStore` reads and writes the folder and
raises its errors: the command line's housekeeping must say when it cannot.
A cache uses the folder through a :class:`DiskTier` instead, with verbs like a
shared tier's (:class:`~cached_tts._tiers.base.SharedTier`): :meth:`~DiskTier.get`,
:meth:`~DiskTier.put` and :meth:`~DiskTier.lease` never raise. A failure is
logged and skipped, and a folder that keeps failing is set aside for a while
(its :class:`~cached_tts._tiers.health.Health`), so the cache goes on in memory.

It also marks the entries of memory hits as used (:mod:`cached_tts._tiers.disk.touch`),
so that eviction keeps what the process uses most. Without a folder
(``cache_dir=None``, or one that cannot be used) every verb is a quiet no-op.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

import platformdirs
from filelock import BaseFileLock, Timeout

from cached_tts._entries.entry import Entry
from cached_tts._entries.format import check
from cached_tts._keys.hashing import FileHasher
from cached_tts._keys.key import EntryKey
from cached_tts._tiers.base import TierSettings, size_problem
from cached_tts._tiers.disk.store import DiskStore, StoredFile
from cached_tts._tiers.disk.touch import Held, Toucher
from cached_tts._tiers.health import Backoff, Health

__all__ = ["CACHE_DIR_ENV", "DiskTier", "default_cache_dir"]

logger = logging.getLogger("cached_tts")

CACHE_DIR_ENV: Final = "CACHED_TTS_CACHE_DIR"

# A hot entry in memory refreshes its file's last use this often, so that
# disk eviction does not remove what the process is using most.
_TOUCH_INTERVAL_SECONDS = 60.0

# One failed read or write is skipped (a full disk, too many open files, one
# unreadable file); a folder failing three times in a row is set aside.
_DISK_BACKOFF: Final = Backoff(initial=5.0, maximum=60.0, failures=3)


class _DefaultDir:
    def __repr__(self) -> str:
        return "<platform cache folder>"


#: ``cache_dir`` left out: :func:`default_cache_dir`, looked up when a cache is made.
_DEFAULT_DIR: Final = _DefaultDir()


def default_cache_dir() -> Path:
    """``$CACHED_TTS_CACHE_DIR``, or the per-user platform cache folder.

    >>> import os
    >>> os.environ["CACHED_TTS_CACHE_DIR"] = "/tmp/voices"
    >>> default_cache_dir()
    PosixPath('/tmp/voices')
    >>> del os.environ["CACHED_TTS_CACHE_DIR"]
    """
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("cached-tts"))


class DiskTier:
    """A cache's folder (``None``: memory only), its health, its locks and its touches.

    ``cache_dir`` left out means :func:`default_cache_dir`.

    ``held`` is what the memory tier holds: the touches of entries no longer
    in it are forgotten in time.

    >>> import tempfile
    >>> tier = DiskTier(Path(tempfile.mkdtemp()) / "cache", None, lock_timeout=1.0)
    >>> key = EntryKey(content="c" * 64, weights="w", settings=())
    >>> tier.get(key) is None
    True
    >>> DiskTier(None, None, lock_timeout=1.0).directory is None
    True
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | _DefaultDir | None = _DEFAULT_DIR,
        max_bytes: int | None = None,
        *,
        lock_timeout: float,
        remote_settings: TierSettings | None = None,
        held: Held | None = None,
    ) -> None:
        if isinstance(cache_dir, _DefaultDir):
            cache_dir = default_cache_dir()
        # Disk reads are bounded like a shared tier's: a file larger is damage. A
        # smaller shared bound (to spare Redis's memory, say) leaves the disk at
        # the default, so that such entries are still kept on disk.
        max_entry_bytes = max(
            TierSettings().max_value_bytes, (remote_settings or TierSettings()).max_value_bytes
        )
        # Set once: a failing folder is skipped through its health, never unset,
        # so a thread that read self.store may always use it.
        self.store: Final = self._open_store(cache_dir, max_bytes, max_entry_bytes)
        where = self.store.directory if self.store else cache_dir
        self.reads = Health(f"Reading cache folder {where}", _DISK_BACKOFF)
        self.writes = Health(f"Writing to cache folder {where}", _DISK_BACKOFF)
        self._lock_timeout = lock_timeout
        self.toucher = self._open_toucher(held)

    @property
    def directory(self) -> Path | None:
        """The folder, or ``None`` when there is none."""
        return self.store.directory if self.store else None

    def file_hasher(self) -> FileHasher:
        """A clip hasher that remembers its hashes in the folder, when there is one."""
        store = self.store
        return FileHasher(store.hashes_dir, memo_written=store.noted) if store else FileHasher()

    @staticmethod
    def _open_store(
        cache_dir: str | os.PathLike[str] | None, max_bytes: int | None, max_entry_bytes: int
    ) -> DiskStore | None:
        if cache_dir is None:
            return None
        store = DiskStore(Path(cache_dir).expanduser(), max_bytes, max_entry_bytes=max_entry_bytes)
        try:
            store.prepare()
        except OSError as exc:
            logger.warning(
                "Cannot use cache folder %s (%s); caching in memory only", cache_dir, exc
            )
            return None
        if not store.writable:
            logger.warning(
                "Cache folder %s is read-only: serving the voices it holds, storing no new "
                "ones (make it writable, or pass another cache_dir, to store them)",
                store.directory,
            )
        return store

    # -- lookups: never raise ------------------------------------------------

    def get(self, key: EntryKey) -> Entry | None:
        """The verified entry for ``key``; ``None`` if absent, damaged, unreadable or set aside."""
        store = self.store
        if store is None or not self.reads.available():
            return None
        try:
            found = store.read(key)
        except OSError as exc:
            self.reads.failed(exc)  # a miss for this entry
            return None
        self.reads.succeeded()
        return found[0] if found else None

    def put(self, key: EntryKey, data: bytes) -> None:
        """Store the encoded entry for ``key``; a failure skips this write only."""
        store = self.store
        if store is None or not store.writable or not self.writes.available():
            return
        try:
            store.write_bytes(key, data)
        except OSError as exc:
            self.writes.failed(exc)  # this write is skipped
            return
        self.writes.succeeded()

    @contextlib.contextmanager
    def lease(self, key: EntryKey, source: str = "") -> Iterator[Entry | None]:
        """Take turns on ``key`` with the processes sharing the folder.

        Yields the entry when another process stored it while this one
        waited; ``None`` when the caller should prepare it, which it does
        holding the folder's lock for ``key``. Without a lock to take (no
        folder, a read-only one, a timeout) it yields ``None`` at once.
        """
        lock = self._acquire_process_lock(key, source)
        try:
            # Another process may have prepared it while we waited.
            yield self.get(key) if lock is not None else None
        finally:
            if lock is not None:
                with contextlib.suppress(OSError):
                    lock.release()

    def read_verified(self, key: EntryKey) -> bytes | None:
        """The bytes of the entry for ``key`` if they are sound; ``None`` if absent or damaged."""
        store = self.store
        if store is None:
            return None
        try:
            data = bytes(store.read_file(store.path_for(key)))
        except OSError:
            return None
        if size_problem(data, store.max_entry_bytes) or check(data, key.digest)[1] is not None:
            return None  # damaged: never shared
        return data

    def files(self) -> list[StoredFile]:
        """Every entry file, least recently used first; none without a folder or when it fails."""
        if self.store is None:
            return []
        with contextlib.suppress(OSError):  # stats never fail on a failing folder
            return self.store.files()
        return []

    def used(self, digest: str) -> None:
        """Have the entry named ``digest`` marked as used soon (a memory hit); never waits."""
        if self.toucher is not None:
            self.toucher.note(digest)

    def _acquire_process_lock(self, key: EntryKey, source: str) -> BaseFileLock | None:
        """The folder's lock for ``key``; ``None`` without a folder or after a timeout."""
        store = self.store
        # A read-only folder stores nothing, so there is nothing to take turns on.
        if store is None or not store.writable or not self.writes.available():
            return None
        lock = store.lock_for(key, self._lock_timeout)
        try:
            lock.acquire()
        except Timeout:
            logger.warning(
                "Waited %.0f s for another process preparing %s; preparing it here too",
                self._lock_timeout,
                source or key.content[:12],
            )
            return None
        except OSError as exc:
            self.writes.failed(exc)
            return None
        return lock

    def _open_toucher(self, held: Held | None) -> Toucher[str] | None:
        """What marks the disk entries of memory hits as used, off the hit's path."""
        store = self.store
        if store is None or not store.writable:
            return None
        writes = self.writes
        return Toucher(
            store.touch,
            # Not while the folder is set aside: it may be a hung mount.
            may_touch=writes.available,
            interval=_TOUCH_INTERVAL_SECONDS,
            held=held,
        )

    # -- housekeeping --------------------------------------------------------

    def forget_used(self, digests: Iterable[str] | None = None) -> None:
        """Forget when the entries named ``digests`` (all, if ``None``) were marked as used."""
        if self.toucher is not None:
            self.toucher.forget(digests)

    def clear(self) -> None:
        """Remove every entry from the folder, and forget every mark of use."""
        self.forget_used()
        if self.store is not None:
            self.store.clear()
