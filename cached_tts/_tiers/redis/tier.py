"""The remote tier: entries shared by a fleet through one Redis server.

Keys (``prefix`` defaults to ``cached-tts:``)::

    <prefix>entry:<key digest>   the entry: the very bytes of a disk entry
    <prefix>lease:<key digest>   a random token while one worker prepares it

Values are verified on read exactly like disk entries (checksum and key), so a
damaged or misplaced value is deleted and recomputed, never served; nothing is
ever unpickled. A lease (``SET NX PX``) lets one worker of the fleet prepare a
voice while the others poll for its value; it is released on success and on
failure (only by its owner), and expires on its own if the worker dies.

A key of another type (a list, a hash...) under an entry's name is damage too,
not an outage: it is deleted while it still is one, and the good entry written.
So is a value over ``max_value_bytes``: a read takes at most one byte more
(``GETRANGE`` in a script, one round trip), never the whole of a value
someone made huge.

Redis is an optimisation, never a dependency of a result: any error or timeout
is logged once, counted, and followed by a back-off during which the tier is
skipped; service resumes when a retry succeeds.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import fields
from typing import TYPE_CHECKING, ClassVar, Final, TypeVar

from cached_tts._keys.key import EntryKey
from cached_tts._tiers.base import Found, SharedTier, StoredObject, TierSettings
from cached_tts._tiers.redis.settings import RemoteSettings, redacted

if TYPE_CHECKING:
    import redis

__all__ = ["REMOTE_ENV", "RemoteTier", "open_remote"]

logger = logging.getLogger("cached_tts")

#: The environment variable that names a Redis server when ``remote`` is not given.
REMOTE_ENV: Final = "CACHED_TTS_REMOTE"

_INSTALL_HINT = "pip install 'cached-tts[redis]'"

# Deletes a key only while it still holds the given value: a lease its owner
# holds, or the damaged bytes a reader found (not a good value written since).
_DELETE_IF_EQUAL = """
if redis.call("get", KEYS[1]) == ARGV[1] then
    return redis.call("del", KEYS[1])
end
return 0
"""

# Deletes an entry's key only while it holds damage: something other than a
# string (a list, a hash...), a string over the size limit (ARGV[2]), or the
# very bytes a reader found damaged (ARGV[1]); never a good entry written
# since. TYPE answers a status reply, which Lua sees as a table with "ok".
_DELETE_DAMAGE = """
local kind = redis.call("type", KEYS[1]).ok
if kind == "none" then
    return 0
end
if kind ~= "string"
    or redis.call("strlen", KEYS[1]) > tonumber(ARGV[2])
    or redis.call("get", KEYS[1]) == ARGV[1] then
    return redis.call("del", KEYS[1])
end
return 0
"""

# Reads an entry's value, at most ARGV[1] bytes of it (the size limit and one
# byte more, which marks a value over the limit), in one round trip: a GET of
# a value someone made huge would load all of it into the reader. Refreshes
# the TTL (ARGV[2] seconds, if not empty) of a value within the limit, as
# GETEX would. Answers nil for no key, and -1 for a key of another type.
_READ_BOUNDED = """
local kind = redis.call("type", KEYS[1]).ok
if kind == "none" then
    return false
end
if kind ~= "string" then
    return -1
end
local most = tonumber(ARGV[1])
if ARGV[2] ~= "" and redis.call("strlen", KEYS[1]) < most then
    redis.call("expire", KEYS[1], ARGV[2])
end
return redis.call("getrange", KEYS[1], 0, most - 1)
"""

# What a read of a key holding a list, hash... gives instead of its value.
_WRONG_TYPE: Final = object()


def _is_wrong_type(exc: Exception) -> bool:
    return str(exc).startswith("WRONGTYPE")


_T = TypeVar("_T")

# Keys a SCAN call looks at, and keys deleted per UNLINK.
_SCAN_COUNT = 500


def _glob_escape(text: str) -> str:
    r"""``text`` matched literally in a Redis glob pattern.

    >>> _glob_escape("team[1]:*")
    'team\\[1\\]:\\*'
    """
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)


def _text(name: bytes | str) -> str:
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else name


def open_remote(remote: str | redis.Redis, settings: TierSettings | None = None) -> RemoteTier:
    """A :class:`RemoteTier` on a ``redis://`` or ``rediss://`` URL, or a client.

    A URL may carry credentials and a database (``rediss://user:pw@host:6380/2``);
    ``rediss`` means TLS. A client you pass is used as it is (its own timeouts),
    and must return bytes (``decode_responses=False``). ``settings`` may be
    plain :class:`~cached_tts._tiers.base.TierSettings`: Redis's own fields then
    keep their defaults.
    """
    if not isinstance(settings, RemoteSettings):
        shared = (
            {f.name: getattr(settings, f.name) for f in fields(TierSettings)} if settings else {}
        )
        settings = RemoteSettings(**shared)
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as exc:
        raise ImportError(f"A remote cache needs redis-py: {_INSTALL_HINT}") from exc
    if isinstance(remote, str):
        client = redis.Redis.from_url(
            remote,
            socket_connect_timeout=settings.connect_timeout,
            socket_timeout=settings.read_timeout,
            # One attempt per call: the tier's own back-off handles failures.
            retry=Retry(NoBackoff(), 0),
        )
    elif isinstance(remote, redis.Redis):
        client = remote
    else:
        raise TypeError(f"remote must be a redis:// URL or a redis.Redis, got {remote!r}")
    if client.get_connection_kwargs().get("decode_responses"):
        raise ValueError(
            "The Redis client must return bytes: create it with decode_responses=False"
        )
    name = redacted(remote) if isinstance(remote, str) else _client_name(client)
    return RemoteTier(client, settings, name=name)


def _client_name(client: redis.Redis) -> str:
    """Where a client given as an object points, for messages (no password)."""
    kwargs = client.get_connection_kwargs()
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


class RemoteTier(SharedTier):
    """Verified entries in Redis, with fleet-wide leases and a back-off on failure."""

    leases: ClassVar[bool] = True
    settings: RemoteSettings

    def __init__(self, client: redis.Redis, settings: RemoteSettings, *, name: str) -> None:
        import redis as redis_module

        super().__init__(name, settings)
        self._client = client
        self._delete_if_equal = client.register_script(_DELETE_IF_EQUAL)
        self._delete_damage = client.register_script(_DELETE_DAMAGE)
        self._read_bounded = client.register_script(_READ_BOUNDED)
        self._failures: tuple[type[BaseException], ...] = (redis_module.RedisError, OSError)
        self.store_errors = self._failures

    def __repr__(self) -> str:
        return f"<RemoteTier {self.name} prefix={self.settings.prefix!r}>"

    @property
    def label(self) -> str:
        """``Redis``, for messages."""
        return "Redis"

    @property
    def where(self) -> str:
        """``Redis at <url>``, for messages."""
        return f"Redis at {self.name}"

    def describe(self) -> str:
        """Where the tier is, and its key prefix."""
        return f"{self.where} (prefix {self.settings.prefix!r})"

    # -- entries ------------------------------------------------------------

    def _fetch(self, digest: str) -> bytes | None:
        name = self.location(digest)
        data = self._call(lambda c: self._read(c, name, ttl=self.settings.ttl_seconds))
        if data is _WRONG_TYPE:
            # Damage, not an outage: Redis answered. Drop it so the good entry replaces it.
            logger.warning(
                "Removing remote entry %s: it is not a string value; it will be recomputed", name
            )
            self._call(lambda c: self._remove_damage(c, name, b""))
            return None
        return data if isinstance(data, bytes) else None

    def _discard(self, digest: str, data: bytes, damage: str) -> None:
        name = self.location(digest)
        logger.warning("Removing damaged remote entry %s (%s); it will be recomputed", name, damage)
        self._call(lambda c: self._remove_damage(c, name, data))

    def _read(self, client: redis.Redis, name: str, *, ttl: int | None) -> object:
        """The value under ``name``, at most ``max_value_bytes + 1`` bytes of it.

        ``None`` if there is none, ``_WRONG_TYPE`` if it is no string. A TTL
        given is refreshed (on a value within the limit).
        """
        most = self.settings.max_value_bytes + 1
        args: list[int | str] = [most, "" if ttl is None else ttl]
        data = self._read_bounded(keys=[name], args=args, client=client)
        return _WRONG_TYPE if data == -1 else data

    def _remove_damage(self, client: redis.Redis, name: str, data: bytes) -> bool:
        """Delete ``name`` while it holds ``data``, another type, or a value over the limit."""
        args: list[bytes | int] = [data, self.settings.max_value_bytes]
        return bool(self._delete_damage(keys=[name], args=args, client=client))

    def put(self, key: EntryKey, data: bytes) -> None:
        """Store an encoded entry for the fleet, unless it is too large or Redis is down."""
        if not self.available() or not self.fits(key, data):
            return
        name, ttl = self.location(key.digest), self.settings.ttl_seconds
        self._call(lambda c: c.set(name, data, ex=ttl))

    # -- fleet-wide single flight -------------------------------------------

    @contextlib.contextmanager
    def lease(self, key: EntryKey) -> Iterator[Found | None]:
        """Wait for the right to prepare ``key``, or for another worker's result.

        Yields the entry and its bytes when another worker stored it meanwhile; ``None`` when
        the caller should prepare it (it holds the lease, the wait ran out, or
        Redis is down). A lease held here is released on the way out.
        """
        token = secrets.token_hex(16)
        name = f"{self.settings.prefix}lease:{key.digest}"
        lease_ms = max(1, int(self.settings.lease_seconds * 1000))
        deadline = time.monotonic() + self.settings.lease_seconds
        held = False
        try:
            while True:
                held = self._call(lambda c: c.set(name, token, nx=True, px=lease_ms)) is True
                # The holder may have stored the entry just before releasing.
                found = self.get(key)
                if found is not None or held or not self.available():
                    yield found
                    return
                if time.monotonic() >= deadline:
                    logger.warning(
                        "Waited %.0f s for another worker preparing %s; preparing it here too",
                        self.settings.lease_seconds,
                        key.content[:12],
                    )
                    yield None
                    return
                time.sleep(self.settings.poll_interval)
        finally:
            if held:
                self._release(name, token)

    def _release(self, name: str, token: str) -> None:
        """Release a lease held here, even during a back-off.

        The back-off may have begun while this worker prepared (a failed
        ``put``); skipping the release then would leave the others waiting
        ``lease_seconds`` for a worker that is done. If Redis does not answer,
        the lease expires ``lease_seconds`` after it was taken.
        """
        try:
            self._delete_if_equal(keys=[name], args=[token], client=self._client)
        except self._failures as exc:
            self._failed(exc)

    # -- housekeeping (the cached-tts command) --------------------------------
    # Unlike get, put and lease, these raise Redis's errors (redis.RedisError,
    # OSError): a command asked to look at Redis must say when it cannot.

    def ping(self) -> None:
        """Return if Redis answers; raise its error if not."""
        self._client.ping()

    def scan(self) -> Iterator[StoredObject]:
        """Every entry under this prefix, with its size (reads a listing only)."""
        entry_prefix = self.location("")
        pattern = _glob_escape(entry_prefix) + "*"
        cursor = 0
        while True:
            cursor, names = self._client.scan(cursor, match=pattern, count=_SCAN_COUNT)
            sizes = self._sizes(names)
            for name, size in zip(names, sizes, strict=True):
                if size is not None:
                    yield StoredObject(_text(name)[len(entry_prefix) :], size, None)
            if not cursor:
                return

    def read(self, digest: str) -> bytes | None:
        """The stored bytes of the entry named ``digest``, unverified; ``None`` if absent.

        At most ``max_value_bytes + 1`` bytes: a longer value reads as its
        start, which every check calls damage. A value of another type (a
        list, a hash...) reads as ``b""``: no entry, damage too. :meth:`delete`
        removes both.
        """
        data = self._read(self._client, self.location(digest), ttl=None)
        if data is _WRONG_TYPE:
            return b""
        return data if isinstance(data, bytes) else None

    def delete(self, digest: str, data: bytes) -> bool:
        """Delete the entry named ``digest`` if it still holds ``data``; whether it did.

        A value of another type, or one over ``max_value_bytes``, is damage
        whatever ``data`` is, and is deleted too.
        """
        return self._remove_damage(self._client, self.location(digest), data)

    def delete_all(self) -> int:
        """Delete every entry under this prefix (leases are left to expire); how many."""
        names = [self.location(stored.digest) for stored in self.scan()]
        removed = 0
        for start in range(0, len(names), _SCAN_COUNT):
            removed += int(self._client.unlink(*names[start : start + _SCAN_COUNT]))
        return removed

    def location(self, digest: str) -> str:
        """The Redis key of the entry whose key digest is ``digest``."""
        return f"{self.settings.prefix}entry:{digest}"

    def _sizes(self, names: list[bytes | str]) -> list[int | None]:
        """STRLEN of each name, in one round trip.

        ``None`` for a name removed since the scan listed it; 0 for a value of
        another type, which is listed, so that ``verify --fix`` can remove it.
        """
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            pipe.strlen(name)
        sizes: list[int | None] = []
        for size in pipe.execute(raise_on_error=False):
            if isinstance(size, Exception):
                if not _is_wrong_type(size):
                    raise size
                sizes.append(0)
            else:
                sizes.append(int(size) or None)
        return sizes

    # -- calls ----------------------------------------------------------------

    def _call(self, command: Callable[[redis.Redis], _T]) -> _T | None:
        if not self.available():
            return None
        try:
            result = command(self._client)
        except self._failures as exc:
            self._failed(exc)
            return None
        self.health.succeeded()
        return result
