"""The public decorator and the four cached Chatterbox classes.

>>> issubclass(CachedChatterboxTTS, ChatterboxTTS)
True
"""

from __future__ import annotations

from typing import TypeVar

from chatterbox.tts import ChatterboxTTS
from chatterbox.vc import ChatterboxVC

from cached_tts._wrapping.family import family_of
from cached_tts._wrapping.wrappers import install, is_installed

try:
    from chatterbox.mtl_tts import ChatterboxMultilingualTTS
except ImportError:  # pragma: no cover - older chatterbox releases
    ChatterboxMultilingualTTS = None
try:
    from chatterbox.tts_turbo import ChatterboxTurboTTS
except ImportError:  # pragma: no cover - older chatterbox releases
    ChatterboxTurboTTS = None

__all__ = [
    "CachedChatterboxMultilingualTTS",
    "CachedChatterboxTTS",
    "CachedChatterboxTurboTTS",
    "CachedChatterboxVC",
    "cached_conditionals",
]

ModelClass = TypeVar("ModelClass", bound=type)


def cached_conditionals(cls: ModelClass) -> ModelClass:
    """Make a Chatterbox model class serve voice preparations from a cache.

    Applied to your own subclass of a Chatterbox class, it caches that class
    in place and returns it. Applied to a class that chatterbox itself defines,
    it returns a new ``Cached...`` subclass and leaves the original untouched
    (see :func:`cached_tts.enable` to patch those in place).

    The class then accepts ``cache=`` and ``model_id=`` in its constructor,
    ``from_local`` and ``from_pretrained``, and has an assignable ``.cache``.

    >>> from chatterbox.tts import ChatterboxTTS
    >>> @cached_conditionals
    ... class NarratorTTS(ChatterboxTTS):
    ...     '''A house voice model.'''
    >>> issubclass(NarratorTTS, ChatterboxTTS), NarratorTTS.__name__
    (True, 'NarratorTTS')
    >>> cached_conditionals(ChatterboxTTS).__name__
    'CachedChatterboxTTS'
    """
    family_of(cls)  # a clear TypeError for anything that is not a model class
    if cls.__module__.split(".")[0] == "chatterbox":
        name = f"Cached{cls.__name__}"
        subclass = type(name, (cls,), {"__module__": __name__, "__qualname__": name})
        subclass.__doc__ = f"{cls.__name__} whose voice preparations are cached."
        install(subclass)
        return subclass  # type: ignore[return-value]
    if not is_installed(cls):
        install(cls)
    return cls


@cached_conditionals
class CachedChatterboxTTS(ChatterboxTTS):  # type: ignore[misc]
    """``ChatterboxTTS`` whose voice preparations are cached.

    Same constructor, ``from_pretrained`` and ``from_local`` as the base, each
    also taking ``cache=`` (a :class:`~cached_tts.ConditionalCache`) and
    ``model_id=`` (a name that stands in for the weights' fingerprint).
    """


@cached_conditionals
class CachedChatterboxVC(ChatterboxVC):  # type: ignore[misc]
    """``ChatterboxVC`` whose target voices (``set_target_voice``) are cached."""


if ChatterboxMultilingualTTS is not None:

    @cached_conditionals
    class CachedChatterboxMultilingualTTS(ChatterboxMultilingualTTS):  # type: ignore[misc]
        """``ChatterboxMultilingualTTS`` whose voice preparations are cached."""


if ChatterboxTurboTTS is not None:

    @cached_conditionals
    class CachedChatterboxTurboTTS(ChatterboxTurboTTS):  # type: ignore[misc]
        """``ChatterboxTurboTTS`` whose voice preparations are cached.

        ``norm_loudness`` is part of the key: both settings are cached apart.
        """
