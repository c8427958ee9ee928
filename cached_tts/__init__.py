"""cached-tts: Chatterbox voice preparations, prepared once.

Swap one import and every ``generate(audio_prompt_path=...)`` and
``prepare_conditionals(...)`` is served from a verified two-tier cache::

    from cached_tts import CachedChatterboxTTS as ChatterboxTTS

Or change no code at all: ``cached_tts.enable()`` patches chatterbox's own
classes, ``cached-tts run COMMAND`` runs any command with caching on,
and ``%load_ext cached_tts`` does it in IPython and Jupyter.

Importing ``cached_tts`` imports nothing heavy: each public name loads its
module on first use, so ``import cached_tts`` and the command line's cache
commands stay fast. The model classes import chatterbox (and torch's model
stack) when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cached_tts._exceptions import (
    CachedTTSError,
    ContentChangedError,
    DamagedEntryError,
    WeightsUnavailableError,
)
from cached_tts._version import __version__ as __version__

if TYPE_CHECKING:
    from cached_tts._cache.cache import ConditionalCache, default_cache, default_cache_dir
    from cached_tts._cache.stats import CacheStats
    from cached_tts._entries.entry import Entry
    from cached_tts._keys.clip import Clip
    from cached_tts._keys.fingerprint import refresh_fingerprint
    from cached_tts._keys.key import EntryKey
    from cached_tts._tiers.base import SharedTier, TierSettings
    from cached_tts._tiers.health import Backoff
    from cached_tts._tiers.redis.settings import RemoteSettings
    from cached_tts._tiers.stats import TierStats
    from cached_tts._wrapping.models import (
        CachedChatterboxMultilingualTTS,
        CachedChatterboxTTS,
        CachedChatterboxTurboTTS,
        CachedChatterboxVC,
        cached_conditionals,
    )
    from cached_tts._wrapping.patching import disable, enable, enabled
    from cached_tts._wrapping.warm import WarmSummary, warm

__all__ = [
    "Backoff",
    "CacheStats",
    "CachedChatterboxMultilingualTTS",
    "CachedChatterboxTTS",
    "CachedChatterboxTurboTTS",
    "CachedChatterboxVC",
    "CachedTTSError",
    "Clip",
    "ConditionalCache",
    "ContentChangedError",
    "DamagedEntryError",
    "Entry",
    "EntryKey",
    "RemoteSettings",
    "SharedTier",
    "TierSettings",
    "TierStats",
    "WarmSummary",
    "WeightsUnavailableError",
    "cached_conditionals",
    "default_cache",
    "default_cache_dir",
    "disable",
    "enable",
    "enabled",
    "refresh_fingerprint",
    "warm",
]

_LAZY = {
    "ConditionalCache": "cached_tts._cache.cache",
    "default_cache": "cached_tts._cache.cache",
    "default_cache_dir": "cached_tts._cache.cache",
    "EntryKey": "cached_tts._keys.key",
    # What ConditionalCache's lower-level methods take and return.
    "Entry": "cached_tts._entries.entry",
    "Clip": "cached_tts._keys.clip",
    # Lazy too: dataclasses costs `cached-tts run` about 10 ms of start-up.
    "CacheStats": "cached_tts._cache.stats",
    "TierStats": "cached_tts._tiers.stats",
    "refresh_fingerprint": "cached_tts._keys.fingerprint",
    "RemoteSettings": "cached_tts._tiers.redis.settings",
    "Backoff": "cached_tts._tiers.health",
    "SharedTier": "cached_tts._tiers.base",
    "TierSettings": "cached_tts._tiers.base",
    "CachedChatterboxMultilingualTTS": "cached_tts._wrapping.models",
    "CachedChatterboxTTS": "cached_tts._wrapping.models",
    "CachedChatterboxTurboTTS": "cached_tts._wrapping.models",
    "CachedChatterboxVC": "cached_tts._wrapping.models",
    "cached_conditionals": "cached_tts._wrapping.models",
    "WarmSummary": "cached_tts._wrapping.warm",
    "warm": "cached_tts._wrapping.warm",
    "disable": "cached_tts._wrapping.patching",
    "enable": "cached_tts._wrapping.patching",
    "enabled": "cached_tts._wrapping.patching",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cached_tts' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext cached_tts``: enable caching and add the ``%tts_cache`` magic."""
    from cached_tts._ipython import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext cached_tts``: disable caching and remove ``%tts_cache``."""
    from cached_tts._ipython import unload_ipython_extension as unload

    unload(ipython)
