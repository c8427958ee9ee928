"""What weights a model prepares voices with: its fingerprint.

A fingerprint names exactly the weights that preparation reads (the
VoiceEncoder, the S3 tokenizer and the CAMPPlus speaker encoder), so that
fine-tuned or other weights never share an entry. It is, in order of
preference, the ``model_id`` the user gave, the content hash of the checkpoint
files the model was loaded from, or the hash of the loaded weights themselves.

The fingerprint belongs to the weights a model holds, not to a folder: it is
taken once, when ``from_local``/``from_pretrained`` reads the checkpoint (see
:func:`remember_checkpoint_fingerprint`), and a lookup never touches the
checkpoint folder again. This module imports no torch: commands that load no
model stay light.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import sys
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from operator import is_
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cached_tts._forksafe import renew_after_fork
from cached_tts._keys.hashing import FileHasher, StatSignature

if TYPE_CHECKING:
    import torch

__all__ = [
    "CHECKPOINT_ATTR",
    "FINGERPRINT_ATTR",
    "LOADER_WEIGHT_FILES",
    "MODEL_ID_ATTR",
    "SETTINGS_MEMO_ATTR",
    "WEIGHTS_MEMO_ATTR",
    "CheckpointRead",
    "checkpoint_fingerprint",
    "checkpoint_signatures",
    "loader_weight_files",
    "model_fingerprint",
    "preparation_modules",
    "refresh_fingerprint",
    "remember_checkpoint_fingerprint",
    "same_objects",
    "set_model_id",
    "weights_digest",
]

logger = logging.getLogger("cached_tts")

# Instance attributes that cached models carry. Kept here, beside the code
# that reads them, so that the model wrappers, the key's settings
# (cached_tts._keys.key) and the fingerprint agree on the names.
MODEL_ID_ATTR = "_cached_tts_model_id"
#: The :class:`CheckpointRead` of a model made by ``from_local``.
CHECKPOINT_ATTR = "_cached_tts_checkpoint"
FINGERPRINT_ATTR = "_cached_tts_fingerprint"
WEIGHTS_MEMO_ATTR = "_cached_tts_weights_memo"
#: What the key's settings remember of a model's modules (see cached_tts._keys.key).
SETTINGS_MEMO_ATTR = "_cached_tts_state_memo"

# Checkpoint files that hold the weights preparation reads, across the English,
# multilingual, Turbo and VC checkpoints, in the order they are hashed.
PREPARATION_WEIGHT_FILES = (
    "ve.safetensors",
    "ve.pt",
    "s3gen.safetensors",
    "s3gen.pt",
    "s3gen_meanflow.safetensors",
)

# Which of them each upstream from_local opens (chatterbox's tts.py, mtl_tts.py,
# tts_turbo.py and vc.py). The English and multilingual checkpoints share one
# hub snapshot: hashing the other model's files would tie each model's keys to
# whether the other was ever downloaded.
LOADER_WEIGHT_FILES = {
    "chatterbox.tts.ChatterboxTTS.from_local": ("ve.safetensors", "s3gen.safetensors"),
    "chatterbox.mtl_tts.ChatterboxMultilingualTTS.from_local": ("ve.pt", "s3gen.pt"),
    "chatterbox.tts_turbo.ChatterboxTurboTTS.from_local": (
        "ve.safetensors",
        "s3gen_meanflow.safetensors",
    ),
    "chatterbox.vc.ChatterboxVC.from_local": ("s3gen.safetensors",),
}


# -- weights -------------------------------------------------------------------


def preparation_modules(model: Any) -> list[tuple[str, torch.nn.Module]]:
    """The modules whose weights preparing a voice reads."""
    modules: list[tuple[str, torch.nn.Module]] = []
    if getattr(model, "ve", None) is not None:
        modules.append(("ve", model.ve))
    modules.append(("s3gen.tokenizer", model.s3gen.tokenizer))
    modules.append(("s3gen.speaker_encoder", model.s3gen.speaker_encoder))
    return modules


def weights_digest(modules: Iterable[tuple[str, torch.nn.Module]]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of modules' state.

    >>> import torch
    >>> layer = torch.nn.Linear(2, 2)
    >>> weights_digest([("a", layer)]) == weights_digest([("a", layer)])
    True
    """
    import torch

    digest = hashlib.sha256()
    for prefix, module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            flat = tensor.detach().to("cpu").contiguous().reshape(-1)
            digest.update(f"{prefix}.{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# -- checkpoint folders ----------------------------------------------------------


@dataclass(frozen=True)
class CheckpointRead:
    """The preparation weight files a loader read from ``folder`` (:func:`loader_weight_files`).

    ``files`` pairs each file's name with its stat signature, the same before
    and after the load; it is ``None`` when they changed while the loader read
    them (or could not be listed), so that nothing but the loaded weights
    themselves can say what was read.
    """

    folder: Path
    files: tuple[tuple[str, StatSignature], ...] | None


def loader_weight_files(loader: Any) -> tuple[str, ...]:
    """The preparation weight files that ``loader``, a ``from_local``, opens.

    For upstream's loaders, the files listed for each in
    ``LOADER_WEIGHT_FILES``, as long as its code still names every one of
    them. Any other loader (a fork's or a subclass's own) gets every
    preparation weight file the folder holds: it may read any of them, and a
    file hashed that it did not read only makes its keys more specific.

    >>> from chatterbox.vc import ChatterboxVC
    >>> loader_weight_files(ChatterboxVC.from_local)
    ('s3gen.safetensors',)
    >>> loader_weight_files(lambda ckpt_dir, device: None) == PREPARATION_WEIGHT_FILES
    True
    """
    function = getattr(loader, "__func__", loader)
    name = f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}"
    listed = LOADER_WEIGHT_FILES.get(name)
    code = getattr(function, "__code__", None)
    if listed is None or code is None or not set(listed) <= _string_constants(code):
        return PREPARATION_WEIGHT_FILES
    return listed


def _string_constants(code: Any) -> set[str]:
    found = set()
    for constant in code.co_consts:
        if isinstance(constant, str):
            found.add(constant)
        elif hasattr(constant, "co_consts"):  # a nested function or comprehension
            found |= _string_constants(constant)
    return found


def checkpoint_signatures(
    folder: str | os.PathLike[str], names: Iterable[str] = PREPARATION_WEIGHT_FILES
) -> tuple[tuple[str, StatSignature], ...]:
    """Those of the files ``names`` that ``folder`` holds, each with its stat signature.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "s3gen.safetensors").write_bytes(b"weights")
    >>> [name for name, _ in checkpoint_signatures(folder)]
    ['s3gen.safetensors']
    """
    found = []
    for name in names:
        try:
            st = os.stat(os.path.join(folder, name))
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISREG(st.st_mode):
            found.append((name, StatSignature.of(st)))
    return tuple(found)


def _files_fingerprint(folder: Path, names: Iterable[str], hasher: FileHasher) -> str:
    # The same text as ever: a folder's fingerprint (what `ls` shows as MODEL) stays
    # stable across releases, though the schema in the key may not.
    lines = "".join(f"{name}:{hasher.hash(folder / name)}\n" for name in names)
    return "ckpt:" + hashlib.sha256(lines.encode()).hexdigest()


def checkpoint_fingerprint(
    folder: str | os.PathLike[str],
    hasher: FileHasher,
    names: Iterable[str] = PREPARATION_WEIGHT_FILES,
) -> str:
    """The fingerprint a model loaded from ``folder`` gets, without loading it.

    The content hash of those of the files ``names`` that the folder holds:
    pass the files the model's loader opens (:func:`loader_weight_files`).
    ``hasher`` remembers each file's hash (on disk, if it has a folder), so
    asking again hashes nothing. ``FileNotFoundError`` if the folder holds
    none of them.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "s3gen.safetensors").write_bytes(b"weights")
    >>> checkpoint_fingerprint(folder, FileHasher())[:5]
    'ckpt:'
    """
    absolute = Path(os.path.abspath(folder))
    wanted = tuple(names)
    found = [name for name, _ in checkpoint_signatures(absolute, wanted)]
    if not found:
        raise FileNotFoundError(
            f"{absolute} holds none of {', '.join(wanted)}: "
            "point at a Chatterbox checkpoint folder (the one from_local loads)"
        )
    return _files_fingerprint(absolute, found, hasher)


def remember_checkpoint_fingerprint(model: Any, hasher: FileHasher) -> str | None:
    """Pin the fingerprint of the checkpoint files ``model`` was loaded from.

    Called once, right after ``from_local``; later lookups read the pinned
    value and never the folder. The files are hashed only if their stat
    signatures stayed the same from before the load until after the hashing,
    so the digest is of the bytes the loader read. Otherwise (or if the folder
    held no known weight files) nothing is pinned and the loaded weights are
    hashed on first use instead. Returns the pinned fingerprint, if any.
    """
    read = model.__dict__.get(CHECKPOINT_ATTR)
    if not isinstance(read, CheckpointRead) or not read.files:
        return None
    try:
        names = [name for name, _ in read.files]
        fingerprint = _files_fingerprint(read.folder, names, hasher)
        unchanged = checkpoint_signatures(read.folder, names) == read.files
    except OSError as exc:
        logger.debug("Could not hash the checkpoint in %s: %s", read.folder, exc)
        unchanged = False
    if not unchanged:
        logger.info(
            "The checkpoint files in %s changed while they were loaded or hashed; "
            "the loaded weights will be hashed instead",
            read.folder,
        )
        return None
    _pin(model, fingerprint)
    return fingerprint


def _pin(model: Any, fingerprint: str) -> None:
    # Tied to the module objects: a module swapped for another after loading
    # is not what the files hold, so its weights are hashed instead.
    identity = tuple(module for _, module in preparation_modules(model))
    model.__dict__[FINGERPRINT_ATTR] = (identity, fingerprint)


# -- fingerprints --------------------------------------------------------------


def model_fingerprint(model: Any) -> str:
    """A fingerprint of the weights that ``model`` prepares voices with.

    In order of preference: the ``model_id`` the user gave; the content hash
    of the checkpoint files the model was loaded from, taken when it was
    loaded; the hash of the weights themselves, computed once per model
    instance (and again by :func:`refresh_fingerprint`). Never reads a file.
    """
    model_id = model.__dict__.get(MODEL_ID_ATTR)
    if model_id is not None:
        return f"id:{model_id}"
    pinned = model.__dict__.get(FINGERPRINT_ATTR)
    if pinned is not None and same_objects(
        pinned[0], tuple(module for _, module in preparation_modules(model))
    ):
        return str(pinned[1])
    return "weights:" + _instance_weights_digest(model)


def refresh_fingerprint(model: Any, *, model_id: str | None = None) -> str:
    """Fingerprint ``model`` anew after its weights were changed in place.

    A model's fingerprint is taken once: from its checkpoint files when
    ``from_local``/``from_pretrained`` loads it, or from its weights on first
    use. ``load_state_dict``, ``copy_`` or an optimizer step change the
    weights without the cache seeing it, so call this afterwards, and after
    any other change in place that the cache does not see (see the guide's
    key table): the modules' dtypes and structure are read anew too. With
    ``model_id``, the model is named by it from now on; without, any earlier
    ``model_id`` is dropped and the weights themselves are hashed now (about
    0.4 s for the real modules). Returns the new fingerprint.

    >>> import torch, cached_tts
    >>> class Model:  # shaped like a Chatterbox model, as far as fingerprints look
    ...     def __init__(self):
    ...         self.ve = torch.nn.Linear(2, 2)
    ...         self.s3gen = torch.nn.Module()
    ...         self.s3gen.tokenizer = torch.nn.Linear(2, 2)
    ...         self.s3gen.speaker_encoder = torch.nn.Linear(2, 2)
    >>> model = Model()
    >>> before = cached_tts.refresh_fingerprint(model)
    >>> with torch.no_grad():
    ...     _ = model.ve.weight.add_(1.0)  # the weights change in place
    >>> cached_tts.refresh_fingerprint(model) != before
    True
    >>> cached_tts.refresh_fingerprint(model, model_id="narrator-v2")
    'id:narrator-v2'
    """
    # The settings read the modules' dtypes and structure anew too: a change
    # in place that registers nothing (``model.ve.lstm.half()``) shows then.
    model.__dict__.pop(SETTINGS_MEMO_ATTR, None)
    if model_id is not None:
        set_model_id(model, model_id)
        return f"id:{model_id}"
    model.__dict__.pop(MODEL_ID_ATTR, None)
    model.__dict__.pop(FINGERPRINT_ATTR, None)
    return "weights:" + _instance_weights_digest(model, fresh=True)


def set_model_id(model: Any, model_id: str) -> None:
    """Name ``model``'s weights ``model_id``; ``TypeError`` for anything but a non-empty str."""
    if not isinstance(model_id, str) or not model_id:
        raise TypeError(f"model_id must be a non-empty string, not {model_id!r}")
    model.__dict__[MODEL_ID_ATTR] = model_id


# One lock per model, so that hashing one model's weights (0.4 s or more)
# never holds up another model's lookups.
_memo_locks: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_memo_locks_guard = threading.Lock()
# A thread of the parent that was hashing when it forked does not exist in the
# child: its lock would stay taken there forever.
renew_after_fork(
    sys.modules[__name__],
    _memo_locks=weakref.WeakKeyDictionary,
    _memo_locks_guard=threading.Lock,
)


def _memo_lock(model: Any) -> threading.Lock:
    lock = _memo_locks.get(model)
    if lock is None:
        with _memo_locks_guard:  # held only to create the lock, never while hashing
            lock = _memo_locks.setdefault(model, threading.Lock())
    return lock


def _instance_weights_digest(model: Any, *, fresh: bool = False) -> str:
    modules = preparation_modules(model)
    # The memo is tied to the module objects (held, so no id is ever reused):
    # swapping one out rehashes.
    identity = tuple(module for _, module in modules)
    with _memo_lock(model):
        memo = model.__dict__.get(WEIGHTS_MEMO_ATTR)
        if not fresh and memo is not None and same_objects(memo[0], identity):
            return str(memo[1])
        digest = weights_digest(modules)
        model.__dict__[WEIGHTS_MEMO_ATTR] = (identity, digest)
        return digest


def same_objects(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Whether ``a`` and ``b`` hold the very same objects, in order.

    >>> x, y = object(), object()
    >>> same_objects((x, y), (x, y)), same_objects((x, y), (y, x))
    (True, False)
    """
    return len(a) == len(b) and all(map(is_, a, b))
