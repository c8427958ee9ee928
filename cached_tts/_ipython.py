"""``%load_ext cached_tts``: caching in IPython and Jupyter, and the ``%tts_cache`` magic.

Loading the extension calls :func:`cached_tts.enable`, so every chatterbox
model in the session prepares each voice once. The magic shows the cache the
session's models use: the one ``enable(cache=...)`` set, else the one a cached
model used last, else the default cache.

* ``%tts_cache``: that cache's stats;
* ``%tts_cache ls``: its entries on disk, the same table as ``cached-tts ls``;
* ``%tts_cache clear``: empty that cache, in memory and on disk.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "tts_cache", "unload_ipython_extension"]

_MAGIC = "tts_cache"
_USAGE = "usage: %tts_cache [ls | clear]"


def load_ipython_extension(ipython: Any) -> None:
    """Enable caching and register ``%tts_cache``."""
    import warnings

    from cached_tts._wrapping.patching import enable

    # tqdm.auto, imported by chatterbox's dependencies, warns in a notebook
    # without ipywidgets; its bars still work, as text. enable() patches
    # chatterbox when the session imports it, later: the filter stays.
    warnings.filterwarnings("ignore", message=".*IProgress.*")
    enable()
    ipython.register_magic_function(tts_cache, magic_kind="line", magic_name=_MAGIC)


def unload_ipython_extension(ipython: Any) -> None:
    """Disable caching and remove ``%tts_cache``."""
    from cached_tts._wrapping.patching import disable

    disable()
    ipython.magics_manager.magics["line"].pop(_MAGIC, None)


def tts_cache(line: str) -> None:
    """``%tts_cache [ls | clear]``: show, list or clear the session's cache."""
    from IPython.core.error import UsageError
    from IPython.display import display

    from cached_tts._cache.display import EntryRow, entry_table
    from cached_tts._wrapping.cache_choice import cache_in_use

    cache = cache_in_use()
    command = line.strip()
    if not command:
        display(cache)  # type: ignore[no-untyped-call]
    elif command == "ls":
        store = cache._store
        if store is None:
            print(f"{cache!r}: nothing on disk")
            return
        rows = [EntryRow.from_scanned(item) for item in reversed(store.scan())]
        print("\n".join(entry_table(rows)) if rows else f"No entries in {store.directory}.")
    elif command == "clear":
        cache.clear()
        print(f"Cleared {cache!r}")
    else:
        raise UsageError(_USAGE)
