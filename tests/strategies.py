"""Hypothesis strategies for keys and entries.

Tensors are built from raw bytes, so every bit pattern (NaNs, negative zeros,
subnormals) turns up, and some are permuted views of contiguous storage, as
``prompt_feat`` is upstream.
"""

from __future__ import annotations

import math
import string

import torch
from hypothesis import strategies as st

from cached_tts._entry import Entry
from cached_tts._keys import SCHEMA_VERSION, EntryKey

__all__ = ["DTYPES", "entries", "entry_keys", "field_names", "tensors"]

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

_PREFIXES = ("t3", "gen", "ref")

field_names = st.builds(
    "{}.{}".format,
    st.sampled_from(_PREFIXES),
    st.text(string.ascii_lowercase + string.digits + "_", min_size=1, max_size=12),
)


@st.composite
def tensors(
    draw: st.DrawFn,
    *,
    dtypes: tuple[torch.dtype, ...] = DTYPES,
    max_dims: int = 3,
    max_side: int = 4,
) -> torch.Tensor:
    """A small tensor of any stored dtype: contiguous, or a permuted view of one."""
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(st.lists(st.integers(0, max_side), max_size=max_dims))
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
def entries(draw: st.DrawFn, *, max_tensors: int = 4, max_absent: int = 3) -> Entry:
    """An entry of a few small tensors and a few absent fields."""
    names = draw(st.lists(field_names, max_size=max_tensors + max_absent, unique=True))
    split = draw(st.integers(0, min(len(names), max_tensors)))
    present, absent = names[:split], names[split:]
    values = {name: draw(tensors()) for name in present}
    seconds = draw(st.floats(min_value=0.0, max_value=1e6, allow_nan=False))
    return Entry(values, tuple(absent), seconds)


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
