"""Opening the shared tiers a cache is given: Redis servers and object stores, in order.

``remote=`` (and ``$CACHED_TTS_REMOTE``, and the command line's ``--remote``)
names one tier or several: a Redis URL or client, an fsspec URL (``s3://``,
``gs://``, ``az://``, ``abfs://``, ``file://``, ``memory://``), a
:class:`~cached_tts._tiers.base.SharedTier` built by hand, or a list of those. A
string may hold several URLs separated by commas. The cache looks them up in
that order, after memory and disk.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from cached_tts._forksafe import renew_after_fork
from cached_tts._tiers.base import SharedTier, TierSettings
from cached_tts._tiers.objectstore.opening import is_object_store_url, open_object_store
from cached_tts._tiers.redis.settings import is_redis_url, redacted
from cached_tts._tiers.redis.tier import REMOTE_ENV, open_remote

if TYPE_CHECKING:
    import redis

__all__ = ["Remote", "open_env_tiers", "open_given_tiers", "open_tiers", "split_urls"]

logger = logging.getLogger("cached_tts")

#: One shared tier as a cache is given it.
Remote: TypeAlias = "str | redis.Redis | SharedTier"


class _RemoteFromEnv:
    def __repr__(self) -> str:
        return f"<${REMOTE_ENV} if set>"


#: ``remote`` left out: the tiers ``$CACHED_TTS_REMOTE`` names, looked up when a cache is made.
_REMOTE_FROM_ENV: Final = _RemoteFromEnv()


def split_urls(text: str) -> list[str]:
    """The URLs in a comma-separated list, as ``$CACHED_TTS_REMOTE`` and ``--remote`` hold them.

    >>> split_urls("redis://cache:6379/0, s3://voices/prod,")
    ['redis://cache:6379/0', 's3://voices/prod']
    """
    return [url.strip() for url in text.split(",") if url.strip()]


def open_tiers(
    remote: Remote | Sequence[Remote] | None,
    settings: TierSettings | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[SharedTier, ...]:
    """The shared tiers ``remote`` names, in lookup order.

    ``settings`` applies to every tier (Redis's own fields when it is a
    :class:`~cached_tts.RemoteSettings`); ``options`` go to every object
    store's fsspec filesystem.

    >>> [tier.name for tier in open_tiers("memory://voices/a, memory://voices/b")]
    ['memory://voices/a', 'memory://voices/b']
    >>> open_tiers(None)
    ()
    """
    if remote is None:
        return ()
    items = [remote] if isinstance(remote, str | SharedTier) else remote
    if not isinstance(items, Sequence):  # a Redis client
        items = [items]
    tiers: list[SharedTier] = []
    for item in items:
        if isinstance(item, SharedTier):
            tiers.append(item)
        elif isinstance(item, str):
            tiers += [_open_url(url, settings, options) for url in split_urls(item)]
        else:
            tiers.append(open_remote(item, settings))
    return tuple(tiers)


def _open_url(
    url: str, settings: TierSettings | None, options: Mapping[str, Any] | None
) -> SharedTier:
    if is_redis_url(url):
        return open_remote(url, settings)
    if is_object_store_url(url):
        return open_object_store(url, settings, options=options)
    raise ValueError(
        f"remote {redacted(url)!r} is neither a Redis URL (redis://, rediss://, unix://) nor "
        "an object store's (s3://, gs://, az://, abfs://, file://, memory://): "
        "give one of those, or several separated by commas"
    )


def open_given_tiers(
    remote: Remote | Sequence[Remote] | _RemoteFromEnv | None,
    settings: TierSettings | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[SharedTier, ...]:
    """The shared tiers of a cache given ``remote``; left out, those ``$CACHED_TTS_REMOTE`` names.

    The environment's tiers never raise here (:func:`open_env_tiers`); the
    ones given do (:func:`open_tiers`).

    >>> open_given_tiers(None)
    ()
    >>> [tier.name for tier in open_given_tiers("memory://voices/given")]
    ['memory://voices/given']
    """
    if isinstance(remote, _RemoteFromEnv):
        return open_env_tiers(os.environ.get(REMOTE_ENV, ""), settings, options)
    return open_tiers(remote, settings, options)


# The URLs of $CACHED_TTS_REMOTE already warned about in this process.
_warned: set[str] = set()
_warned_lock = threading.Lock()
renew_after_fork(sys.modules[__name__], _warned_lock=threading.Lock)


def open_env_tiers(
    text: str, settings: TierSettings | None = None, options: Mapping[str, Any] | None = None
) -> tuple[SharedTier, ...]:
    """The shared tiers ``$CACHED_TTS_REMOTE`` names (``text``), without those that cannot open.

    The environment is not the program's own argument: it reaches every
    process of a tree (``cached-tts run``), including programs that never
    asked for a cache. So a URL there that cannot be opened (a typo, a missing
    extra such as s3fs or redis-py) never fails a lookup: it is skipped, with
    one warning per process that names the variable and the fix, and the
    cache runs on with memory, disk and the tiers that did open. A ``remote=``
    given in code raises instead (:func:`open_tiers`).

    >>> [tier.name for tier in open_env_tiers("memory://voices/env, redis//typo")]
    ['memory://voices/env']
    """
    tiers: list[SharedTier] = []
    for url in split_urls(text):
        try:
            tiers.append(_open_url(url, settings, options))
        except Exception as exc:  # noqa: BLE001 -- any failure to open means: skip the tier
            _warn_once(url, exc)
    return tuple(tiers)


def _warn_once(url: str, exc: Exception) -> None:
    with _warned_lock:
        if url in _warned:
            return
        _warned.add(url)
    reason = str(exc).rstrip(".") or type(exc).__name__
    logger.warning(
        "Ignoring %r in $%s: %s. Caching goes on without it (memory and disk still work); "
        "fix the URL or remove it from $%s",
        redacted(url),
        REMOTE_ENV,
        reason,
        REMOTE_ENV,
    )
