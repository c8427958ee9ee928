"""The wrappers of what makes a model: ``__init__``, ``from_local``, ``from_pretrained``.

They accept ``cache=`` and ``model_id=``; the loaders also fingerprint the
checkpoint files upstream's loader read (once, as it loads them: see
:func:`~cached_tts._keys.fingerprint.remember_checkpoint_fingerprint`), and turn
missing weights into a :class:`~cached_tts.WeightsUnavailableError` that says
what to do. :func:`cached_tts._wrapping.wrappers.install` puts them on a class.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wrapt

from cached_tts._cache.cache import ConditionalCache
from cached_tts._exceptions import WeightsUnavailableError
from cached_tts._keys.fingerprint import (
    CHECKPOINT_ATTR,
    CheckpointRead,
    checkpoint_signatures,
    loader_weight_files,
    remember_checkpoint_fingerprint,
    set_model_id,
)
from cached_tts._keys.hashing import StatSignature
from cached_tts._wrapping.disable_switch import disabled

__all__ = ["init_wrapper", "loader_wrapper"]


def _configure(model: Any, cache: ConditionalCache | None, model_id: str | None) -> None:
    if cache is not None:
        model.cache = cache
    if model_id is not None:
        set_model_id(model, model_id)


@wrapt.decorator
def init_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    cache = kwargs.pop("cache", None)
    model_id = kwargs.pop("model_id", None)
    wrapped(*args, **kwargs)
    _configure(instance, cache, model_id)


# How deep this thread is in loader calls: upstream's from_pretrained calls
# from_local, and only the outermost call knows the model's cache and id.
_loading = threading.local()


def loader_wrapper(*, from_local: bool) -> Callable[[Any], Any]:
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
    # Only the files this loader opens: a folder may hold another model's too.
    names = loader_weight_files(wrapped)
    before = _signatures(folder, names)
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
        after = _signatures(folder, names)
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


def _signatures(
    folder: Path | None, names: tuple[str, ...]
) -> tuple[tuple[str, StatSignature], ...] | None:
    if folder is None:
        return None
    try:
        return checkpoint_signatures(folder, names)
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
    """Whether ``exc`` is the Hub failing to hand over the weights themselves.

    Only an error raised inside ``huggingface_hub`` counts: upstream loaders
    fetch their files through it. Anything else that fails while a model
    loads (the multilingual tokenizer's segmenter download from github.com,
    say) is not about the weights, and saying so would send users the wrong way.
    """
    module = type(exc).__module__
    network = isinstance(exc, OSError) or module.startswith(
        ("huggingface_hub", "httpx", "httpcore", "requests", "urllib3")
    )
    return network and _raised_in_hub(exc)


def _raised_in_hub(exc: BaseException) -> bool:
    traceback = exc.__traceback__
    while traceback is not None:
        name = traceback.tb_frame.f_globals.get("__name__", "")
        if name == "huggingface_hub" or name.startswith("huggingface_hub."):
            return True
        traceback = traceback.tb_next
    return False
