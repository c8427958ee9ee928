"""``%load_ext cached_tts``: caching in IPython and Jupyter, and the ``%tts_cache`` magic.

Loading the extension calls :func:`cached_tts.enable`, so every chatterbox
model in the session prepares each voice once. The magic shows what the cache
holds:

* ``%tts_cache``: stats of the cache that models without their own use;
* ``%tts_cache ls``: one line per entry on disk (key, source clip, size, last use);
* ``%tts_cache clear``: empty that cache, in memory and on disk.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "tts_cache", "unload_ipython_extension"]

_MAGIC = "tts_cache"
_USAGE = "usage: %tts_cache [ls | clear]"


def load_ipython_extension(ipython: Any) -> None:
    """Enable caching and register ``%tts_cache``."""
    from cached_tts._patching import enable

    enable()
    ipython.register_magic_function(tts_cache, magic_kind="line", magic_name=_MAGIC)


def unload_ipython_extension(ipython: Any) -> None:
    """Disable caching and remove ``%tts_cache``."""
    from cached_tts._patching import disable

    disable()
    ipython.magics_manager.magics["line"].pop(_MAGIC, None)


def tts_cache(line: str) -> None:
    """``%tts_cache [ls | clear]``: show, list or clear the session's cache."""
    from IPython.core.error import UsageError
    from IPython.display import display

    from cached_tts._display import entry_lines
    from cached_tts._wrappers import fallback_cache

    cache = fallback_cache()
    command = line.strip()
    if not command:
        display(cache)  # type: ignore[no-untyped-call]
    elif command == "ls":
        store = cache._store
        if store is None:
            print(f"{cache!r}: nothing on disk")
            return
        print("\n".join(entry_lines(store.scan())) or f"no entries in {store.directory}")
    elif command == "clear":
        cache.clear()
        print(f"Cleared {cache!r}")
    else:
        raise UsageError(_USAGE)
