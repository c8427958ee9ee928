"""The bytes of a stored entry: safetensors with a verified header.

An entry is one standard safetensors file, readable by any safetensors
reader. Its ``__metadata__`` carries

* ``format``: ``cached-tts/3``;
* ``key``: the full canonical :class:`~cached_tts._keys.key.EntryKey`;
* ``fields``, ``absent``, ``layout``: every field in upstream's order, the
  ``None`` ones among them, and the dimension order of tensors that were not
  contiguous (``prompt_feat`` is a transposed view), so that a loaded tensor
  has the very strides it had;
* ``source``, ``created``, ``prepare_seconds``: what ``ls`` and the stats show;
* only where the preparation did not do as upstream does, ``exaggeration_dtype``
  (the dtype it built ``emotion_adv`` in) and ``returns`` (``"state"``: the
  method returned what it set), so a hit builds and returns what it did;
* ``checksum``: sha256 over the canonical JSON of the whole header (without
  the checksum) followed by the tensor bytes.

Because the checksum covers the header too, a flipped bit anywhere in the
file either breaks parsing or fails the checksum. Nothing is ever unpickled.
A checksum proves only that the file is as its writer made it; a forged or
buggy header with a matching checksum is checked in full as well (every
structure, and the fields of :mod:`cached_tts._entries.schema`), so it is damage too.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from cached_tts._entries.entry import Entry, UncacheableError, schema_problem_of
from cached_tts._entries.header import (
    DTYPES,
    FORMAT,
    RETURNS_STATE,
    EntryInfo,
    PlacedTensor,
    checksum,
    parse,
    split,
)
from cached_tts._exceptions import DamagedEntryError
from cached_tts._keys.key import EntryKey

if TYPE_CHECKING:
    import torch

__all__ = ["ENTRY_SUFFIX", "FORMAT", "EntryInfo", "check", "decode", "encode", "stride_order"]

#: The file name ending of an entry, in a folder or a bucket: it is a safetensors file.
ENTRY_SUFFIX = ".safetensors"

# The same names in numpy, which has no bfloat16.
_NUMPY_DTYPES: dict[str, str] = {
    name: torch_name for name, (torch_name, _) in DTYPES.items() if name != "BF16"
}


def encode(key: EntryKey, entry: Entry, *, source: str, created: float) -> bytes:
    """Serialize ``entry`` under ``key``.

    Raises :class:`~cached_tts._entries.entry.UncacheableError` for an entry that
    :func:`decode` would refuse: one that is not a whole preparation.

    >>> import torch
    >>> key = EntryKey(content="c", weights="w", settings=())
    >>> entry = Entry({"ref.prompt_token": torch.zeros(1, 2, dtype=torch.int64),
    ...                "ref.prompt_token_len": torch.tensor([2]),
    ...                "ref.prompt_feat": torch.arange(8.0).reshape(1, 2, 4).transpose(1, 2),
    ...                "ref.embedding": torch.ones(1, 3)}, absent=("ref.prompt_feat_len",))
    >>> data = encode(key, entry, source="voice.wav", created=0.0)
    >>> restored, info = decode(data, key)
    >>> restored.tensors["ref.prompt_feat"].stride(), info.source
    ((8, 1, 4), 'voice.wav')
    """
    from safetensors.torch import save as safetensors_save

    problem = schema_problem_of(entry)
    if problem is not None:
        raise UncacheableError(problem)
    tensors: dict[str, torch.Tensor] = {}
    layout: dict[str, list[int]] = {}
    for name, tensor in entry.tensors.items():
        order = _memory_order(tensor)
        tensors[name] = tensor.detach().to("cpu").permute(order).contiguous()
        if order != list(range(tensor.dim())):
            layout[name] = order
    metadata = {
        "format": FORMAT,
        "key": key.canonical,
        # Every field in captured order (upstream's dict order); absent ones are None.
        "fields": json.dumps(list(entry.fields)),
        "absent": json.dumps(list(entry.absent)),
        "layout": json.dumps(layout, sort_keys=True),
        # Paths may hold undecodable bytes (surrogate escapes); safetensors wants UTF-8.
        "source": source.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
        "created": repr(created),
        "prepare_seconds": repr(entry.prepare_seconds),
    }
    # Written only when they differ from upstream's ways: entries of upstream
    # classes keep the bytes they always had.
    if entry.exaggeration_dtype is not None:
        metadata["exaggeration_dtype"] = entry.exaggeration_dtype
    if entry.returns_state:
        metadata["returns"] = RETURNS_STATE
    # The tensor bytes do not depend on the metadata, so a first pass yields
    # exactly the header and body that the checksum must cover.
    header, body = split(safetensors_save(tensors, metadata=metadata))
    metadata["checksum"] = checksum(header, body)
    return safetensors_save(tensors, metadata=metadata)


def decode(
    data: bytes | bytearray, key: EntryKey | None, *, owned: bool = False
) -> tuple[Entry, EntryInfo]:
    """Parse and verify an entry; ``key``, when given, must be the stored one.

    Raises :class:`DamagedEntryError` for anything short of a whole, unaltered
    entry stored under ``key`` that holds exactly the fields of a preparation
    (see :mod:`cached_tts._entries.schema`). Nothing else is raised: every structure a
    header may hold is checked before any tensor or object is built from it.

    ``owned`` says that ``data`` is a ``bytearray`` no one else holds (a file
    just read): the tensors then share it instead of a copy of its body.
    """
    parsed = parse(data, key)
    if owned and isinstance(data, bytearray):
        buffer, base = data, len(data) - len(parsed.body)
    else:
        buffer, base = bytearray(parsed.body), 0  # one writable copy that the tensors share
    tensors = {name: _tensor(spec, buffer, base) for name, spec in parsed.tensors.items()}
    info = parsed.info
    entry = Entry(tensors, parsed.absent, info.prepare_seconds, parsed.order, *parsed.restoring)
    return entry, info


def check(data: bytes | bytearray, digest: str) -> tuple[EntryInfo | None, str | None]:
    """What a stored entry says of itself, and why it is damaged (``None`` if whole).

    ``digest`` is the key digest it is stored under (its file or Redis name);
    a whole entry stored under another name is damaged too. It runs every
    check :func:`decode` runs, without building tensors (nor importing torch).
    """
    try:
        info = parse(data, None).info
    except DamagedEntryError as exc:
        return None, str(exc)
    if info.key.digest != digest:
        return info, "its name does not match the stored key"
    return info, None


def stride_order(tensor: torch.Tensor) -> list[int]:
    """Dimensions from the largest stride to the smallest, ties in logical order.

    >>> import torch
    >>> stride_order(torch.zeros(2, 3, 4).transpose(1, 2))
    [0, 2, 1]
    """
    return sorted(range(tensor.dim()), key=lambda d: (-tensor.stride()[d], d))


def _memory_order(tensor: torch.Tensor) -> list[int]:
    """Dimensions from outermost to innermost in memory."""
    order = stride_order(tensor)
    if tensor.permute(order).is_contiguous():
        return order
    return list(range(tensor.dim()))  # overlapping or gapped: keep logical order


def _tensor(spec: PlacedTensor, buffer: bytearray, base: int) -> torch.Tensor:
    """A tensor on ``buffer`` (its body at ``base``) as a checked header says (it cannot fail)."""
    import numpy as np
    import torch

    count = math.prod(spec.shape)
    numpy_dtype = _NUMPY_DTYPES.get(spec.dtype)
    if count == 0:
        tensor = torch.empty(spec.shape, dtype=getattr(torch, DTYPES[spec.dtype][0]))
    elif numpy_dtype is None:  # bfloat16: numpy has none
        tensor = torch.frombuffer(
            buffer,
            dtype=getattr(torch, DTYPES[spec.dtype][0]),
            count=count,
            offset=base + spec.begin,
        ).reshape(spec.shape)
    else:
        # A numpy view, then one torch.from_numpy: fewer and cheaper calls than
        # torch.frombuffer, reshape and permute, for the very same tensor.
        array = np.frombuffer(buffer, dtype=numpy_dtype, count=count, offset=base + spec.begin)
        array = array.reshape(spec.shape)
        if spec.order is not None:
            array = array.transpose(_inverse(spec.order))
        return torch.from_numpy(array)
    if spec.order is None:
        return tensor
    return tensor.permute(_inverse(spec.order))


def _inverse(order: tuple[int, ...]) -> list[int]:
    """The permutation that undoes ``order``: the body holds tensors in memory order."""
    return sorted(range(len(order)), key=order.__getitem__)
