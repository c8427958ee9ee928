"""One call's voice, found or prepared without holding the model while waiting.

Upstream keeps a model's voice in ``self.conds`` (``self.ref_dict`` for VC), so
a cached model takes turns on a lock of its own (:func:`model_lock`). The lock
is held only to run upstream code and to set that attribute. Finding a voice,
which may wait for another thread, process or worker that prepares it, happens
outside the lock: a request whose voice is in memory never queues behind a
wait for Redis or for another process's file lock.

``generate`` holds the lock for its whole run and prepares from inside it, so
its wrapper finds the voice first (:func:`resolve`), then, holding the lock,
hands it to that inner call (:func:`expecting` and :func:`take_expected`).

What a preparation computed is stored only if the clip still holds the bytes
its hash names (:meth:`cached_tts._keys.clip.Clip.unchanged`); the caller gets what
upstream computed either way.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
import time
import weakref
from _thread import RLock
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import torch

from cached_tts._entries.entry import Entry, UncacheableError
from cached_tts._exceptions import ContentChangedError
from cached_tts._forksafe import renew_after_fork
from cached_tts._keys.clip import Clip, FileClip
from cached_tts._keys.key import EntryKey, entry_key, preparation_settings, settings_state
from cached_tts._wrapping.family import Family

__all__ = [
    "Lookup",
    "ModelLock",
    "VoiceCall",
    "apply",
    "computing",
    "expecting",
    "model_lock",
    "resolve",
    "take_expected",
]

logger = logging.getLogger("cached_tts")


class ModelLock(RLock):  # type: ignore[misc]  # typeshed marks RLock final
    """A reentrant lock that knows whether the calling thread holds it.

    A ``_thread.RLock`` itself, so taking it costs no Python call on a hit.

    >>> lock = ModelLock()
    >>> with lock:
    ...     lock.held_here()
    True
    >>> lock.held_here()
    False
    """

    def held_here(self) -> bool:
        """Whether the calling thread holds the lock."""
        return bool(self._is_owned())  # type: ignore[attr-defined]  # as threading.Condition does


class _ThreadState(threading.local):
    def __init__(self) -> None:
        # Upstream's preparation is running: the wrappers step aside.
        self.computing = False
        # (model, voice generate found for its inner preparation, or None).
        self.expected: list[tuple[Any, Lookup | None]] = []


_locks: weakref.WeakKeyDictionary[Any, ModelLock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()
_thread = _ThreadState()
# A child forked while another thread held a model, or was inside a call,
# starts with every model free and no call under way.
renew_after_fork(
    sys.modules[__name__],
    _locks=weakref.WeakKeyDictionary,
    _locks_guard=threading.Lock,
    _thread=_ThreadState,
)


def model_lock(model: Any) -> ModelLock:
    """The lock that serializes one model's preparations and generations."""
    lock = _locks.get(model)
    if lock is None:
        with _locks_guard:
            lock = _locks.setdefault(model, ModelLock())
    return lock


def computing() -> bool:
    """Whether upstream's own preparation is running in this thread."""
    return _thread.computing


_UNSET: Final[Any] = object()


@dataclass(slots=True)
class VoiceCall:
    """A call's clip, exaggeration and other settings, and its upstream arguments."""

    clip: Any  # a path or a file object
    exaggeration: Any
    extra: dict[str, object]
    args: tuple[Any, ...] = field(default=(), compare=False)
    kwargs: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(slots=True)
class Lookup:
    """One call's voice: a cached entry, or what upstream set for this call itself."""

    call: VoiceCall
    entry: Entry | None = None
    state: Any = _UNSET
    error: BaseException | None = None
    #: Whether this call's own preparation ran (a miss, or an uncached run).
    prepared_here: bool = False
    #: What upstream's preparation returned, when it ran for this call.
    returned: Any = None
    #: The model's :func:`settings_state` the voice was found or prepared
    #: under; ``None`` before.
    settings: tuple[Any, ...] | None = None


def resolve(family: Family, wrapped: Callable[..., Any], model: Any, call: VoiceCall) -> Lookup:
    """Find or prepare the voice of ``call``, holding the model only to run upstream.

    Errors of the clip itself (a missing file, audio that cannot be decoded)
    propagate. When the voice cannot be cached, upstream runs once for this
    call and :attr:`Lookup.state` holds what it set.
    """
    lookup = Lookup(call)
    if _look_up_known(wrapped, model, lookup):
        return lookup
    try:
        clip = model.cache.hash_clip(call.clip)
    except ContentChangedError as exc:
        logger.warning("Not caching %s: %s", family.method, exc)
        clip = None
    if clip is None:  # no hash names its bytes: prepare it, uncached
        lookup.settings = settings_state(model)
        _run_upstream(family, wrapped, model, lookup)
    elif not _look_up(family, wrapped, model, clip, lookup) and not lookup.prepared_here:
        # Another call prepared it and could not cache it: prepare this call's own.
        _run_upstream(family, wrapped, model, lookup)
    return lookup


# A call whose voice another call prepared from a clip that changed meanwhile
# looks again: its own clip may be fine.
_LOOKUPS = 2


def _look_up(
    family: Family, wrapped: Callable[..., Any], model: Any, clip: Clip, lookup: Lookup
) -> bool:
    """Fill ``lookup.entry`` from the cache, preparing on a miss; ``False`` if uncacheable."""
    cache = model.cache
    function = function_of(wrapped)
    # Fingerprinting may set the memo the state holds: the state is read after.
    cache.model_fingerprint(model)
    state = settings_state(model)
    # The settings are rendered from this very state, the one remembered below.
    method = f"{function.__module__}.{function.__qualname__}"
    key = entry_key(
        clip.digest,
        cache.model_fingerprint(model),
        preparation_settings(model, method, lookup.call.extra, state),
    )
    lookup.settings = state
    if isinstance(clip, FileClip) and not clip.snapshot.racy:
        _remember_key(model, function, clip, lookup.call, state=state, key=key)

    def prepare() -> Entry:
        seconds = _run_upstream(family, wrapped, model, lookup)
        # Upstream decoded the clip after it was hashed, maybe after a long
        # wait: what it computed belongs under this hash only if the clip
        # still holds the bytes hashed.
        if not clip.unchanged():
            raise ContentChangedError(
                f"{clip.source} changed while its voice was prepared; nothing was stored for it"
            )
        # Nor if the key's settings moved meanwhile: another thread may switch a
        # process-wide mode (the matmul precision, TF32, the default dtype).
        if settings_state(model) != state:
            raise UncacheableError(
                "the model's settings or numeric modes changed while the voice was prepared"
            )
        return family.capture(lookup.state, seconds, lookup.returned, lookup.call.exaggeration)

    # A thread that holds the model must not wait for one that needs it.
    wait = not model_lock(model).held_here()
    for _ in range(_LOOKUPS):
        try:
            lookup.entry = cache.get_or_prepare(key, prepare, source=clip.source, wait=wait)
        except ContentChangedError as exc:
            reason: Exception = exc
            if lookup.prepared_here:
                break
            continue
        except UncacheableError as exc:
            reason = exc
            break
        if not lookup.prepared_here:
            clip.served()
        return True
    logger.warning("Not caching %s: %s", family.method, reason)
    return False


# -- known calls ----------------------------------------------------------------
#
# A repeated call with a path costs one os.stat, one memory-tier lookup and the
# copies handed out. Each model remembers which entry key a call came to: by
# the clip's path as given and its stat signature, the function, the other
# arguments, and the state its fingerprint and settings were read from
# (settings_state). A path is remembered only with a signature its FileHasher
# would trust (not racy), so a clip rewritten since is never served from here.

_KNOWN_ATTR = "_cached_tts_known_keys"
# Calls remembered per model; the oldest is dropped first.
_KNOWN_CALLS = 4096

_KnownCall = tuple[Any, ...]


def _known_call(
    path: str | bytes, signature: tuple[int, ...], function: Any, extra: dict[str, object]
) -> _KnownCall:
    # repr as the settings record them: 1, 1.0 and True are equal keys, not equal settings.
    arguments = tuple((name, repr(value)) for name, value in extra.items()) if extra else ()
    return (path, signature, function, arguments)


def _remember_key(
    model: Any,
    function: Any,
    clip: FileClip,
    call: VoiceCall,
    *,
    state: tuple[Any, ...],
    key: EntryKey,
) -> None:
    """Remember the key a call came to, if the model's state held still while it was made."""
    path, extra = os.fspath(call.clip), call.extra
    if settings_state(model) != state:
        return  # changed while the key was made: which state it belongs to is unclear
    signature = clip.snapshot.signature
    remembered = _known_call(
        path,
        (signature.device, signature.inode, signature.size, signature.mtime_ns, signature.ctime_ns),
        function,
        extra,
    )
    known = model.__dict__.setdefault(_KNOWN_ATTR, {})
    with _known_guard:
        while len(known) >= _KNOWN_CALLS:
            del known[next(iter(known))]
        known[remembered] = (state, key)


_known_guard = threading.Lock()
renew_after_fork(sys.modules[__name__], _known_guard=threading.Lock)


def _look_up_known(wrapped: Callable[..., Any], model: Any, lookup: Lookup) -> bool:
    """Serve a repeated call from memory by the key it came to before; ``False`` otherwise."""
    known = model.__dict__.get(_KNOWN_ATTR)
    path = lookup.call.clip
    if known is None:
        return False
    if not isinstance(path, str):
        if not isinstance(path, os.PathLike):
            return False  # streams are hashed every time
        path = os.fspath(path)
    try:
        # The path as given, relative or not: the stat signature (device and
        # inode included) names the file, wherever the working folder is.
        st = os.stat(path)
    except (OSError, TypeError, ValueError):
        return False  # the full lookup says what is wrong
    signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    found = known.get(_known_call(path, signature, function_of(wrapped), lookup.call.extra))
    if found is None or found[0] != settings_state(model):
        return False
    entry = model.cache.from_memory(found[1])
    if entry is None:
        return False
    lookup.entry, lookup.settings = entry, found[0]
    return True


def _run_upstream(family: Family, wrapped: Callable[..., Any], model: Any, lookup: Lookup) -> float:
    """Run upstream's preparation into ``lookup.state``; the model keeps its own voice.

    Returns the seconds upstream took, not counting the wait for the model.
    """
    call = lookup.call
    with model_lock(model):
        saved = getattr(model, family.state, None)
        _thread.computing = True
        started = time.perf_counter()
        try:
            # No autograd graph may outlive the preparation.
            with torch.inference_mode():
                lookup.returned = wrapped(*call.args, **call.kwargs)
            lookup.state = getattr(model, family.state)
            lookup.prepared_here = True
            return time.perf_counter() - started
        finally:
            _thread.computing = False
            setattr(model, family.state, saved)


def apply(family: Family, model: Any, lookup: Lookup, prepare: Callable[..., Any]) -> None:
    """Give ``model`` the voice ``lookup`` found; the caller holds the model's lock."""
    if lookup.error is not None:
        error, lookup.error = lookup.error, None
        raise error
    if lookup.entry is not None:
        family.restore(model, lookup.entry, lookup.call.exaggeration, prepare)
    else:
        setattr(model, family.state, lookup.state)


@contextlib.contextmanager
def expecting(model: Any, lookup: Lookup | None) -> Iterator[None]:
    """Within, ``model``'s preparation of ``lookup.call`` takes ``lookup`` instead of looking.

    ``lookup=None`` only marks that a ``generate`` of ``model`` is running here.
    """
    _thread.expected.append((model, lookup))
    try:
        yield
    finally:
        _thread.expected.pop()


def is_expecting(model: Any) -> bool:
    """Whether a ``generate`` of ``model`` is running in this thread."""
    return any(held is model for held, _ in _thread.expected)


def take_expected(model: Any, call: VoiceCall) -> Lookup | None:
    """The voice a running ``generate`` found for this very call, handed out once.

    Only under the settings it was found under: a ``generate`` may prepare
    inside ``torch.autocast``, after ``set_default_dtype`` or after converting
    a module, none of which was in force when its wrapper looked.
    """
    expected = _thread.expected
    for index in range(len(expected) - 1, -1, -1):
        held, lookup = expected[index]
        if held is not model:
            continue
        if (
            lookup is None
            or not _same_call(lookup, call)
            or lookup.settings != settings_state(model)
        ):
            return None
        expected[index] = (held, None)
        return lookup
    return None


def _same_call(lookup: Lookup, call: VoiceCall) -> bool:
    found = lookup.call
    if found.extra != call.extra or not _same_clip(found.clip, call.clip):
        return False
    # An entry takes any exaggeration; what upstream set holds the one it was given.
    return lookup.entry is not None or found.exaggeration is call.exaggeration


def _same_clip(a: Any, b: Any) -> bool:
    if a is b:
        return True
    paths = (str, os.PathLike)
    return isinstance(a, paths) and isinstance(b, paths) and os.fspath(a) == os.fspath(b)


def function_of(wrapped: Callable[..., Any]) -> Callable[..., Any]:
    """The plain function behind a bound method (or wrapt's partial for class calls)."""
    if isinstance(wrapped, functools.partial):
        return wrapped.func
    return getattr(wrapped, "__func__", wrapped)
