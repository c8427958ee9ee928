"""What makes two voice preparations the same.

An :class:`EntryKey` names one preparation by

* ``content``: the sha256 of the reference clip's bytes (never its path, which
  goes stale when the file is edited);
* ``weights``: a fingerprint of exactly the weights that preparation reads
  (see :mod:`cached_tts._fingerprint`), so fine-tuned or other weights never
  share an entry;
* ``settings``: everything else that changes the result, such as the class,
  ``ENC_COND_LEN``/``DEC_COND_LEN``, the speech prompt length, extra call
  arguments (Turbo's ``norm_loudness``), the device type, the dtypes of the
  modules preparation runs (S3Gen's own included), and the versions of the
  code that decodes, resamples, normalises and embeds the clip (see
  :mod:`cached_tts._versions`);
* ``schema``: the version of this library's entry layout.

Exaggeration is deliberately absent: it is applied on the way out of the cache.
This module holds the key and the settings (:func:`preparation_settings`,
:func:`settings_state`); it imports no torch: commands that load no model stay
light.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cached_tts._fingerprint import (
    FINGERPRINT_ATTR,
    MODEL_ID_ATTR,
    WEIGHTS_MEMO_ATTR,
    preparation_modules,
    same_objects,
)
from cached_tts._versions import library_versions

if TYPE_CHECKING:
    import torch

__all__ = [
    "SCHEMA_VERSION",
    "EntryKey",
    "entry_key",
    "preparation_settings",
    "settings_state",
]

#: Bumped whenever the layout of an entry changes, so old entries never match.
SCHEMA_VERSION = 2

# Instance attributes that the settings code memoises on a model (the
# fingerprint's own live in cached_tts._fingerprint).
_PARAMETERS_MEMO_ATTR = "_cached_tts_parameters_memo"
_STATE_MEMO_ATTR = "_cached_tts_state_memo"


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


# -- settings ------------------------------------------------------------------


def preparation_settings(
    model: Any, method: str, extra: Mapping[str, object]
) -> tuple[tuple[str, str], ...]:
    """The settings of ``model`` that change what preparing a voice computes.

    ``method`` names the upstream function that prepares; ``extra`` holds the
    call's arguments other than the clip and the exaggeration.
    """
    t3 = getattr(model, "t3", None)
    names, parameters = _first_parameters(model)
    raw = (
        method,
        getattr(model, "ENC_COND_LEN", None),
        getattr(model, "DEC_COND_LEN", None),
        None if t3 is None else t3.hp.speech_cond_prompt_len,
        str(model.device),
        # Read every call: module.half() or .to() change a parameter in place.
        names,
        tuple(parameter.dtype for parameter in parameters),
        tuple(extra.items()),
    )
    return _settings(raw)


@lru_cache(maxsize=256)
def _settings(raw: tuple[Any, ...]) -> tuple[tuple[str, str], ...]:
    import torch

    method, enc_len, dec_len, prompt_len, device, names, dtypes, extra = raw
    settings = {
        "method": method,
        "device": torch.device(device).type,
        "dtype": ",".join(f"{n}={d}" for n, d in zip(names, dtypes, strict=True)),
    }
    for name, value in (
        ("ENC_COND_LEN", enc_len),
        ("DEC_COND_LEN", dec_len),
        ("speech_cond_prompt_len", prompt_len),
    ):
        if value is not None:
            settings[name] = str(value)
    for name, value in extra:
        settings[f"arg:{name}"] = repr(value)
    settings.update(library_versions())
    return tuple(sorted(settings.items()))


def settings_state(model: Any) -> tuple[Any, ...]:
    """What ``model``'s fingerprint and preparation settings are read from, compared cheaply.

    Equal states (compared with ``==``, which holds for the same objects)
    give the same :func:`model_fingerprint` and :func:`preparation_settings`
    for the same method and arguments: the fingerprint's sources (the
    ``model_id``, the pinned checkpoint fingerprint, the weights memo, each
    replaced by :func:`refresh_fingerprint`), the module objects, the dtype
    of one parameter of each (``.half()`` and ``.to()`` convert parameters in
    place), the prompt lengths and the device. Holds no tensor, whose ``==``
    compares values.
    """
    attributes = model.__dict__
    # The modules of _dtype_modules, read here without building lists: this
    # runs on every repeated call, so it is written for speed.
    modules = (getattr(model, "ve", None), *_s3gen_children(model.s3gen))
    memo = attributes.get(_STATE_MEMO_ATTR)
    dtypes = None if memo is None or not same_objects(memo[0], modules) else _dtypes(memo[1])
    if dtypes is None:
        # Read from these very modules, so the dtypes are theirs.
        memo = (modules, tuple(_first_parameter(m) for m in modules if m is not None))
        attributes[_STATE_MEMO_ATTR] = memo
        dtypes = tuple(parameter.dtype for _, _, parameter in memo[1])
    t3 = getattr(model, "t3", None)
    return (
        attributes.get(MODEL_ID_ATTR),
        attributes.get(FINGERPRINT_ATTR),
        attributes.get(WEIGHTS_MEMO_ATTR),
        modules,
        dtypes,
        getattr(model, "ENC_COND_LEN", None),
        getattr(model, "DEC_COND_LEN", None),
        None if t3 is None else t3.hp.speech_cond_prompt_len,
        str(model.device),
    )


def _dtypes(firsts: tuple[tuple[Any, str, Any], ...]) -> tuple[torch.dtype, ...] | None:
    """The dtype of each remembered parameter; ``None`` if one is no longer in its place.

    A conversion may put a new Parameter in place of the old one (with
    ``torch.__future__.set_overwrite_module_params_on_conversion``, or
    ``load_state_dict(assign=True)``): the old one's dtype then says nothing.
    """
    dtypes = []
    for owner, leaf, parameter in firsts:
        if owner._parameters.get(leaf) is not parameter:
            return None
        dtypes.append(parameter.dtype)
    return tuple(dtypes)


_S3GEN_CHILDREN = ("tokenizer", "speaker_encoder", "flow")


def _s3gen_children(s3gen: Any) -> tuple[Any, ...]:
    """S3Gen's tokenizer, speaker encoder and flow (``None`` where missing).

    Read from its submodules, without ``nn.Module.__getattr__``'s µs for each.
    """
    attributes = s3gen.__dict__
    children = attributes.get("_modules")
    if children is not None:
        found = (children.get("tokenizer"), children.get("speaker_encoder"), children.get("flow"))
        # An instance attribute of the same name would shadow a submodule.
        shadowed = (
            "tokenizer" in attributes or "speaker_encoder" in attributes or "flow" in attributes
        )
        if None not in found and not shadowed:
            return found
    return tuple(getattr(s3gen, name, None) for name in _S3GEN_CHILDREN)


def _dtype_modules(model: Any) -> list[tuple[str, torch.nn.Module]]:
    """The modules whose parameter dtype preparation computes in.

    Those whose weights it reads, and S3Gen's flow: ``S3Gen.dtype`` is the
    flow's dtype, and ``embed_ref`` casts the clip and its mels to it.
    """
    modules = preparation_modules(model)
    flow = getattr(model.s3gen, "flow", None)
    if flow is not None:
        modules.append(("s3gen.flow", flow))
    return modules


def _first_parameters(model: Any) -> tuple[tuple[str, ...], tuple[torch.Tensor, ...]]:
    """One parameter of each dtype module, remembered per module set."""
    modules = _dtype_modules(model)
    identity = tuple(module for _, module in modules)
    memo = model.__dict__.get(_PARAMETERS_MEMO_ATTR)
    if memo is None or not same_objects(memo[0], identity) or _dtypes(memo[2]) is None:
        names = tuple(name for name, _ in modules)
        firsts = tuple(_first_parameter(module) for _, module in modules)
        memo = (identity, (names, tuple(p for _, _, p in firsts)), firsts)
        model.__dict__[_PARAMETERS_MEMO_ATTR] = memo
    return memo[1]  # type: ignore[no-any-return]


def _first_parameter(module: torch.nn.Module) -> tuple[torch.nn.Module, str, torch.Tensor]:
    """A module's first parameter, with the submodule that holds it and its name there."""
    name, parameter = next(iter(module.named_parameters()))
    owner_path, _, leaf = name.rpartition(".")
    return (module.get_submodule(owner_path) if owner_path else module), leaf, parameter
