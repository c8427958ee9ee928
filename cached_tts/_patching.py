"""Caching for code that never imports cached-tts: chatterbox's classes, patched in place.

:func:`enable` wraps chatterbox's own model classes with :func:`~cached_tts._wrappers.install`,
so every instance, made before or after, serves its voice preparations from a
cache; :func:`disable` puts back exactly what the classes held before.

>>> from chatterbox.tts import ChatterboxTTS
>>> original = ChatterboxTTS.__dict__["prepare_conditionals"]
>>> with enabled(cache=ConditionalCache(cache_dir=None)):
...     ChatterboxTTS.__dict__["prepare_conditionals"] is original
False
>>> ChatterboxTTS.__dict__["prepare_conditionals"] is original
True
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cached_tts._cache import ConditionalCache
from cached_tts._disable_switch import DISABLE_ENV
from cached_tts._forksafe import renew_after_fork
from cached_tts._wrappers import chosen_fallback_cache, install, set_fallback_cache

__all__ = ["disable", "enable", "enabled", "is_enabled", "patchable_classes"]

logger = logging.getLogger("cached_tts")

# Where each model class lives; a release may lack some of them.
_TARGETS = (
    ("chatterbox.tts", "ChatterboxTTS"),
    ("chatterbox.mtl_tts", "ChatterboxMultilingualTTS"),
    ("chatterbox.tts_turbo", "ChatterboxTurboTTS"),
    ("chatterbox.vc", "ChatterboxVC"),
)

# Each patched class, with what its __dict__ held before (None: the name was absent).
_patched: dict[type, dict[str, Any]] = {}
_lock = threading.Lock()
renew_after_fork(sys.modules[__name__], _lock=threading.Lock)


def patchable_classes() -> list[type]:
    """The chatterbox model classes that the installed release has.

    >>> [cls.__name__ for cls in patchable_classes()][:1]
    ['ChatterboxTTS']
    """
    found = []
    for module_name, name in _TARGETS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        cls = getattr(module, name, None)
        if isinstance(cls, type):
            found.append(cls)
    return found


def is_enabled() -> bool:
    """Whether chatterbox's classes are patched now.

    >>> is_enabled()
    False
    """
    return bool(_patched)


def enable(cache: ConditionalCache | None = None) -> None:
    """Cache the voice preparations of every chatterbox model, without code changes.

    Patches ``ChatterboxTTS``, ``ChatterboxMultilingualTTS``,
    ``ChatterboxTurboTTS`` and ``ChatterboxVC`` in place (the names that the
    ``chatterbox`` package re-exports are the same classes). Models that have
    no cache of their own use ``cache``, by default
    :func:`cached_tts.default_cache`. Enabling again only changes that cache.
    With ``CACHED_TTS_DISABLE=1`` in the environment it does nothing.

    >>> enable(cache=ConditionalCache(cache_dir=None))
    >>> is_enabled()
    True
    >>> disable()
    """
    if os.environ.get(DISABLE_ENV) == "1":
        logger.info("%s=1: leaving chatterbox's classes as they are", DISABLE_ENV)
        return
    # The Cached... subclasses wrap what their bases hold when they are made:
    # made now, they wrap the originals, so that disable() leaves them whole.
    importlib.import_module("cached_tts._models")
    with _lock:
        set_fallback_cache(cache)
        for cls in patchable_classes():
            if cls not in _patched:
                _patched[cls] = install(cls)
                logger.debug("Patched %s.%s", cls.__module__, cls.__qualname__)


def disable() -> None:
    """Give chatterbox's classes back exactly what they held before :func:`enable`.

    Doing it when caching is not enabled is harmless.

    >>> disable()
    >>> is_enabled()
    False
    """
    with _lock:
        while _patched:
            cls, saved = _patched.popitem()
            for name, value in saved.items():
                if value is None:
                    delattr(cls, name)
                else:
                    setattr(cls, name, value)
        set_fallback_cache(None)


@contextmanager
def enabled(cache: ConditionalCache | None = None) -> Iterator[None]:
    """:func:`enable` for the ``with`` block, then the state from before.

    >>> with enabled(cache=ConditionalCache(cache_dir=None)):
    ...     is_enabled()
    True
    >>> is_enabled()
    False
    """
    was_enabled = is_enabled()
    previous = chosen_fallback_cache()
    enable(cache)
    try:
        yield
    finally:
        if was_enabled:
            set_fallback_cache(previous)
        else:
            disable()
