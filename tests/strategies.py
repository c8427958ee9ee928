"""Hypothesis strategies for keys and entries, and helpers that build or forge entries.

Tensors are built from raw bytes, so every bit pattern (NaNs, negative zeros,
subnormals) turns up, and some are permuted views of contiguous storage, as
``prompt_feat`` is upstream.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from typing import Any

import torch
from hypothesis import strategies as st

from cached_tts._entries.entry import Entry
from cached_tts._entries.schema import LAYOUTS
from cached_tts._keys.key import SCHEMA_VERSION, EntryKey

__all__ = [
    "DTYPES",
    "FLOAT_DTYPES",
    "INT_DTYPES",
    "entries",
    "entry_keys",
    "forge",
    "header_of",
    "tensors",
    "voice_entry",
]

#: Every dtype the disk format stores.
DTYPES = (
    torch.float64,
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.bool,
)
#: The dtypes a floating point field of a preparation may have, and an integer one.
FLOAT_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


@st.composite
def tensors(
    draw: st.DrawFn,
    *,
    dtypes: tuple[torch.dtype, ...] = DTYPES,
    max_dims: int = 3,
    max_side: int = 4,
    dims: int | None = None,
) -> torch.Tensor:
    """A small tensor of any stored dtype: contiguous, or a permuted view of one."""
    dtype = draw(st.sampled_from(dtypes))
    if dims is None:
        shape = draw(st.lists(st.integers(0, max_side), max_size=max_dims))
    else:
        shape = draw(st.lists(st.integers(0, max_side), min_size=dims, max_size=dims))
    count = math.prod(shape)
    itemsize = torch.empty((), dtype=dtype).element_size()
    if dtype == torch.bool:
        raw = bytes(draw(st.lists(st.integers(0, 1), min_size=count, max_size=count)))
    else:
        raw = draw(st.binary(min_size=count * itemsize, max_size=count * itemsize))
    if count == 0:
        tensor = torch.empty(shape, dtype=dtype)
    else:
        tensor = torch.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)
    order = draw(st.permutations(range(len(shape))))
    return tensor.permute(order)


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    """A whole preparation (a ``Conditionals`` or a VC ``ref_dict``) of small tensors.

    Optional fields are absent or not, and fields come in any order.
    """
    layout = draw(st.sampled_from(LAYOUTS))
    values: dict[str, torch.Tensor] = {}
    absent: list[str] = []
    for name, rule in layout.items():
        if rule.optional and draw(st.booleans()):
            absent.append(name)
            continue
        dtypes = FLOAT_DTYPES if rule.floating else INT_DTYPES
        dims = rule.rank if rule.rank is not None else draw(st.integers(0, 3))
        values[name] = draw(tensors(dtypes=dtypes, dims=dims))
    order = tuple(draw(st.permutations(list(layout))))
    seconds = draw(st.floats(min_value=0.0, max_value=1e6, allow_nan=False))
    return Entry(values, tuple(absent), seconds, order)


def voice_entry(
    value: float = 1.0, *, floats: int = 8, vc: bool = False, prepare_seconds: float = 0.0
) -> Entry:
    """A small whole preparation whose values are all ``value`` (a voice named by it).

    Shaped as upstream shapes one, with ``prompt_feat`` a transposed view and
    ``prompt_feat_len`` (and ``t3.clap_emb``, ``t3.cond_prompt_speech_emb``)
    absent, in upstream's field order. ``floats`` sizes the speaker embedding.
    """
    prefix = "ref" if vc else "gen"
    reference = {
        f"{prefix}.prompt_token": torch.full((1, 4), int(value), dtype=torch.int64),
        f"{prefix}.prompt_token_len": torch.tensor([4]),
        f"{prefix}.prompt_feat": torch.full((1, 3, 8), value).transpose(1, 2),
        f"{prefix}.embedding": torch.full((1, 4), value),
    }
    order = [*reference]
    order.insert(3, f"{prefix}.prompt_feat_len")
    absent = [f"{prefix}.prompt_feat_len"]
    t3: dict[str, torch.Tensor] = {}
    if not vc:
        t3 = {
            "t3.speaker_emb": torch.full((1, floats), value),
            "t3.cond_prompt_speech_tokens": torch.full((1, 3), int(value), dtype=torch.int64),
        }
        order = [
            "t3.speaker_emb",
            "t3.clap_emb",
            "t3.cond_prompt_speech_tokens",
            "t3.cond_prompt_speech_emb",
            *order,
        ]
        absent = ["t3.clap_emb", "t3.cond_prompt_speech_emb", *absent]
    return Entry({**t3, **reference}, tuple(absent), prepare_seconds, tuple(order))


_setting_names = st.text(min_size=1, max_size=16)
_setting_values = st.text(max_size=16)


def entry_keys() -> st.SearchStrategy[EntryKey]:
    """Keys with sorted, uniquely named settings, as ``preparation_settings`` makes them."""
    settings = st.dictionaries(_setting_names, _setting_values, max_size=5).map(
        lambda d: tuple(sorted(d.items()))
    )
    return st.builds(
        EntryKey,
        content=st.text(max_size=64),
        weights=st.text(max_size=32),
        settings=settings,
        schema=st.sampled_from((SCHEMA_VERSION, SCHEMA_VERSION + 1)),
    )


def header_of(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The parsed safetensors header, and the tensor bytes after it."""
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def forge(data: bytes, change: Callable[[dict[str, Any]], object]) -> bytes:
    """Rewrite an entry's header with ``change`` and a checksum that matches it."""
    header, body = header_of(data)
    change(header)
    metadata = header.get("__metadata__")
    if isinstance(metadata, dict):  # otherwise there is nowhere to put a checksum
        metadata.pop("checksum", None)
        canonical = json.dumps(header, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode())
        digest.update(body)
        metadata["checksum"] = digest.hexdigest()
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + body
