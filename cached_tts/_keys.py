"""What makes two voice preparations the same.

An :class:`EntryKey` names one preparation by

* ``content``: the sha256 of the reference clip's bytes (never its path, which
  goes stale when the file is edited);
* ``weights``: a fingerprint of exactly the weights that preparation reads
  (the VoiceEncoder, the S3 tokenizer and the CAMPPlus speaker encoder), so
  fine-tuned or other weights never share an entry;
* ``settings``: everything else that changes the result, such as the class,
  ``ENC_COND_LEN``/``DEC_COND_LEN``, the speech prompt length, extra call
  arguments (Turbo's ``norm_loudness``), the device type and dtype, and the
  versions of the libraries that compute it;
* ``schema``: the version of this library's entry layout.

Exaggeration is deliberately absent: it is applied on the way out of the cache.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import torch

from cached_tts._forksafe import renew_after_fork
from cached_tts._hashing import FileHasher

__all__ = [
    "SCHEMA_VERSION",
    "EntryKey",
    "entry_key",
    "model_fingerprint",
    "preparation_settings",
    "weights_digest",
]

#: Bumped whenever the layout of an entry changes, so old entries never match.
SCHEMA_VERSION = 1

# Instance attributes that cached models carry. Kept here, beside the code
# that reads them, so that the model wrappers and the key agree on the names.
MODEL_ID_ATTR = "_cached_tts_model_id"
CHECKPOINT_ATTR = "_cached_tts_checkpoint"
_WEIGHTS_MEMO_ATTR = "_cached_tts_weights_memo"
_PARAMETERS_MEMO_ATTR = "_cached_tts_parameters_memo"

# Checkpoint files that hold the weights preparation reads, across the English,
# multilingual, Turbo and VC checkpoints. Whichever of them a folder has are
# hashed; hashing one more than needed only makes a key more specific.
PREPARATION_WEIGHT_FILES = (
    "ve.safetensors",
    "ve.pt",
    "s3gen.safetensors",
    "s3gen.pt",
    "s3gen_meanflow.safetensors",
)

_memo_lock = threading.Lock()
renew_after_fork(sys.modules[__name__], _memo_lock=threading.Lock)


@dataclass(frozen=True)
class EntryKey:
    """The identity of one cached preparation.

    >>> key = EntryKey(content="ab" * 32, weights="w", settings=(("device", "cpu"),))
    >>> len(key.digest)
    64
    >>> EntryKey.from_canonical(key.canonical) == key
    True
    """

    content: str
    weights: str
    settings: tuple[tuple[str, str], ...]
    schema: int = SCHEMA_VERSION
    canonical: str = field(init=False, repr=False, compare=False)
    digest: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Order never matters: equal settings make equal keys.
        object.__setattr__(self, "settings", tuple(sorted(self.settings)))
        canonical = json.dumps(
            {
                "content": self.content,
                "weights": self.weights,
                "settings": dict(self.settings),
                "schema": self.schema,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        # Both are derived once: the key is built on every cache lookup.
        object.__setattr__(self, "canonical", canonical)
        object.__setattr__(self, "digest", hashlib.sha256(canonical.encode()).hexdigest())

    @classmethod
    def from_canonical(cls, canonical: str) -> EntryKey:
        """Rebuild a key from :attr:`canonical`, as stored in an entry."""
        fields = json.loads(canonical)
        return cls(
            content=fields["content"],
            weights=fields["weights"],
            settings=tuple(sorted(fields["settings"].items())),
            schema=fields["schema"],
        )


@lru_cache(maxsize=1024)
def entry_key(content: str, weights: str, settings: tuple[tuple[str, str], ...]) -> EntryKey:
    """An :class:`EntryKey`, remembered: lookups rebuild the same keys often."""
    return EntryKey(content, weights, settings)


@cache
def _library_versions() -> tuple[tuple[str, str], ...]:
    # A new release of any of these may compute different bits.
    versions = []
    for dist in ("chatterbox-tts", "torch", "librosa"):
        try:
            versions.append((f"version:{dist}", importlib.metadata.version(dist)))
        except importlib.metadata.PackageNotFoundError:
            versions.append((f"version:{dist}", "absent"))
    return tuple(versions)


def preparation_settings(
    model: Any, method: str, extra: Mapping[str, object]
) -> tuple[tuple[str, str], ...]:
    """The settings of ``model`` that change what preparing a voice computes.

    ``method`` names the upstream function that prepares; ``extra`` holds the
    call's arguments other than the clip and the exaggeration.
    """
    t3 = getattr(model, "t3", None)
    raw = (
        method,
        getattr(model, "ENC_COND_LEN", None),
        getattr(model, "DEC_COND_LEN", None),
        None if t3 is None else t3.hp.speech_cond_prompt_len,
        str(model.device),
        # Read every call: module.half() or .to() change a parameter in place.
        tuple(str(parameter.dtype) for parameter in _first_parameters(model)),
        tuple(extra.items()),
    )
    return _settings(raw)


@lru_cache(maxsize=256)
def _settings(raw: tuple[Any, ...]) -> tuple[tuple[str, str], ...]:
    method, enc_len, dec_len, prompt_len, device, dtypes, extra = raw
    settings = {"method": method, "device": torch.device(device).type, "dtype": ",".join(dtypes)}
    for name, value in (
        ("ENC_COND_LEN", enc_len),
        ("DEC_COND_LEN", dec_len),
        ("speech_cond_prompt_len", prompt_len),
    ):
        if value is not None:
            settings[name] = str(value)
    for name, value in extra:
        settings[f"arg:{name}"] = repr(value)
    settings.update(_library_versions())
    return tuple(sorted(settings.items()))


def _first_parameters(model: Any) -> tuple[torch.Tensor, ...]:
    """One parameter of each preparation module, remembered per module set."""
    modules = preparation_modules(model)
    identity = tuple(module for _, module in modules)
    memo = model.__dict__.get(_PARAMETERS_MEMO_ATTR)
    if memo is None or not _same_objects(memo[0], identity):
        memo = (identity, tuple(next(module.parameters()) for _, module in modules))
        model.__dict__[_PARAMETERS_MEMO_ATTR] = memo
    return memo[1]  # type: ignore[no-any-return]


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

    >>> layer = torch.nn.Linear(2, 2)
    >>> weights_digest([("a", layer)]) == weights_digest([("a", layer)])
    True
    """
    digest = hashlib.sha256()
    for prefix, module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            flat = tensor.detach().to("cpu").contiguous().reshape(-1)
            digest.update(f"{prefix}.{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def model_fingerprint(model: Any, hasher: FileHasher) -> str:
    """A fingerprint of the weights that ``model`` prepares voices with.

    In order of preference: the ``model_id`` the user gave; the content hash
    of the checkpoint files the model was loaded from (remembered by
    ``hasher``, so later runs hash nothing); the hash of the weights
    themselves, computed once per model instance.
    """
    model_id = getattr(model, MODEL_ID_ATTR, None)
    if model_id is not None:
        return f"id:{model_id}"
    checkpoint = getattr(model, CHECKPOINT_ATTR, None)
    if checkpoint is not None:
        files = [Path(checkpoint) / n for n in PREPARATION_WEIGHT_FILES]
        present = [f for f in files if f.is_file()]
        if present:
            lines = "".join(f"{f.name}:{hasher.hash(f)}\n" for f in present)
            return "ckpt:" + hashlib.sha256(lines.encode()).hexdigest()
    return "weights:" + _instance_weights_digest(model)


def _instance_weights_digest(model: Any) -> str:
    modules = preparation_modules(model)
    # The memo is tied to the module objects (held, so no id is ever reused):
    # swapping one out rehashes.
    identity = tuple(module for _, module in modules)
    with _memo_lock:
        memo = model.__dict__.get(_WEIGHTS_MEMO_ATTR)
        if memo is not None and _same_objects(memo[0], identity):
            return str(memo[1])
        digest = weights_digest(modules)
        model.__dict__[_WEIGHTS_MEMO_ATTR] = (identity, digest)
        return digest


def _same_objects(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
