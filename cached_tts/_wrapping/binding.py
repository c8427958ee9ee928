"""How a call of upstream's preparation is bound to its arguments.

:func:`bind_call` turns a call into a :class:`~cached_tts._wrapping.voice.VoiceCall`: the
clip, the exaggeration and the other arguments that become part of the key,
or ``None`` when they cannot be keyed. A call of a plain function binds
through a remembered :class:`_BindPlan`, every other through
``Signature.bind``, with the same result. :func:`prompt_call` binds the
preparation that upstream's ``generate`` makes first.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cached_tts._keys.clip import is_seekable_stream
from cached_tts._wrapping.family import Family
from cached_tts._wrapping.voice import VoiceCall, function_of

__all__ = ["bind_call", "prompt_call"]

# Plain scalars have a stable repr, so they can be part of a key.
_KEYABLE = (bool, int, float, str, type(None))


@functools.cache
def _parameters(function: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(function)


@dataclass(frozen=True)
class _BindPlan:
    """How to bind a call of a plain function without ``Signature.bind``.

    Only for functions whose parameters after ``self`` are all positional or
    keyword (upstream's preparations); others, and any call the plan cannot
    bind exactly, go through ``Signature.bind``. Written for speed: every
    repeated call binds.
    """

    #: The parameters after ``self``, in order.
    names: tuple[str, ...]
    #: Each parameter's default, or ``_NO_DEFAULT``.
    defaults: tuple[Any, ...]
    #: How many leading parameters have no default (defaults only trail).
    required: int

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """The arguments by name, in order, with defaults; ``None``: leave it to the signature."""
        names = self.names
        given = len(args)
        if given > len(names):
            return None
        arguments = dict(zip(names, args, strict=False))
        if kwargs:
            return self._with_keywords(arguments, given, kwargs)
        if given < self.required:
            return None  # one is missing
        arguments.update(zip(names[given:], self.defaults[given:], strict=True))
        return arguments

    def _with_keywords(
        self, arguments: dict[str, Any], given: int, kwargs: dict[str, Any]
    ) -> dict[str, Any] | None:
        names = self.names
        for name, value in kwargs.items():
            if name in arguments:
                return None  # given twice: Signature.bind raises upstream's TypeError
            arguments[name] = value
        for index in range(given, len(names)):
            name = names[index]
            if name not in arguments:
                if index < self.required:
                    return None
                arguments[name] = self.defaults[index]
        if len(arguments) != len(names):
            return None  # an unknown keyword
        return {name: arguments[name] for name in names}


_NO_DEFAULT: Any = object()


@functools.cache
def _bind_plan(function: Callable[..., Any]) -> _BindPlan | None:
    parameters = list(_parameters(function).parameters.values())[1:]  # after self
    if any(p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters):
        return None
    defaults = tuple(
        _NO_DEFAULT if p.default is inspect.Parameter.empty else p.default for p in parameters
    )
    required = next((i for i, d in enumerate(defaults) if d is not _NO_DEFAULT), len(defaults))
    return _BindPlan(tuple(p.name for p in parameters), defaults, required)


def bind_call(
    wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> VoiceCall | None:
    """The clip, exaggeration and other settings of a call; ``None`` if uncacheable."""
    function = function_of(wrapped)
    plan = _bind_plan(function)
    arguments = None if plan is None else plan.bind(args, kwargs)
    if arguments is None:
        arguments = _bind_by_signature(function, args, kwargs)
    clip = arguments.pop(next(iter(arguments)))
    exaggeration = arguments.pop("exaggeration", None)
    # A stream that cannot be read and put back is upstream's alone to read;
    # bytes are too (upstream takes them for a file name and fails).
    if not isinstance(clip, (str, os.PathLike)) and not is_seekable_stream(clip):
        return None
    for value in arguments.values():
        if not isinstance(value, _KEYABLE):
            return None
    return VoiceCall(clip, exaggeration, arguments, args, kwargs)


def _bind_by_signature(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The arguments after ``self`` by name, as ``Signature.bind`` binds them."""
    bound = _parameters(function).bind(None, *args, **kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    arguments.pop(next(iter(arguments)))  # self
    for name in list(arguments):
        kind = _parameters(function).parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(arguments.pop(name))
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            arguments[name] = tuple(arguments[name])
    return arguments


def prompt_call(
    family: Family,
    generate: Callable[..., Any],
    prepare: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> VoiceCall | None:
    """The preparation upstream's ``generate`` makes first, as it makes it; ``None`` if none."""
    try:
        bound = _parameters(function_of(generate)).bind(None, *args, **kwargs)
        bound.apply_defaults()
        clip = bound.arguments.get(family.prompt)
        if not clip:  # upstream prepares nothing then (`if audio_prompt_path:`)
            return None
        # Upstream passes on the arguments the two share by name (exaggeration...).
        names = list(_parameters(function_of(prepare)).parameters)[2:]  # after self and clip
        shared = {name: bound.arguments[name] for name in names if name in bound.arguments}
        return bind_call(prepare, (clip,), shared)
    except (TypeError, ValueError):  # upstream raises its own error for these arguments
        return None
