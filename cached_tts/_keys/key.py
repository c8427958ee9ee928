"""What makes two voice preparations the same.

An :class:`EntryKey` names one preparation by

* ``content``: the sha256 of the reference clip's bytes (never its path, which
  goes stale when the file is edited);
* ``weights``: a fingerprint of exactly the weights that preparation reads
  (see :mod:`cached_tts._keys.fingerprint`), so fine-tuned or other weights never
  share an entry;
* ``settings``: everything else that changes the result, such as the class,
  ``ENC_COND_LEN``/``DEC_COND_LEN``, the speech prompt length, extra call
  arguments (Turbo's ``norm_loudness``), the device type, the dtypes of the
  modules preparation runs (S3Gen's own included) and of T3 (forks build
  ``emotion_adv`` in it), the structure of the former and the
  numeric modes in force, such as autocast (see :mod:`cached_tts._keys.modes`),
  and the versions of the code that decodes, resamples, normalises and embeds
  the clip (see :mod:`cached_tts._keys.versions`);
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

from cached_tts._keys.fingerprint import (
    FINGERPRINT_ATTR,
    MODEL_ID_ATTR,
    SETTINGS_MEMO_ATTR,
    WEIGHTS_MEMO_ATTR,
    same_objects,
)
from cached_tts._keys.modes import (
    mode_settings,
    module_structure,
    numeric_modes,
    structure_generation,
)
from cached_tts._keys.versions import library_versions

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
SCHEMA_VERSION = 3


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
#
# One definition: settings_state reads everything the settings are made of,
# and preparation_settings renders a state's values, every one of them, into
# the key's settings. The remembered-call fast path (cached_tts._wrapping.voice)
# compares whole states, so a part added to the state is in both paths.

# A state's first parts name what the fingerprint was read from; the rest are
# its values, rendered into the settings by _render in this order.
_IDENTITY_PARTS = 4
# T3 (last) is read for its dtype only: forks build emotion_adv, or their
# whole T3Cond, in T3's dtype, which a restore must give back.
_DTYPE_MODULES = ("ve", "s3gen.tokenizer", "s3gen.speaker_encoder", "s3gen.flow", "t3")
# The modules whose structure is named: S3Gen's flow and T3 change nothing of it.
_STRUCTURE_MODULES = 3


def settings_state(model: Any) -> tuple[Any, ...]:
    """Everything ``model``'s fingerprint and preparation settings are read from.

    Equal states (compared with ``==``, which holds for the same objects)
    give the same :func:`model_fingerprint` and :func:`preparation_settings`
    for the same method and arguments. The first parts are the fingerprint's
    sources (the ``model_id``, the pinned checkpoint fingerprint, the weights
    memo, each replaced by :func:`refresh_fingerprint`) and the module
    objects; the others are the values the settings are rendered from: the
    dtype of one parameter of each module and of T3 (``.half()`` and
    ``.to()`` convert parameters in place), the modules' structure
    (:func:`~cached_tts._keys.modes.module_structure`), the prompt lengths, the
    device and the numeric modes in force in this thread
    (:func:`~cached_tts._keys.modes.numeric_modes`). Holds no tensor, whose ``==``
    compares values.
    """
    attributes = model.__dict__
    # Read here without building lists: this runs on every repeated call, so
    # it is written for speed.
    t3 = getattr(model, "t3", None)
    modules = (getattr(model, "ve", None), *_s3gen_children(model.s3gen), t3)
    generation = structure_generation()
    memo = attributes.get(SETTINGS_MEMO_ATTR)
    dtypes = None
    if memo is not None and memo[0] == generation and same_objects(memo[1], modules):
        dtypes = _dtypes(memo[2])
    if dtypes is None:
        memo = _state_memo(modules, generation, memo)
        attributes[SETTINGS_MEMO_ATTR] = memo
        dtypes = memo[3]
    device = str(model.device)
    return (
        attributes.get(MODEL_ID_ATTR),
        attributes.get(FINGERPRINT_ATTR),
        attributes.get(WEIGHTS_MEMO_ATTR),
        modules,
        # The values: each is rendered into the settings by _render.
        memo[4],
        dtypes,
        memo[5][1],
        getattr(model, "ENC_COND_LEN", None),
        getattr(model, "DEC_COND_LEN", None),
        None if t3 is None else t3.hp.speech_cond_prompt_len,
        device,
        numeric_modes(device),
    )


def _state_memo(
    modules: tuple[Any, ...], generation: int, before: tuple[Any, ...] | None
) -> tuple[Any, ...]:
    """What a state remembers of its modules until torch registers anything anew."""
    held = [module for module in modules if module is not None]
    firsts = tuple(_first_parameter(module) for module in held)
    names = tuple(
        name for name, module in zip(_DTYPE_MODULES, modules, strict=True) if module is not None
    )
    structure = module_structure(
        [module for module in modules[:_STRUCTURE_MODULES] if module is not None],
        None if before is None else before[5],
    )
    dtypes = tuple(parameter.dtype for _, _, parameter in firsts)
    return (generation, modules, firsts, dtypes, names, structure)


def preparation_settings(
    model: Any, method: str, extra: Mapping[str, object], state: tuple[Any, ...] | None = None
) -> tuple[tuple[str, str], ...]:
    """The settings of ``model`` that change what preparing a voice computes.

    ``method`` names the upstream function that prepares; ``extra`` holds the
    call's arguments other than the clip and the exaggeration. Rendered from
    ``state`` (:func:`settings_state`, read now if not given), so the key and
    the remembered calls that compare states can never disagree.
    """
    if state is None:
        state = settings_state(model)
    return _settings(method, tuple(extra.items()), state[_IDENTITY_PARTS:])


@lru_cache(maxsize=256)
def _settings(
    method: str, extra: tuple[tuple[str, object], ...], values: tuple[Any, ...]
) -> tuple[tuple[str, str], ...]:
    settings = {"method": method, **_render(values)}
    for name, value in extra:
        settings[f"arg:{name}"] = repr(value)
    settings.update(library_versions())
    return tuple(sorted(settings.items()))


def _render(values: tuple[Any, ...]) -> dict[str, str]:
    # Unpacked strictly: a value added to settings_state and not rendered here
    # fails every lookup at once instead of being left out of the key.
    names, dtypes, structure, enc_len, dec_len, prompt_len, device, modes = values
    settings = {
        "device": device.partition(":")[0],
        "dtype": ",".join(f"{n}={d}" for n, d in zip(names, dtypes, strict=True)),
        "modules": structure,
    }
    for name, value in (
        ("ENC_COND_LEN", enc_len),
        ("DEC_COND_LEN", dec_len),
        ("speech_cond_prompt_len", prompt_len),
    ):
        if value is not None:
            settings[name] = str(value)
    settings.update(mode_settings(modes))
    return settings


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


def _first_parameter(module: torch.nn.Module) -> tuple[torch.nn.Module, str, torch.Tensor]:
    """A module's first parameter, with the submodule that holds it and its name there."""
    name, parameter = next(iter(module.named_parameters()))
    owner_path, _, leaf = name.rpartition(".")
    return (module.get_submodule(owner_path) if owner_path else module), leaf, parameter
