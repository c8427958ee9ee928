"""The fleet's shared tiers as the cache commands see them (``--remote``).

``--remote`` names one or several tiers, separated by commas: Redis URLs and
object-store URLs (``s3://bucket/prefix``...). The commands open their own
tiers with patient timeouts and let the stores' errors through as one
:class:`CommandError` line: a command asked to look at a tier must say when it
cannot. The voice commands only warn, because their cache goes on from memory
and disk by design.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cached_tts._cli.options import CommandError
from cached_tts._entries.format import EntryInfo, check

if TYPE_CHECKING:
    from cached_tts._tiers.base import SharedTier
    from cached_tts._tiers.redis.settings import RemoteSettings

__all__ = ["StoredValue", "fleet_tiers", "read_values", "warn_if_unreachable"]


@dataclass(frozen=True)
class StoredValue:
    """One entry in a shared tier, read and checked: ``info`` or the reason it is damaged."""

    digest: str
    name: str
    data: bytes
    info: EntryInfo | None
    damage: str | None


@contextlib.contextmanager
def fleet_tiers(urls: str | None) -> Iterator[list[SharedTier]]:
    """The tiers ``urls`` names (comma-separated), each known to answer; ``[]`` for none.

    A store's failure, while opening or later in the block, becomes a
    :class:`CommandError` naming the tier.
    """
    from cached_tts._tiers.redis.settings import redacted
    from cached_tts._tiers.shared import open_tiers, split_urls

    if urls is None:
        yield []
        return
    tiers: list[SharedTier] = []
    for url in split_urls(urls):
        try:
            tiers.extend(open_tiers(url, command_settings()))
        except (ValueError, ImportError) as exc:
            raise CommandError(f"--remote {redacted(url)}: {exc}") from exc
    for tier in tiers:
        try:
            tier.ping()
        except tier.store_errors as exc:
            raise _unusable(tier, exc) from exc
    try:
        yield tiers
    except CommandError:
        raise
    except Exception as exc:
        # Which tier failed mid-command: the first whose store raises this kind of error.
        failing = next((t for t in tiers if isinstance(exc, t.store_errors)), None)
        if failing is None:
            raise
        raise _unusable(failing, exc) from exc


def command_settings() -> RemoteSettings:
    """The settings of the tiers a command opens.

    A command can wait longer than a lookup serving a request. It reads no
    more of a value than a lookup does (the default ``max_value_bytes``), and
    calls a larger one damage, as a lookup would.
    """
    from cached_tts._tiers.redis.settings import RemoteSettings

    return RemoteSettings(connect_timeout=2.0, read_timeout=10.0)


def _unusable(tier: SharedTier, exc: BaseException) -> CommandError:
    reason = str(exc).rstrip(".")  # redis-py ends its messages with one
    return CommandError(f"cannot use {tier.where}: {reason}")


def warn_if_unreachable(urls: str) -> None:
    """One warning line per tier in ``urls`` that does not answer; the cache goes on without it."""
    from cached_tts._tiers.shared import split_urls

    for url in split_urls(urls):
        try:
            with fleet_tiers(url):
                pass
        except CommandError as exc:
            print(
                f"cached-tts: warning: {exc}; going on without it",
                file=sys.stderr,
            )


def read_values(tier: SharedTier, digests: Iterable[str]) -> Iterator[StoredValue]:
    """Each named entry, verified (checksum, and key against its name); absent ones skipped."""
    for digest in digests:
        data = tier.read(digest)
        if data is not None:
            yield check_value(tier, digest, data)


def check_value(tier: SharedTier, digest: str, data: bytes) -> StoredValue:
    """``data`` read from the entry named ``digest``, verified."""
    from cached_tts._tiers.base import size_problem

    name = tier.location(digest)
    if not data:  # what a tier reads for an empty value, or a Redis list, hash...
        return StoredValue(digest, name, data, None, _NO_ENTRY)
    too_large = size_problem(data, tier.settings.max_value_bytes)
    if too_large is not None:  # a read that stopped early: only the start of the value
        return StoredValue(digest, name, data, None, too_large)
    return StoredValue(digest, name, data, *check(data, digest))


_NO_ENTRY = "it holds no entry (an empty value, or a Redis list, hash or set)"
