"""ConditionalCache's public methods take and return only types users can import."""

from __future__ import annotations

import inspect
import types
import typing

from strategies import voice_entry

import cached_tts
from cached_tts import ConditionalCache, Entry, EntryKey

# Where types that need no export from cached_tts come from.
_STANDARD = {"builtins", "typing", "collections.abc", "os", "pathlib", "types"}


def classes_in(hint: object) -> list[object]:
    """Every class an annotation names: the members of unions, generics and callables."""
    if isinstance(hint, list):  # a Callable's parameters
        return [cls for item in hint for cls in classes_in(item)]
    if hint is None or hint is type(None) or hint is typing.Any:
        return []
    origin = typing.get_origin(hint)
    if origin is None:
        return [hint]
    found = [] if origin in (typing.Union, types.UnionType) else [origin]
    return found + [cls for arg in typing.get_args(hint) for cls in classes_in(arg)]


def private_types(method: object) -> list[str]:
    exported = [getattr(cached_tts, name) for name in cached_tts.__all__]
    names = []
    for hint in typing.get_type_hints(method).values():
        for cls in classes_in(hint):
            module = getattr(cls, "__module__", "")
            if module not in _STANDARD and not any(cls is public for public in exported):
                names.append(f"{module}.{getattr(cls, '__qualname__', cls)}")
    return names


def test_every_public_method_takes_and_returns_only_types_cached_tts_exports():
    methods = {
        name: member
        for name, member in inspect.getmembers(ConditionalCache, inspect.isfunction)
        if not name.startswith("_")
    }
    assert {"hash_clip", "get_or_prepare", "from_memory", "share"} <= set(methods)
    found = {name: private_types(method) for name, method in methods.items()}
    assert {name: names for name, names in found.items() if names} == {}


def test_the_lower_level_methods_work_with_the_exported_types(tmp_path):
    cache = ConditionalCache(tmp_path / "cache", remote=None)
    clip = tmp_path / "a.wav"
    clip.write_bytes(b"the bytes of a clip")
    hashed = cache.hash_clip(clip)
    assert hashed is not None
    assert (hashed.digest, hashed.unchanged()) == (cache.content_hash(clip), True)
    key = EntryKey(content=hashed.digest, weights="w", settings=(("device", "cpu"),))

    entry = cache.get_or_prepare(key, lambda: voice_entry(1.0))

    assert isinstance(entry, Entry)
    assert cache.from_memory(key) is entry
    assert cache.share(key) is False  # no shared tier to copy it to
    assert "Clip" in cached_tts.__all__
    assert cached_tts.Clip.__module__ == "cached_tts._keys.clip"
