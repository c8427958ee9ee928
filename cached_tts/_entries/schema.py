"""What a cached preparation holds: the exact fields of each kind of model.

An entry is one of two layouts, named as :mod:`cached_tts._entries.entry` captures them:

* a ``Conditionals`` (TTS, multilingual, Turbo): ``t3.<field>`` for every
  field of ``T3Cond`` but ``emotion_adv``, and ``gen.<key>`` for the five keys
  of the reference dict that ``S3Gen.embed_ref`` returns;
* a VC ``ref_dict``: ``ref.<key>`` for the same five keys.

Each field is a tensor of a known kind (floating point or integer) and rank,
or, where upstream may leave it out, ``None``. Capture refuses anything else
(it is run uncached), and reading refuses it as damage, so what a lookup
restores always builds the very objects upstream builds. The check works on
safetensors dtype names and shapes, so the command line can run it without
importing torch.

>>> spec = {"ref.prompt_token": ("I64", 2), "ref.prompt_token_len": ("I64", 1),
...         "ref.prompt_feat": ("F32", 3), "ref.prompt_feat_len": None,
...         "ref.embedding": ("F32", 2)}
>>> schema_problem(spec) is None
True
>>> schema_problem({**spec, "ref.embedding": ("I64", 2)})
'ref.embedding is I64, not a floating point tensor'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["FLOAT_DTYPES", "INT_DTYPES", "LAYOUTS", "FieldRule", "FieldSpec", "schema_problem"]

FLOAT_DTYPES: Final = frozenset({"F64", "F32", "F16", "BF16"})
INT_DTYPES: Final = frozenset({"I64", "I32", "I16", "I8", "U8"})

#: A stored field: its safetensors dtype name and its rank; ``None`` if absent.
FieldSpec = tuple[str, int] | None


@dataclass(frozen=True)
class FieldRule:
    """What one stored field must be."""

    floating: bool
    rank: int | None  # None: upstream never sets it, so any rank up to _MAX_RANK
    optional: bool


_MAX_RANK = 4

# T3Cond's fields in declaration order, without emotion_adv (rebuilt per call).
_T3: Final = {
    "speaker_emb": FieldRule(floating=True, rank=2, optional=False),
    "clap_emb": FieldRule(floating=True, rank=None, optional=True),
    "cond_prompt_speech_tokens": FieldRule(floating=False, rank=2, optional=True),
    "cond_prompt_speech_emb": FieldRule(floating=True, rank=None, optional=True),
}
# The keys of S3Gen.embed_ref's dict, for Conditionals.gen and VC's ref_dict.
_REFERENCE: Final = {
    "prompt_token": FieldRule(floating=False, rank=2, optional=False),
    "prompt_token_len": FieldRule(floating=False, rank=1, optional=False),
    "prompt_feat": FieldRule(floating=True, rank=3, optional=False),
    "prompt_feat_len": FieldRule(floating=False, rank=None, optional=True),
    "embedding": FieldRule(floating=True, rank=2, optional=False),
}

#: The layouts an entry may have: field name to its rule, in upstream's order.
LAYOUTS: Final = (
    {
        **{f"t3.{name}": spec for name, spec in _T3.items()},
        **{f"gen.{name}": spec for name, spec in _REFERENCE.items()},
    },
    {f"ref.{name}": spec for name, spec in _REFERENCE.items()},
)


def schema_problem(fields: Mapping[str, FieldSpec]) -> str | None:
    """Why ``fields`` is not a preparation; ``None`` if it is one.

    ``fields`` maps each name to its dtype name and rank, or to ``None`` if absent.
    """
    names = set(fields)
    layout = next((layout for layout in LAYOUTS if names == set(layout)), None)
    if layout is None:
        return f"its fields {sorted(names)} are neither a Conditionals nor a VC ref_dict"
    for name, expected in layout.items():
        problem = _field_problem(name, fields[name], expected)
        if problem is not None:
            return problem
    return None


def _field_problem(name: str, found: FieldSpec, expected: FieldRule) -> str | None:
    if found is None:
        return None if expected.optional else f"{name} is missing"
    dtype, rank = found
    kinds = FLOAT_DTYPES if expected.floating else INT_DTYPES
    if dtype not in kinds:
        kind = "floating point" if expected.floating else "integer"
        return f"{name} is {dtype}, not a {kind} tensor"
    if expected.rank is not None and rank != expected.rank:
        return f"{name} has {rank} dimensions, not {expected.rank}"
    if rank > _MAX_RANK:
        return f"{name} has {rank} dimensions, more than {_MAX_RANK}"
    return None
