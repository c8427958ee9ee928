"""The bytes of a stored entry: safetensors with a verified header.

An entry is one standard safetensors file, readable by any safetensors
reader. Its ``__metadata__`` carries

* ``format``: ``cached-tts/1``;
* ``key``: the full canonical :class:`~cached_tts._keys.EntryKey`;
* ``fields``, ``absent``, ``layout``: field order, ``None`` fields, and the
  dimension order of tensors that were not contiguous (``prompt_feat`` is a
  transposed view), so that a loaded tensor has the very strides it had;
* ``source``, ``created``, ``prepare_seconds``: what ``ls`` and the stats show;
* ``checksum``: sha256 over the canonical JSON of the whole header (without
  the checksum) followed by the tensor bytes.

Because the checksum covers the header too, a flipped bit anywhere in the
file either breaks parsing or fails the checksum. Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from safetensors.torch import save as safetensors_save

from cached_tts._entry import Entry
from cached_tts._exceptions import DamagedEntryError
from cached_tts._keys import EntryKey

__all__ = ["FORMAT", "EntryInfo", "check", "decode", "encode"]

FORMAT = "cached-tts/1"

# safetensors starts with the header's length as a little-endian u64.
_LENGTH_BYTES = 8
_MAX_HEADER_BYTES = 1 << 20

_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


@dataclass(frozen=True)
class EntryInfo:
    """What an entry's header says about it."""

    key: EntryKey
    source: str
    created: float
    prepare_seconds: float


def encode(key: EntryKey, entry: Entry, *, source: str, created: float) -> bytes:
    """Serialize ``entry`` under ``key``.

    >>> key = EntryKey(content="c", weights="w", settings=())
    >>> entry = Entry({"gen.embedding": torch.arange(4.0).reshape(2, 2).t()})
    >>> data = encode(key, entry, source="voice.wav", created=0.0)
    >>> restored, info = decode(data, key)
    >>> restored.tensors["gen.embedding"].stride(), info.source
    ((1, 2), 'voice.wav')
    """
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
        "fields": json.dumps(list(entry.tensors)),
        "absent": json.dumps(list(entry.absent)),
        "layout": json.dumps(layout, sort_keys=True),
        # Paths may hold undecodable bytes (surrogate escapes); safetensors wants UTF-8.
        "source": source.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
        "created": repr(created),
        "prepare_seconds": repr(entry.prepare_seconds),
    }
    # The tensor bytes do not depend on the metadata, so a first pass yields
    # exactly the header and body that the checksum must cover.
    header, body = _split(safetensors_save(tensors, metadata=metadata))
    metadata["checksum"] = _checksum(header, body)
    return safetensors_save(tensors, metadata=metadata)


def decode(data: bytes | bytearray, key: EntryKey | None) -> tuple[Entry, EntryInfo]:
    """Parse and verify an entry; ``key``, when given, must be the stored one.

    Raises :class:`DamagedEntryError` for anything short of a whole, unaltered
    entry stored under ``key``.
    """
    header, body = _split(data)
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict):
        raise DamagedEntryError("the header has no cached-tts metadata")
    claimed = metadata.pop("checksum", None)
    if claimed != _checksum(header, body):
        raise DamagedEntryError("the checksum does not match the contents")
    try:
        if metadata["format"] != FORMAT:
            raise DamagedEntryError(f"unknown format {metadata['format']!r}")
        if key is not None and metadata["key"] != key.canonical:
            raise DamagedEntryError("the entry was stored under another key")
        info = EntryInfo(
            key=key or EntryKey.from_canonical(metadata["key"]),
            source=metadata["source"],
            created=float(metadata["created"]),
            prepare_seconds=float(metadata["prepare_seconds"]),
        )
        layout = json.loads(metadata["layout"])
        buffer = bytearray(body)  # one writable copy that the tensors share
        tensors = {
            name: _tensor(header[name], buffer, layout.get(name))
            for name in json.loads(metadata["fields"])
        }
        absent = tuple(json.loads(metadata["absent"]))
    except DamagedEntryError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise DamagedEntryError(f"the header is inconsistent: {exc}") from exc
    return Entry(tensors, absent, info.prepare_seconds), info


def check(data: bytes | bytearray, digest: str) -> tuple[EntryInfo | None, str | None]:
    """What a stored entry says of itself, and why it is damaged (``None`` if whole).

    ``digest`` is the key digest it is stored under (its file or Redis name);
    a whole entry stored under another name is damaged too.
    """
    try:
        info = decode(data, None)[1]
    except DamagedEntryError as exc:
        return None, str(exc)
    if info.key.digest != digest:
        return info, "its name does not match the stored key"
    return info, None


def _split(data: bytes | bytearray) -> tuple[dict[str, Any], memoryview]:
    if len(data) < _LENGTH_BYTES:
        raise DamagedEntryError(f"the entry is {len(data)} bytes long, too short to hold a header")
    length = int.from_bytes(data[:_LENGTH_BYTES], "little")
    if length > min(_MAX_HEADER_BYTES, len(data) - _LENGTH_BYTES):
        raise DamagedEntryError("the header length points past the end of the entry")
    try:
        header = json.loads(bytes(data[_LENGTH_BYTES : _LENGTH_BYTES + length]))
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        raise DamagedEntryError(f"the header is not valid JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise DamagedEntryError("the header is not a JSON object")
    return header, memoryview(data)[_LENGTH_BYTES + length :]


def _checksum(header: Mapping[str, Any], body: memoryview) -> str:
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode())
    digest.update(body)
    return digest.hexdigest()


def _memory_order(tensor: torch.Tensor) -> list[int]:
    """Dimensions from outermost to innermost in memory."""
    order = sorted(range(tensor.dim()), key=lambda d: (-tensor.stride()[d], d))
    if tensor.permute(order).is_contiguous():
        return order
    return list(range(tensor.dim()))  # overlapping or gapped: keep logical order


def _tensor(info: Mapping[str, Any], buffer: bytearray, order: list[int] | None) -> torch.Tensor:
    dtype = _DTYPES[info["dtype"]]
    shape = [int(n) for n in info["shape"]]
    begin, end = (int(n) for n in info["data_offsets"])
    count = math.prod(shape)
    itemsize = dtype.itemsize
    if not 0 <= begin <= end <= len(buffer) or end - begin != count * itemsize:
        raise DamagedEntryError("tensor offsets do not match its shape")
    if count == 0:
        tensor = torch.empty(shape, dtype=dtype)
    else:
        tensor = torch.frombuffer(buffer, dtype=dtype, count=count, offset=begin).reshape(shape)
    if order is None:
        return tensor
    inverse = sorted(range(len(order)), key=order.__getitem__)
    return tensor.permute(inverse)
