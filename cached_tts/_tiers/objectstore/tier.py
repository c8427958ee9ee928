"""The object-store tier: entries shared through a bucket (S3, GCS, Azure) or a folder.

Layout under the URL's prefix (``s3://voices/prod`` means bucket ``voices``,
prefix ``prod``)::

    <prefix>/<key digest>.safetensors   the very bytes of a disk entry

An object is written once and never changed: with a conditional create where
the store has one (S3 ``If-None-Match: *``; ``file://`` links a whole
temporary file into place, which fails if the name exists), so a lost race is
a success. Where the store has none, a racing writer may replace an object with
another whole, valid entry for the same key, which is harmless. Every read is
verified exactly like disk (checksum and key): a damaged or misplaced object is
never served, and it is deleted only when the tier may write.

A read asks for at most :attr:`TierSettings.max_value_bytes` and one byte
more (a ranged GET for S3: still one request), so an object someone made huge
costs a worker that much memory at most. It is damage like any other: a miss,
deleted when the tier may write; the next preparation's create then succeeds.
Entries over the limit are not written.

With read-only credentials reads work, and the first refused write is logged
once as a warning; the tier then stops writing. A refused read is a miss (S3
refuses, rather than denies the existence of, a missing object to keys that
may not list the bucket). A store that does not answer costs at most
:attr:`TierSettings.call_timeout` per call (building a client, once per
process, may take :attr:`TierSettings.open_timeout`), then a back-off during
which the tier is skipped. Lookups that need the client while it is being
built wait for that one attempt, never past its deadline, and skip the tier
together when it fails: they never queue for attempts of their own.

An object store has no lease: workers that miss the same voice at the same
time may each prepare it once. With a Redis tier in the list, its lease gives
fleet-wide single flight.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

from cached_tts._entries.format import ENTRY_SUFFIX
from cached_tts._forksafe import renew_after_fork
from cached_tts._keys.key import EntryKey
from cached_tts._tiers.base import SharedTier, StoredObject, TierSettings
from cached_tts._tiers.deadline import DeadlineRunner
from cached_tts._tiers.objectstore.calls import (
    error_code,
    link_new_file,
    lost_race,
    modified,
    run_async,
    store_errors,
)
from cached_tts._tiers.open_once import OpenFailedElsewhereError, OpenOnce

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem  # type: ignore[import-untyped]

__all__ = ["ObjectStoreTier"]

logger = logging.getLogger("cached_tts")


# Stores whose fsspec implementation turns pipe_file(mode="create") into a
# real conditional create. Others check, then write: a racing writer at worst
# replaces an object with another whole entry for the same key.
_CONDITIONAL_CREATE: Final = frozenset({"s3", "s3a"})

# Objects per bulk delete: S3's DeleteObjects takes at most 1,000 keys.
_DELETE_BATCH = 1000

# memory:// lives in this process: one lock makes its check-then-set atomic.
_MEMORY_LOCK = threading.Lock()
renew_after_fork(sys.modules[__name__], _MEMORY_LOCK=threading.Lock)


class ObjectStoreTier(SharedTier):
    """Verified entries under one prefix of an fsspec filesystem."""

    def __init__(
        self,
        open_filesystem: Callable[[], AbstractFileSystem],
        *,
        scheme: str,
        root: str,
        name: str,
        settings: TierSettings,
        read_only: bool = False,
    ) -> None:
        super().__init__(name, settings)
        self._open_filesystem = open_filesystem
        self._scheme = scheme
        self._root = root
        self._lock = threading.Lock()
        renew_after_fork(self, _lock=threading.Lock)
        # A filesystem's connections and event loop do not survive a fork: the
        # opener forgets it in a forked child, which opens its own.
        self._client: OpenOnce[AbstractFileSystem] = OpenOnce(
            self._open, timeout=settings.open_timeout
        )
        self._warned: set[str] = set()
        # file:// calls run in threads of their own, which a hung mount may keep.
        self._runner = DeadlineRunner()
        self.read_only = read_only
        self.store_errors = store_errors(scheme)

    def location(self, digest: str) -> str:
        """The URL of the object named ``digest``.

        >>> from cached_tts._tiers.objectstore.opening import open_object_store
        >>> open_object_store("s3://voices/prod").location("d" * 64)[-20:]
        'dddddddd.safetensors'
        """
        return f"{self.name}/{digest}{ENTRY_SUFFIX}"

    def _path(self, digest: str) -> str:
        return f"{self._root}/{digest}{ENTRY_SUFFIX}"

    # -- lookups ------------------------------------------------------------

    def _fetch(self, digest: str) -> bytes | None:
        try:
            data = self._read_bounded(self._call, digest)
        except FileNotFoundError:
            self.health.succeeded()
            return None
        except PermissionError as exc:
            # S3 answers 403, not 404, for a missing object when the keys may
            # not list the bucket: a miss, not an outage to back off from.
            self._warn_once(
                "read",
                "%s refused a read (%s); taken as a miss. Keys that may read it need "
                "s3:GetObject and s3:ListBucket (without it a missing entry is a 403)",
                exc,
            )
            self.health.succeeded()
            return None
        except Exception as exc:  # noqa: BLE001 -- any failure of the store is the tier's, not the caller's
            self._failed(exc)
            return None
        self.health.succeeded()
        return data

    def _read_bounded(self, call: Callable[..., Any], digest: str) -> bytes:
        """The first ``max_value_bytes + 1`` bytes of the object, in one ranged read.

        Never the whole of an object someone made huge, and never a HEAD first
        to learn its size (s3fs asks none for a range from 0 to a set end).
        """
        most = self.settings.max_value_bytes + 1
        try:
            return bytes(call("cat_file", self._path(digest), start=0, end=most))
        except OSError as exc:
            # S3 answers a range of an empty object with 416: it exists, and holds nothing.
            if error_code(exc) == "InvalidRange":
                return b""
            raise

    def put(self, key: EntryKey, data: bytes) -> None:
        """Create the object for ``key`` unless it exists; never raises."""
        if self.read_only or not self.health.available() or not self.fits(key, data):
            return
        try:
            self._create(self._path(key.digest), data)
        except Exception as exc:  # noqa: BLE001 -- see _fetch
            if lost_race(exc):
                logger.debug("%s already holds %s", self.name, key.digest[:12])
            elif isinstance(exc, PermissionError):
                self._refused("write", exc)
            else:
                self._failed(exc)
                return
        self.health.succeeded()

    def _discard(self, digest: str, data: bytes, damage: str) -> None:  # noqa: ARG002 -- plain delete
        # A plain delete, without reading the object again: all that can have
        # replaced the damaged bytes since is a whole entry for the same key,
        # which is then merely recomputed. Never a wrong voice served.
        where = self.location(digest)
        if self.read_only:
            logger.warning(
                "Not serving damaged entry %s (%s); it will be recomputed (read-only, left there)",
                where,
                damage,
            )
            return
        logger.warning("Removing damaged entry %s (%s); it will be recomputed", where, damage)
        try:
            self._call("rm_file", self._path(digest))
        except FileNotFoundError:
            pass
        except PermissionError as exc:
            self._refused("delete", exc)
        except Exception as exc:  # noqa: BLE001 -- see _fetch
            self._failed(exc)

    def _refused(self, verb: str, exc: PermissionError) -> None:
        """The store refused a write: read-only credentials. Say so once, then stop writing."""
        with self._lock:
            if self.read_only:
                return
            self.read_only = True
        logger.warning(
            "%s refused to %s (%s); using it read-only from now on",
            self.name,
            verb,
            exc,
        )

    def _warn_once(self, topic: str, message: str, exc: BaseException) -> None:
        with self._lock:
            if topic in self._warned:
                return
            self._warned.add(topic)
        logger.warning(message, self.name, exc)

    # -- housekeeping ----------------------------------------------------------

    def ping(self) -> None:
        """Return if the store answers and its bucket exists; raise its error if not."""
        try:
            self._call_patiently("ls", self._root, detail=False)
        except FileNotFoundError:
            # An empty prefix is fine (nothing written yet); a missing bucket is not.
            if self._scheme in ("file", "memory"):
                return
            bucket = self._root.partition("/")[0]
            try:
                self._call_patiently("ls", bucket, detail=False)
            except FileNotFoundError as exc:
                raise FileNotFoundError(f"{self.name}: there is no bucket {bucket!r}") from exc

    def scan(self) -> Iterator[StoredObject]:
        """Every ``<digest>.safetensors`` object under the prefix, from one listing."""
        try:
            listing = self._call_patiently("ls", self._root, detail=True)
        except FileNotFoundError:
            return
        for info in listing:
            base = str(info["name"]).rstrip("/").rpartition("/")[2]
            if info.get("type") == "file" and base.endswith(ENTRY_SUFFIX):
                yield StoredObject(
                    base.removesuffix(ENTRY_SUFFIX), int(info.get("size") or 0), modified(info)
                )

    def read(self, digest: str) -> bytes | None:
        """The stored bytes of the entry named ``digest``, unverified; ``None`` if absent.

        At most ``max_value_bytes + 1`` of them: a longer object reads as its
        start, which every check calls damage.
        """
        try:
            return self._read_bounded(self._call_patiently, digest)
        except FileNotFoundError:
            return None

    def delete(self, digest: str, data: bytes) -> bool:
        """Delete the object named ``digest`` if it still holds ``data``; whether it did.

        The check and the delete are two calls. The only write that can come
        between them is a whole entry for the same key, which is then removed
        and recomputed: never a wrong voice served.
        """
        if self.read(digest) != data:
            return False
        try:
            self._call_patiently("rm_file", self._path(digest))
        except FileNotFoundError:
            return False
        return True

    def delete_all(self) -> int:
        """Delete every entry under the prefix; how many."""
        paths = [self._path(found.digest) for found in self.scan()]
        for start in range(0, len(paths), _DELETE_BATCH):
            self._call_patiently("rm", paths[start : start + _DELETE_BATCH])
        return len(paths)

    # -- the store -------------------------------------------------------------

    def _filesystem(self) -> AbstractFileSystem:
        return self._client.get()

    def _open(self) -> AbstractFileSystem:
        """Build the client, within ``open_timeout``: it may look up credentials.

        Finding credentials (a container's or an instance's metadata service)
        can take longer than a call may; the first lookup of a cold process
        must not time out on it and back off.
        """
        fs = self._open_filesystem()
        set_session = getattr(fs, "set_session", None)  # s3fs
        if fs.async_impl and set_session is not None:
            run_async(fs, set_session, timeout=self.settings.open_timeout)
        return fs

    def _failed(self, exc: BaseException) -> None:
        if not isinstance(exc, OpenFailedElsewhereError):  # the caller that waited first counts it
            super()._failed(exc)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``fs.<method>(...)``, within ``call_timeout`` for stores reached over a network."""
        return self._call_within(self.settings.call_timeout, method, *args, **kwargs)

    def _call_patiently(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``fs.<method>(...)`` for a command: a long listing may take many requests.

        The store's own timeouts still end a call to a store that does not answer
        (for S3, the settings' connect and read timeouts of every request).
        """
        return self._call_within(None, method, *args, **kwargs)

    def _call_within(self, timeout: float | None, method: str, *args: Any, **kwargs: Any) -> Any:
        fs = self._filesystem()
        if not fs.async_impl:
            return self._in_time(timeout, getattr(fs, method), *args, **kwargs)
        return run_async(fs, getattr(fs, f"_{method}"), *args, timeout=timeout, **kwargs)

    def _in_time(
        self, timeout: float | None, function: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        """``function(...)``, given up on after ``timeout`` when it touches a folder.

        A folder may sit on a network mount (NFS, SMB) whose server hangs, and
        a read there blocks with no timeout of its own. memory:// does no I/O.
        """
        if timeout is None or self._scheme != "file":
            return function(*args, **kwargs)
        return self._runner.run(timeout, function, *args, **kwargs)

    def _create(self, path: str, data: bytes) -> None:
        """Write ``path`` once; ``FileExistsError`` if it exists."""
        if self._scheme == "file":
            self._in_time(self.settings.call_timeout, link_new_file, path, data)
        elif self._scheme == "memory":
            with _MEMORY_LOCK:
                if self._call("exists", path):
                    raise FileExistsError(path)
                self._call("pipe_file", path, data)
        elif self._scheme in _CONDITIONAL_CREATE:
            self._call("pipe_file", path, data, mode="create")
        else:
            if self._call("exists", path):
                raise FileExistsError(path)
            self._call("pipe_file", path, data)
