"""The fleet's Redis tier as the cache commands see it (``--remote``).

The commands open their own :class:`RemoteTier` with patient timeouts and let
Redis's errors through as one :class:`CommandError` line: a command asked to
look at Redis must say when it cannot. The voice commands only warn, because
their cache goes on from memory and disk by design.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cached_tts._cli._options import CommandError
from cached_tts._format import EntryInfo, check
from cached_tts._remote import RemoteSettings, RemoteTier, open_remote, redacted

__all__ = ["RedisValue", "fleet_redis", "maybe_redis", "read_values", "warn_if_unreachable"]

# A command can wait longer than a lookup serving a request.
_SETTINGS = RemoteSettings(connect_timeout=2.0, read_timeout=10.0)


@dataclass(frozen=True)
class RedisValue:
    """One entry in Redis, read and checked: ``info`` or the reason it is damaged."""

    digest: str
    name: str
    data: bytes
    info: EntryInfo | None
    damage: str | None


@contextlib.contextmanager
def fleet_redis(url: str) -> Iterator[RemoteTier]:
    """The tier at ``url``, known to answer; its failures become a :class:`CommandError`."""
    try:
        tier = open_remote(url, _SETTINGS)
    except ValueError as exc:
        raise CommandError(f"--remote {redacted(url)}: {exc}") from exc
    import redis

    try:
        tier.ping()
        yield tier
    except redis.RedisError as exc:
        reason = str(exc).rstrip(".")  # redis-py ends its messages with one
        raise CommandError(f"cannot use Redis at {redacted(url)}: {reason}") from exc


def maybe_redis(url: str | None) -> contextlib.AbstractContextManager[RemoteTier | None]:
    """:func:`fleet_redis` when a URL is given, else ``None``."""
    if url is None:
        return contextlib.nullcontext()
    return fleet_redis(url)


def warn_if_unreachable(url: str) -> None:
    """One warning line if Redis at ``url`` does not answer; the cache goes on without it."""
    try:
        with fleet_redis(url):
            pass
    except CommandError as exc:
        print(
            f"cached-tts: warning: {exc}; going on with memory and disk only",
            file=sys.stderr,
        )


def read_values(tier: RemoteTier, digests: Iterable[str]) -> Iterator[RedisValue]:
    """Each named entry, verified (checksum, and key against its name); absent ones skipped."""
    for digest in digests:
        data = tier.read_value(digest)
        if data is not None:
            yield check_value(tier, digest, data)


def check_value(tier: RemoteTier, digest: str, data: bytes) -> RedisValue:
    """``data`` read from the entry named ``digest``, verified."""
    return RedisValue(digest, tier.entry_name(digest), data, *check(data, digest))


def describe(tier: RemoteTier, url: str) -> str:
    """Where the tier is, for messages: its URL without password, and its prefix."""
    return f"Redis at {redacted(url)} (prefix {tier.settings.prefix!r})"
