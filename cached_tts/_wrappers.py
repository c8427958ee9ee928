"""The ``wrapt`` wrappers that put a cache in front of a Chatterbox class.

:func:`install` patches one class in place; the public decorator in
:mod:`cached_tts._models` builds on it. The wrappers:

* ``prepare_conditionals`` (TTS classes) / ``set_target_voice`` (VC): served
  from the cache, whether the user calls them or ``generate`` does;
* ``generate``: serialized per model, since upstream keeps its state in
  ``self.conds``; the voice it asks for is found before it takes its turn
  (see :mod:`cached_tts._voice`);
* ``__init__``, ``from_local``, ``from_pretrained``: accept ``cache=`` and
  ``model_id=``, fingerprint the checkpoint files the loader read (once, as
  it loads them), and turn missing weights into a
  :class:`~cached_tts.WeightsUnavailableError` that says what to do.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wrapt

from cached_tts._cache import ConditionalCache, default_cache
from cached_tts._clip import is_seekable_stream
from cached_tts._entry import (
    Entry,
    UncacheableError,
    conditionals_class_for,
    conditionals_from_entry,
    entry_from_conditionals,
    entry_from_ref_dict,
    ref_dict_from_entry,
)
from cached_tts._exceptions import WeightsUnavailableError
from cached_tts._fingerprint import (
    CHECKPOINT_ATTR,
    CheckpointRead,
    checkpoint_signatures,
    remember_checkpoint_fingerprint,
    set_model_id,
)
from cached_tts._hashing import StatSignature
from cached_tts._ipython import note_cache_in_use
from cached_tts._voice import (
    Lookup,
    VoiceCall,
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
    "DISABLE_ENV",
    "Family",
    "chosen_fallback_cache",
    "fallback_cache",
    "family_of",
    "install",
    "is_installed",
    "model_lock",
    "prepare_into_cache",
    "set_fallback_cache",
]

logger = logging.getLogger("cached_tts")

#: Set to ``1`` to bypass every cache (for debugging).
DISABLE_ENV = "CACHED_TTS_DISABLE"


def disabled() -> bool:
    """Whether ``$CACHED_TTS_DISABLE`` is ``1`` now.

    Read on every call, so setting it in a running notebook takes effect; read
    from ``os.environ``'s own mapping where it has one, since ``os.environ.get``
    costs about a microsecond, a noticeable part of a hit.

    >>> os.environ[DISABLE_ENV] = "1"
    >>> disabled()
    True
    >>> del os.environ[DISABLE_ENV]
    >>> disabled()
    False
    """
    data = getattr(os.environ, "_data", None)
    if data is None:  # os.environ replaced by a plain mapping
        return os.environ.get(DISABLE_ENV) == "1"
    return bool(data.get(_DISABLE_KEY) == _DISABLED_VALUE)


# How os.environ keeps the name and the value in its mapping (bytes on POSIX).
_DISABLE_KEY = os.environ.encodekey(DISABLE_ENV)
_DISABLED_VALUE = os.environ.encodevalue("1")

_INSTALLED_MARK = "__cached_tts_installed__"
_CACHE_ATTR = "_cached_tts_cache"

# Plain scalars have a stable repr, so they can be part of a key.
_KEYABLE = (bool, int, float, str, type(None))


@dataclass(frozen=True)
class Family:
    """How one kind of Chatterbox class prepares a voice and keeps it."""

    #: The method that prepares a voice.
    method: str
    #: The attribute it sets.
    state: str
    #: ``generate``'s argument naming the clip it prepares first.
    prompt: str
    #: An entry from what ``method`` set, and the seconds it took.
    capture: Callable[[Any, float], Entry]
    restore: Callable[[Any, Entry, Any, Callable[..., Any]], None]


def _restore_conditionals(model: Any, entry: Entry, exaggeration: Any, prepare: Any) -> None:
    model.conds = conditionals_from_entry(
        entry, exaggeration, model.device, conditionals_class_for(prepare)
    )


def _restore_ref_dict(model: Any, entry: Entry, _exaggeration: Any, _prepare: Any) -> None:
    model.ref_dict = ref_dict_from_entry(entry, model.device)


TTS = Family(
    "prepare_conditionals",
    "conds",
    "audio_prompt_path",
    entry_from_conditionals,
    _restore_conditionals,
)
VC = Family(
    "set_target_voice", "ref_dict", "target_voice_path", entry_from_ref_dict, _restore_ref_dict
)


def family_of(cls: type) -> Family:
    """The family of a Chatterbox class; ``TypeError`` for anything else."""
    for family in (TTS, VC):
        if callable(getattr(cls, family.method, None)):
            return family
    raise TypeError(
        f"{cls.__qualname__} is not a Chatterbox model class: it has neither "
        "prepare_conditionals nor set_target_voice"
    )


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
        "__init__": _init_wrapper,
        "from_local": _loader_wrapper(from_local=True),
        "from_pretrained": _loader_wrapper(from_local=False),
    }
    saved: dict[str, Any] = {}
    for name, wrapper in wrappers.items():
        if not hasattr(cls, name):
            continue
        saved[name] = cls.__dict__.get(name)
        setattr(cls, name, wrapper(inspect.getattr_static(cls, name)))
    for name, value in (("cache", _cache_property()), (_INSTALLED_MARK, True)):
        saved[name] = cls.__dict__.get(name)
        setattr(cls, name, value)
    return saved


# -- per-model state ----------------------------------------------------------

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


def _cache_property() -> property:
    def get(self: Any) -> ConditionalCache:
        return self.__dict__.get(_CACHE_ATTR) or fallback_cache()

    def set_(self: Any, value: ConditionalCache | None) -> None:
        if value is not None and not isinstance(value, ConditionalCache):
            raise TypeError(
                f"cache must be a cached_tts.ConditionalCache or None, not {type(value).__name__}"
            )
        self.__dict__[_CACHE_ATTR] = value

    return property(get, set_, doc="The ConditionalCache this model uses (assignable).")


def _configure(model: Any, cache: ConditionalCache | None, model_id: str | None) -> None:
    if cache is not None:
        model.cache = cache
    if model_id is not None:
        set_model_id(model, model_id)


# -- the wrappers ---------------------------------------------------------------


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


def _bind(
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


def _prepare_wrapper(family: Family) -> Callable[[Any], Any]:
    @wrapt.decorator
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if computing() or disabled():
            return wrapped(*args, **kwargs)
        call = _bind(wrapped, args, kwargs)
        if call is None:
            logger.debug("Not caching %s: its arguments have no stable key", family.method)
            with model_lock(instance):
                return wrapped(*args, **kwargs)
        note_cache_in_use(instance.cache)  # what %tts_cache shows
        lookup = take_expected(instance, call) or resolve(family, wrapped, instance, call)
        with model_lock(instance):
            apply(family, instance, lookup, function_of(wrapped))
        return None

    return wrapper


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
    call = None if prepare is None else _prompt_call(family, generate, prepare, args, kwargs)
    if prepare is None or call is None:
        return None
    try:
        return resolve(family, prepare, model, call)
    except Exception as exc:  # noqa: BLE001 -- raised where upstream raises it: inside generate
        return Lookup(call, error=exc)


def _prompt_call(
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
        return _bind(prepare, (clip,), shared)
    except (TypeError, ValueError):  # upstream raises its own error for these arguments
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
    call = None if prepare is None else _bind(prepare, (clip,), {})
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
        before = model.cache._misses
        try:
            getattr(model, family.method)(clip)
        finally:
            setattr(model, family.state, saved)
        return "new" if model.cache._misses > before else "cached"


@wrapt.decorator
def _init_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    cache = kwargs.pop("cache", None)
    model_id = kwargs.pop("model_id", None)
    wrapped(*args, **kwargs)
    _configure(instance, cache, model_id)


# How deep this thread is in loader calls: upstream's from_pretrained calls
# from_local, and only the outermost call knows the model's cache and id.
_loading = threading.local()


def _loader_wrapper(*, from_local: bool) -> Callable[[Any], Any]:
    @wrapt.decorator
    def wrapper(
        wrapped: Callable[..., Any], cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        cache = kwargs.pop("cache", None)
        model_id = kwargs.pop("model_id", None)
        depth = getattr(_loading, "depth", 0)
        _loading.depth = depth + 1
        try:
            model = _load(wrapped, cls, args, kwargs, from_local=from_local)
        finally:
            _loading.depth = depth
        _configure(model, cache, model_id)
        if depth == 0 and model_id is None and not disabled():
            # Once, now, while the files are those just read: lookups never
            # touch the checkpoint folder again.
            remember_checkpoint_fingerprint(model, model.cache._hasher)
        return model

    return wrapper


def _load(
    wrapped: Callable[..., Any],
    cls: type,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    from_local: bool,
) -> Any:
    """Run upstream's loader; ``from_local`` also records which weight files it read."""
    folder = _checkpoint_folder(args, kwargs) if from_local else None
    before = _signatures(folder)
    try:
        model = wrapped(*args, **kwargs)
    except WeightsUnavailableError:
        raise
    except Exception as exc:
        error = _missing_weights(cls, exc, args, kwargs, from_local=from_local)
        if error is None:
            raise
        raise error from exc
    if folder is not None:
        # Files replaced while upstream read them: which bytes it read is
        # unknown, so only the loaded weights can be fingerprinted.
        after = _signatures(folder)
        files = before if before is not None and before == after else None
        model.__dict__[CHECKPOINT_ATTR] = CheckpointRead(folder, files)
    return model


def _checkpoint_folder(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Path | None:
    ckpt_dir: Any = args[0] if args else kwargs.get("ckpt_dir")
    try:
        # Not resolved: a symlink repointed during the load must show up as a
        # change of what the path upstream opens holds.
        return Path(os.path.abspath(ckpt_dir))
    except TypeError:
        return None  # not a path: upstream will say what is wrong with it


def _signatures(folder: Path | None) -> tuple[tuple[str, StatSignature], ...] | None:
    if folder is None:
        return None
    try:
        return checkpoint_signatures(folder)
    except OSError:
        return None  # an unreadable folder: upstream fails or the weights are hashed


def _missing_weights(
    cls: type,
    exc: Exception,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    from_local: bool,
) -> WeightsUnavailableError | None:
    """A helpful error for weights that are not there; ``None`` if it is another failure."""
    if from_local:
        if not isinstance(exc, FileNotFoundError):
            return None
        ckpt_dir = args[0] if args else kwargs.get("ckpt_dir")
        missing = exc.filename or exc
        return WeightsUnavailableError(
            f"{cls.__name__}.from_local({str(ckpt_dir)!r}): the checkpoint folder lacks "
            f"{missing}. Point it at a complete Chatterbox checkpoint, or use "
            f"{cls.__name__}.from_pretrained(device) to download one."
        )
    if not _is_download_failure(exc):
        return None
    return WeightsUnavailableError(
        f"{cls.__name__}.from_pretrained could not get the Chatterbox weights from the "
        f"Hugging Face Hub ({type(exc).__name__}: {exc}). Connect to the internet once "
        "so they land in the Hugging Face cache (or run `huggingface-cli download "
        "ResembleAI/chatterbox`), then load them again; offline, set HF_HUB_OFFLINE=1 "
        "or call from_local(path) on a downloaded checkpoint. To try cached-tts "
        "without weights, use cached_tts.testing.random_model()."
    )


def _is_download_failure(exc: Exception) -> bool:
    if isinstance(exc, OSError):  # includes LocalEntryNotFoundError and requests' errors
        return True
    module = type(exc).__module__
    return module.startswith(("huggingface_hub", "httpx", "httpcore", "requests", "urllib3"))
