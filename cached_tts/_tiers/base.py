"""What every shared tier does: the few verbs a cache and the command line use.

A shared tier holds entries for many machines: Redis, an object store, and
whatever comes next (a shared folder, a store with its own lease). Each one is
a module with a subclass of :class:`SharedTier`, in the spirit of Django's
cache backends: the cache walks a list of tiers and never branches on their
kinds.

The verbs come in two groups.

* Lookups (:meth:`~SharedTier.get`, :meth:`~SharedTier.put`,
  :meth:`~SharedTier.lease`) never raise and never stall longer than the
  timeouts of :class:`TierSettings`: a shared tier is an optimisation, never a
  dependency of a result. A failure is logged once, counted, and followed by a
  back-off during which the tier is skipped.
* Housekeeping (:meth:`~SharedTier.ping`, :meth:`~SharedTier.scan`,
  :meth:`~SharedTier.read`, :meth:`~SharedTier.delete`,
  :meth:`~SharedTier.delete_all`) raises the store's errors: a command asked
  to look at a tier must say when it cannot.

Entries are the very bytes of a disk entry, verified on every read exactly
like disk (checksum and key): a damaged or misplaced entry is never served.
No read takes more than :attr:`TierSettings.max_value_bytes` and one byte: a
value someone made larger is damage too, and never loaded whole.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Final, TypeAlias

from cached_tts._entries.entry import Entry
from cached_tts._entries.format import decode
from cached_tts._exceptions import DamagedEntryError
from cached_tts._forksafe import renew_after_fork
from cached_tts._keys.key import EntryKey
from cached_tts._tiers.checks import seconds, whole_number
from cached_tts._tiers.health import Backoff, Health
from cached_tts._tiers.stats import TierStats

__all__ = [
    "Found",
    "SharedTier",
    "StoredObject",
    "TierSettings",
    "TierStats",
    "size_problem",
]

logger = logging.getLogger("cached_tts")

# Any failure sets a shared tier aside at once (a timeout costs a call its
# read_timeout); the disk folder, by contrast, skips single failures.
_SHARED_BACKOFF: Final = Backoff(initial=5.0, maximum=60.0, failures=1)

#: A verified entry and the very bytes it was read from.
Found: TypeAlias = tuple[Entry, bytes]

# One entry is about 165 KB (a 10 s clip): 8 MiB leaves room for long clips
# and bounds what a hostile or broken store can make a worker read.
_MAX_VALUE_BYTES: Final = 8 * 1024 * 1024


def size_problem(data: bytes | bytearray, limit: int) -> str | None:
    """Why ``data`` read from a shared tier is too large to be an entry; ``None`` if it is not.

    Reads stop after ``limit + 1`` bytes, so ``data`` longer than ``limit``
    stands for a stored value of any larger size.

    >>> size_problem(b"x" * 8, limit=8) is None
    True
    >>> size_problem(b"x" * 9, limit=8)
    'it is over max_value_bytes (8 bytes), larger than any entry this cache writes'
    """
    if len(data) <= limit:
        return None
    return f"it is over max_value_bytes ({limit} bytes), larger than any entry this cache writes"


@dataclass(frozen=True)
class TierSettings:
    """Timeouts and back-off of every shared tier. Times are in seconds.

    ``backoff`` is the back-off policy of every shared tier: by default a
    shared tier is set aside at its first failure (``failures=1``: a timeout
    already cost that call its ``read_timeout``) and skipped for
    ``backoff.initial``, doubling up to ``backoff.maximum`` while it keeps
    failing. The disk folder has a policy of its own, not set here: it skips a
    single failure (one unreadable file, a full disk) and is set aside after
    3 in a row, for the same 5 s doubling up to 60 s.

    Every field is checked when the settings are built: times are finite
    numbers > 0, ``max_value_bytes`` a whole number >= 1, ``backoff`` a
    :class:`~cached_tts.Backoff`; a wrong one raises ``TypeError`` (another
    type) or ``ValueError`` (out of range) saying what the field accepts.

    >>> settings = TierSettings()
    >>> settings.connect_timeout, settings.read_timeout, settings.call_timeout
    (0.5, 1.0, 1.5)
    >>> TierSettings(backoff=Backoff(initial=1.0)).backoff.maximum
    60.0
    >>> TierSettings().max_value_bytes // 1024**2  # MiB
    8
    >>> TierSettings(read_timeout=0)
    Traceback (most recent call last):
    ...
    ValueError: TierSettings.read_timeout must be a finite number of seconds > 0, got 0
    """

    #: Connecting to the store, and each wait for its answer.
    connect_timeout: float = 0.5
    read_timeout: float = 1.0
    #: Setting up a client, once per process: it may look up credentials
    #: (an instance's or a container's metadata service).
    open_timeout: float = 10.0
    #: When a failing tier is skipped, and for how long.
    backoff: Backoff = _SHARED_BACKOFF
    #: How long a worker may prepare a voice before others stop waiting for it
    #: (tiers with a lease).
    lease_seconds: float = 120.0
    #: How often a waiting worker looks for the value another one prepares.
    poll_interval: float = 0.1
    #: The largest value a tier stores or reads. A read stops after one byte
    #: more, so a larger object (a hostile or broken writer's) costs a worker
    #: at most this much memory; it is damage, never served.
    max_value_bytes: int = _MAX_VALUE_BYTES

    def __post_init__(self) -> None:
        owner = type(self).__name__
        times = (
            "connect_timeout",
            "read_timeout",
            "open_timeout",
            "lease_seconds",
            "poll_interval",
        )
        # Frozen: each checked value (a float, an int) replaces the given one once, here.
        for name in times:
            object.__setattr__(self, name, seconds(owner, name, getattr(self, name)))
        if not isinstance(self.backoff, Backoff):
            raise TypeError(f"{owner}.backoff must be a cached_tts.Backoff, got {self.backoff!r}")
        size = whole_number(owner, "max_value_bytes", self.max_value_bytes, minimum=1, unit="bytes")
        object.__setattr__(self, "max_value_bytes", size)

    @property
    def call_timeout(self) -> float:
        """The most one call may take, retries included: a connect and a read."""
        return self.connect_timeout + self.read_timeout


@dataclass(frozen=True)
class StoredObject:
    """An entry as a tier lists it (not yet read or verified)."""

    #: The key digest it is stored under.
    digest: str
    size: int
    #: When the store last wrote it (seconds since the epoch), if it says.
    modified: float | None


class SharedTier(abc.ABC):
    """The verbs of a tier that many machines share.

    Subclasses implement fetching and storing bytes; this base verifies what
    is read, counts hits, and owns the tier's :class:`~cached_tts._tiers.health.Health`
    (its errors and back-off). ``name`` says where the tier is, for messages
    and stats (never with a password).
    """

    #: Whether :meth:`lease` gives fleet-wide single flight.
    leases: ClassVar[bool] = False

    def __init__(self, name: str, settings: TierSettings) -> None:
        self.name = name
        self.settings = settings
        self.health = Health(f"Cache tier {name}", settings.backoff)
        self._hits_lock = threading.Lock()
        renew_after_fork(self, _hits_lock=threading.Lock)
        self.hits = 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    # -- lookups: never raise ------------------------------------------------

    def get(self, key: EntryKey) -> Found | None:
        """The verified entry for ``key`` and its bytes; ``None`` if absent, damaged or down."""
        if not self.health.available():
            return None
        data = self._fetch(key.digest)
        if data is None:
            return None
        too_large = size_problem(data, self.settings.max_value_bytes)
        if too_large is not None:
            self._discard(key.digest, data, too_large)
            return None
        try:
            entry, _info = decode(data, key)
        except DamagedEntryError as exc:
            self._discard(key.digest, data, str(exc))
            return None
        with self._hits_lock:
            self.hits += 1
        return entry, data

    @abc.abstractmethod
    def put(self, key: EntryKey, data: bytes) -> None:
        """Store the encoded entry for ``key``; a lost race, a refusal or an outage is quiet.

        Entries over ``max_value_bytes`` are not stored (:meth:`fits` says so):
        no reader would take them.
        """

    def fits(self, key: EntryKey, data: bytes) -> bool:
        """Whether ``data`` is small enough to store; says so at debug level if not."""
        if len(data) <= self.settings.max_value_bytes:
            return True
        logger.debug(
            "Not storing %s in %s: %d bytes is over max_value_bytes",
            key.digest[:12],
            self.label,
            len(data),
        )
        return False

    @contextlib.contextmanager
    def lease(self, key: EntryKey) -> Iterator[Found | None]:  # noqa: ARG002 -- the verb's signature
        """Wait for the right to prepare ``key``, or for another worker's result.

        Yields the entry when another worker stored it meanwhile; ``None`` when
        the caller should prepare it. Without fleet-wide single flight
        (``leases`` false) it yields ``None`` at once.
        """
        yield None

    @property
    def label(self) -> str:
        """The tier in short, for messages ("checked in Redis", "in s3://voices/prod")."""
        return self.name

    @property
    def where(self) -> str:
        """Where the tier is, for messages ("cannot use Redis at redis://cache:6379/0")."""
        return self.name

    def describe(self) -> str:
        """Where the tier is and what part of it is ours, for the command line."""
        return self.where

    #: What housekeeping calls raise when the store fails (the command line reports them).
    store_errors: tuple[type[BaseException], ...] = (OSError,)

    def stats(self) -> TierStats:
        """The counters of this tier, for :meth:`ConditionalCache.stats`."""
        return TierStats(self.name, self.hits, self.errors)

    @property
    def errors(self) -> int:
        """Calls to this tier that failed or timed out, in all."""
        return self.health.errors

    def available(self) -> bool:
        """Whether the tier is in use now (it is skipped during a back-off)."""
        return self.health.available()

    def _failed(self, exc: BaseException) -> None:
        self.health.failed(exc)

    @abc.abstractmethod
    def _fetch(self, digest: str) -> bytes | None:
        """The stored bytes under ``digest``; ``None`` if absent or on failure (never raises).

        At most ``max_value_bytes + 1`` of them, read without downloading more:
        a longer value is damage, and the extra byte says it is one.
        """

    @abc.abstractmethod
    def _discard(self, digest: str, data: bytes, damage: str) -> None:
        """Deal with the damaged ``data`` read under ``digest`` (never raises)."""

    # -- housekeeping: raise the store's errors -------------------------------

    @abc.abstractmethod
    def ping(self) -> None:
        """Return if the store answers; raise its error if not."""

    @abc.abstractmethod
    def scan(self) -> Iterator[StoredObject]:
        """Every entry this tier holds (reads a listing only)."""

    @abc.abstractmethod
    def read(self, digest: str) -> bytes | None:
        """The stored bytes of the entry named ``digest``, unverified; ``None`` if absent.

        At most ``max_value_bytes + 1`` of them, as :meth:`_fetch` reads.
        """

    @abc.abstractmethod
    def delete(self, digest: str, data: bytes) -> bool:
        """Delete the entry named ``digest`` if it still holds ``data``; whether it did.

        Stores that cannot compare and delete in one step check first, then delete.
        ``data`` over ``max_value_bytes`` (a read that stopped early) stands for
        any value over the limit: never an entry, so never a good one.
        """

    @abc.abstractmethod
    def delete_all(self) -> int:
        """Delete every entry of this tier; how many."""

    @abc.abstractmethod
    def location(self, digest: str) -> str:
        """Where the entry named ``digest`` lives, for messages."""
