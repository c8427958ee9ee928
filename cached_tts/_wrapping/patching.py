"""Caching for code that never imports cached-tts: chatterbox's classes, patched on import.

:func:`enable` registers wrapt post-import hooks on chatterbox's four model
modules: each class is patched with :func:`~cached_tts._wrapping.wrappers.install` when
its module is imported, and at once if it already is. So every instance, made
before or after, serves its voice preparations from a cache, and a program that
never imports chatterbox pays nothing: :func:`enable` itself imports neither
chatterbox nor torch. :func:`disable` puts back exactly what the classes held
before, and makes the hooks still waiting for their module do nothing.

>>> from chatterbox.tts import ChatterboxTTS
>>> from cached_tts import ConditionalCache
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
from types import ModuleType
from typing import TYPE_CHECKING, Any

from cached_tts._forksafe import renew_after_fork
from cached_tts._wrapping.disable_switch import DISABLE_ENV

if TYPE_CHECKING:
    from cached_tts._cache.cache import ConditionalCache

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
# Whether enable() is in force; the hooks read it, since wrapt cannot unregister one.
_active = False
# The cache enable() chose, handed to the wrappers once they are imported.
_chosen: ConditionalCache | None = None
# Modules whose hook is registered and has not fired yet (wrapt keeps a hook once).
_waiting: set[str] = set()
_lock = threading.RLock()
# Set while a hook imports cached_tts._wrapping.models, whose imports fire the other hooks.
_in_hook = threading.local()
renew_after_fork(sys.modules[__name__], _lock=threading.RLock)


def patchable_classes() -> list[type]:
    """The chatterbox model classes that the installed release has (imports them).

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
    """Whether :func:`enable` is in force (classes imported later get patched too).

    >>> is_enabled()
    False
    """
    return _active


def enable(cache: ConditionalCache | None = None) -> None:
    """Cache the voice preparations of every chatterbox model, without code changes.

    Patches ``ChatterboxTTS``, ``ChatterboxMultilingualTTS``,
    ``ChatterboxTurboTTS`` and ``ChatterboxVC`` in place (the names that the
    ``chatterbox`` package re-exports are the same classes): those already
    imported at once, the others when the program imports them. It imports
    neither chatterbox nor torch itself. Models that have no cache of their own
    use ``cache``, by default :func:`cached_tts.default_cache`. Enabling again
    only changes that cache. With ``CACHED_TTS_DISABLE=1`` in the environment
    it does nothing.

    >>> from cached_tts import ConditionalCache
    >>> enable(cache=ConditionalCache(cache_dir=None))
    >>> is_enabled()
    True
    >>> disable()
    """
    global _active, _chosen
    if os.environ.get(DISABLE_ENV) == "1":
        logger.info("%s=1: leaving chatterbox's classes as they are", DISABLE_ENV)
        return
    if cache is not None:
        _check_cache(cache)
    with _lock:
        _active, _chosen = True, cache
        if "cached_tts._wrapping.wrappers" in sys.modules:
            _set_fallback_cache(cache)
        waiting = [name for name, _ in _TARGETS if name not in _waiting]
        _waiting.update(waiting)
    import wrapt

    # Outside the lock: wrapt calls the hook at once for a module already imported.
    for module_name in waiting:
        wrapt.register_post_import_hook(_on_import, module_name)


def _check_cache(cache: object) -> None:
    from cached_tts._cache.cache import ConditionalCache

    if not isinstance(cache, ConditionalCache):
        raise TypeError(
            f"cache must be a cached_tts.ConditionalCache or None, not {type(cache).__name__}"
        )


def _set_fallback_cache(cache: ConditionalCache | None) -> None:
    from cached_tts._wrapping.cache_choice import set_fallback_cache

    set_fallback_cache(cache)


def _on_import(module: ModuleType) -> None:
    """Wrapt's post-import hook: patch what is imported, and never fail the import."""
    with _lock:
        _waiting.discard(module.__name__)
    if not _active or os.environ.get(DISABLE_ENV) == "1" or getattr(_in_hook, "busy", False):
        # A nested hook: the outer one patches every imported class once its import is done.
        return
    try:
        _in_hook.busy = True
        try:
            # The Cached... subclasses wrap what their bases hold when they are
            # made: made before any patch, they wrap the originals, so that
            # disable() leaves them whole.
            importlib.import_module("cached_tts._wrapping.models")
        finally:
            _in_hook.busy = False
        _patch_imported()
    except Exception:  # an import of the user's must not fail because of the cache
        logger.warning(
            "cached-tts could not patch %s; it runs uncached", module.__name__, exc_info=True
        )


def _patch_imported() -> None:
    from cached_tts._wrapping.wrappers import install

    with _lock:
        if not _active:
            return
        _set_fallback_cache(_chosen)
        for module_name, name in _TARGETS:
            cls = getattr(sys.modules.get(module_name), name, None)
            if isinstance(cls, type) and cls not in _patched:
                _patched[cls] = install(cls)
                logger.debug("Patched %s.%s", cls.__module__, cls.__qualname__)


def disable() -> None:
    """Give chatterbox's classes back exactly what they held before :func:`enable`.

    Modules imported later stay unpatched. Doing it when caching is not
    enabled is harmless.

    >>> disable()
    >>> is_enabled()
    False
    """
    global _active, _chosen
    with _lock:
        _active, _chosen = False, None
        while _patched:
            cls, saved = _patched.popitem()
            for name, value in saved.items():
                if value is None:
                    delattr(cls, name)
                else:
                    setattr(cls, name, value)
        if "cached_tts._wrapping.wrappers" in sys.modules:
            _set_fallback_cache(None)


@contextmanager
def enabled(cache: ConditionalCache | None = None) -> Iterator[None]:
    """:func:`enable` for the ``with`` block, then the state from before.

    >>> from cached_tts import ConditionalCache
    >>> with enabled(cache=ConditionalCache(cache_dir=None)):
    ...     is_enabled()
    True
    >>> is_enabled()
    False
    """
    was_enabled, previous = _active, _chosen
    enable(cache)
    try:
        yield
    finally:
        if was_enabled:
            with _lock:
                _restore_choice(previous)
        else:
            disable()


def _restore_choice(previous: ConditionalCache | None) -> None:
    global _chosen  # noqa: PLW0603 -- the process-wide switch the hooks read
    _chosen = previous
    if "cached_tts._wrapping.wrappers" in sys.modules:
        _set_fallback_cache(previous)
