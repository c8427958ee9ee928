"""Which cache a model uses: its own, the one :func:`cached_tts.enable` chose, or the default.

Also the cache a model used last, which the notebook's ``%tts_cache`` shows:
kept here, in the wrapping layer, so that the hit path never imports the
notebook's module.

>>> from cached_tts import ConditionalCache
>>> mine = ConditionalCache(cache_dir=None, remote=None)
>>> set_fallback_cache(mine); fallback_cache() is mine
True
>>> set_fallback_cache(None); chosen_fallback_cache() is None
True
"""

from __future__ import annotations

import weakref
from typing import Any

from cached_tts._cache.cache import ConditionalCache, default_cache

__all__ = [
    "cache_in_use",
    "cache_property",
    "chosen_fallback_cache",
    "fallback_cache",
    "note_cache_in_use",
    "set_fallback_cache",
]

_CACHE_ATTR = "_cached_tts_cache"

_fallback: list[ConditionalCache] = []


def fallback_cache() -> ConditionalCache:
    """The cache of models given none: the one :func:`cached_tts.enable` set, or the default."""
    return _fallback[0] if _fallback else default_cache()


def chosen_fallback_cache() -> ConditionalCache | None:
    """The cache that :func:`set_fallback_cache` chose, if any."""
    return _fallback[0] if _fallback else None


def set_fallback_cache(cache: ConditionalCache | None) -> None:
    """Make ``cache`` the cache of models given none; ``None`` restores the default."""
    if cache is not None and not isinstance(cache, ConditionalCache):
        raise TypeError(
            f"cache must be a cached_tts.ConditionalCache or None, not {type(cache).__name__}"
        )
    _fallback[:] = [] if cache is None else [cache]


def cache_property() -> property:
    """The ``cache`` property of a cached class: its own cache, else :func:`fallback_cache`."""

    def get(self: Any) -> ConditionalCache:
        return self.__dict__.get(_CACHE_ATTR) or fallback_cache()

    def set_(self: Any, value: ConditionalCache | None) -> None:
        if value is not None and not isinstance(value, ConditionalCache):
            raise TypeError(
                f"cache must be a cached_tts.ConditionalCache or None, not {type(value).__name__}"
            )
        self.__dict__[_CACHE_ATTR] = value

    return property(get, set_, doc="The ConditionalCache this model uses (assignable).")


# -- the cache used last, for %tts_cache --------------------------------------

_last_used: list[weakref.ref[ConditionalCache]] = []


def note_cache_in_use(cache: ConditionalCache) -> None:
    """Remember ``cache`` as the one a cached model used last (weakly)."""
    if not _last_used or _last_used[0]() is not cache:
        _last_used[:] = [weakref.ref(cache)]


def cache_in_use() -> ConditionalCache:
    """The cache the session's models use: ``enable()``'s, the last one used, or the default."""
    chosen = chosen_fallback_cache()
    if chosen is not None:
        return chosen
    last = _last_used[0]() if _last_used else None
    return last if last is not None else fallback_cache()
