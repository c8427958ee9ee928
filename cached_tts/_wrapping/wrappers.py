"""The ``wrapt`` wrappers that put a cache in front of a Chatterbox class.

:func:`install` patches one class in place; the public decorator in
:mod:`cached_tts._wrapping.models` builds on it. The wrappers:

* ``prepare_conditionals`` (TTS classes) / ``set_target_voice`` (VC): served
  from the cache, whether the user calls them or ``generate`` does;
* ``generate``: serialized per model, since upstream keeps its state in
  ``self.conds``; the voice it asks for is found before it takes its turn
  (see :mod:`cached_tts._wrapping.voice`);
* ``__init__``, ``from_local``, ``from_pretrained``: accept ``cache=`` and
  ``model_id=``, fingerprint the checkpoint files the loader read (once, as
  it loads them), and turn missing weights into a
  :class:`~cached_tts.WeightsUnavailableError` that says what to do (see
  :mod:`cached_tts._wrapping.loaders`).

This module holds :func:`install` and the preparation and ``generate``
wrappers; what each kind of class prepares is :mod:`.family`, which cache a
model uses :mod:`.cache_choice`, how a call binds to its arguments
:mod:`.binding`, the ``$CACHED_TTS_DISABLE`` switch :mod:`.disable_switch`.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable
from typing import Any

import wrapt

from cached_tts._entries.entry import (
    UncacheableError,
)
from cached_tts._keys.key import settings_state
from cached_tts._wrapping.binding import bind_call, prompt_call
from cached_tts._wrapping.cache_choice import cache_property, note_cache_in_use
from cached_tts._wrapping.disable_switch import disabled
from cached_tts._wrapping.family import Family, family_of
from cached_tts._wrapping.loaders import init_wrapper, loader_wrapper
from cached_tts._wrapping.voice import (
    Lookup,
    apply,
    computing,
    expecting,
    function_of,
    is_expecting,
    model_lock,
    resolve,
    take_expected,
)

__all__ = [
    "install",
    "is_installed",
    "model_lock",
    "prepare_into_cache",
]

logger = logging.getLogger("cached_tts")

_INSTALLED_MARK = "__cached_tts_installed__"


def is_installed(cls: type) -> bool:
    """Whether :func:`install` patched ``cls`` itself (not only a base)."""
    return bool(cls.__dict__.get(_INSTALLED_MARK, False))


def install(cls: type) -> dict[str, Any]:
    """Patch ``cls`` in place; returns what its ``__dict__`` held before.

    The returned mapping (absent names map to ``None``) lets a caller undo the
    patch exactly.
    """
    family = family_of(cls)
    wrappers: dict[str, Callable[[Any], Any]] = {
        family.method: _prepare_wrapper(family),
        "generate": _generate_wrapper(family),
        "__init__": init_wrapper,
        "from_local": loader_wrapper(from_local=True),
        "from_pretrained": loader_wrapper(from_local=False),
    }
    saved: dict[str, Any] = {}
    for name, wrapper in wrappers.items():
        if not hasattr(cls, name):
            continue
        saved[name] = cls.__dict__.get(name)
        setattr(cls, name, wrapper(inspect.getattr_static(cls, name)))
    for name, value in (("cache", cache_property()), (_INSTALLED_MARK, True)):
        saved[name] = cls.__dict__.get(name)
        setattr(cls, name, value)
    return saved


# -- the wrappers ---------------------------------------------------------------


def _prepare_wrapper(family: Family) -> Callable[[Any], Any]:
    @wrapt.decorator
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if computing() or disabled():
            return wrapped(*args, **kwargs)
        call = bind_call(wrapped, args, kwargs)
        if call is None:
            logger.debug("Not caching %s: its arguments have no stable key", family.method)
            with model_lock(instance):
                return wrapped(*args, **kwargs)
        note_cache_in_use(instance.cache)  # what %tts_cache shows
        lookup = take_expected(instance, call)
        if lookup is None:
            lookup = resolve(family, wrapped, instance, call)
        else:
            # generate found the voice by its own arguments; this call's own
            # (the exaggeration it passes) are the ones applied.
            lookup.call = call
        with model_lock(instance):
            apply(family, instance, lookup, function_of(wrapped))
            return _returned(family, instance, lookup)

    return wrapper


def _returned(family: Family, model: Any, lookup: Lookup) -> Any:
    """What the wrapped method returns for this call: ``None``, or the state it set."""
    if lookup.entry is None:
        return lookup.returned  # upstream ran for this very call
    return getattr(model, family.state) if lookup.entry.returns_state else None


def _generate_wrapper(family: Family) -> Callable[[Any], Any]:
    @wrapt.decorator
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        # Found before the turn on the model: finding may wait for another worker.
        lookup = _resolve_prompt(family, wrapped, instance, args, kwargs)
        with model_lock(instance), expecting(instance, lookup):
            return wrapped(*args, **kwargs)

    return wrapper


def _resolve_prompt(
    family: Family,
    generate: Callable[..., Any],
    model: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Lookup | None:
    """The voice ``generate`` prepares first; ``None`` to leave it to the inner call."""
    if computing() or disabled() or is_expecting(model):
        return None
    prepare = _cached_prepare(model, family)
    call = None if prepare is None else prompt_call(family, generate, prepare, args, kwargs)
    if prepare is None or call is None:
        return None
    try:
        return resolve(family, prepare, model, call)
    except Exception as exc:  # noqa: BLE001 -- raised where upstream raises it: inside generate
        # Raised inside only under the settings it was met under (see take_expected).
        return Lookup(call, error=exc, settings=_settings_or_none(model))


def _settings_or_none(model: Any) -> tuple[Any, ...] | None:
    try:
        return settings_state(model)
    except Exception:  # noqa: BLE001 -- None: the inner call looks again and meets it itself
        return None


def _cached_prepare(model: Any, family: Family) -> Callable[..., Any] | None:
    """Upstream's preparation bound to ``model``, if this library's wrapper is the one called.

    ``None`` when a subclass overrides the method without the decorator: its
    own code around the preparation must then run as it is written.
    """
    cls = type(model)
    for klass in cls.__mro__:
        if family.method in vars(klass):
            if not is_installed(klass):
                return None
            wrapped = vars(klass)[family.method].__wrapped__
            return wrapped.__get__(model, cls)  # type: ignore[no-any-return]
    return None


def prepare_into_cache(model: Any, clip: str | os.PathLike[str]) -> str:
    """Put the voice of ``clip`` in ``model.cache``, leaving the model's own voice alone.

    Returns ``"new"`` when it was prepared now, ``"cached"`` when it was found.
    Waiting for another worker that prepares it holds nothing of the model.
    Raises what preparing raises, and :class:`UncacheableError` when the voice
    could not be cached.
    """
    family = family_of(type(model))
    prepare = _cached_prepare(model, family)
    call = None if prepare is None else bind_call(prepare, (clip,), {})
    if prepare is None or call is None or computing() or disabled():
        return _prepare_in_turn(model, family, clip)
    note_cache_in_use(model.cache)
    lookup = resolve(family, prepare, model, call)
    if lookup.entry is None:
        raise UncacheableError(f"the voice of {os.fspath(clip)} could not be cached")
    return "new" if lookup.prepared_here else "cached"


def _prepare_in_turn(model: Any, family: Family, clip: str | os.PathLike[str]) -> str:
    """Prepare through whatever the model's class does, holding the model throughout."""
    with model_lock(model):
        saved = getattr(model, family.state, None)
        # The counter, not stats(): stats() lists the folder, which is slow for many voices.
        before = model.cache._counts.misses
        try:
            getattr(model, family.method)(clip)
        finally:
            setattr(model, family.state, saved)
        return "new" if model.cache._counts.misses > before else "cached"
