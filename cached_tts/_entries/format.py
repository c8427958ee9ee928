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

import functools
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from cached_tts._entries.entry import Entry, UncacheableError, schema_problem_of
from cached_tts._entries.schema import FLOAT_DTYPES, FieldSpec, schema_problem
from cached_tts._exceptions import DamagedEntryError
from cached_tts._keys.key import EntryKey

if TYPE_CHECKING:
    import torch

__all__ = ["ENTRY_SUFFIX", "FORMAT", "EntryInfo", "check", "decode", "encode"]

FORMAT = "cached-tts/3"
#: The file name ending of an entry, in a folder or a bucket: it is a safetensors file.
ENTRY_SUFFIX = ".safetensors"

# safetensors starts with the header's length as a little-endian u64.
_LENGTH_BYTES = 8
_MAX_HEADER_BYTES = 1 << 20
_MAX_RANK = 8
_MAX_ELEMENTS = 1 << 40  # a voice's largest tensor has about 40,000
_PAIR = 2  # a setting's name and value; a tensor's begin and end

# safetensors dtype name -> (torch attribute, bytes per element)
_DTYPES: dict[str, tuple[str, int]] = {
    "F64": ("float64", 8),
    "F32": ("float32", 4),
    "F16": ("float16", 2),
    "BF16": ("bfloat16", 2),
    "I64": ("int64", 8),
    "I32": ("int32", 4),
    "I16": ("int16", 2),
    "I8": ("int8", 1),
    "U8": ("uint8", 1),
    "BOOL": ("bool", 1),
}
# The same names in numpy, which has no bfloat16.
_NUMPY_DTYPES: dict[str, str] = {
    name: torch_name for name, (torch_name, _) in _DTYPES.items() if name != "BF16"
}
_TENSOR_KEYS = frozenset({"dtype", "shape", "data_offsets"})
_LIMIT = 2**62  # no size or offset reaches it; sums and products of two stay in 64 bits


@dataclass(frozen=True)
class EntryInfo:
    """What an entry's header says about it."""

    key: EntryKey
    source: str
    created: float
    prepare_seconds: float


class _Tensor(NamedTuple):
    """One tensor as the header places it in the body (a tuple: built six times a hit)."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int
    order: tuple[int, ...] | None  # memory order when not the logical one


@dataclass(frozen=True)
class _Parsed:
    """A header that passed every check: building the entry from it cannot fail."""

    info: EntryInfo
    order: tuple[str, ...]
    tensors: dict[str, _Tensor]
    absent: tuple[str, ...]
    body: memoryview
    #: The entry's exaggeration_dtype and returns_state.
    restoring: tuple[str | None, bool] = (None, False)


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
        metadata["returns"] = _RETURNS_STATE
    # The tensor bytes do not depend on the metadata, so a first pass yields
    # exactly the header and body that the checksum must cover.
    header, body = _split(safetensors_save(tensors, metadata=metadata))
    metadata["checksum"] = _checksum(header, body)
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
    parsed = _parse(data, key)
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
        info = _parse(data, None).info
    except DamagedEntryError as exc:
        return None, str(exc)
    if info.key.digest != digest:
        return info, "its name does not match the stored key"
    return info, None


def _parse(data: bytes | bytearray, key: EntryKey | None) -> _Parsed:
    header, body = _split(data)
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict):
        raise DamagedEntryError("the header has no cached-tts metadata")
    claimed = metadata.pop("checksum", None)
    if claimed != _checksum(header, body):
        raise DamagedEntryError("the checksum does not match the contents")
    info, order, absent, layout = _read_metadata(metadata, key)
    tensors = _tensors(header, [name for name in order if name not in absent], layout, len(body))
    spec: dict[str, FieldSpec] = dict.fromkeys(absent)
    spec.update((name, (t.dtype, len(t.shape))) for name, t in tensors.items())
    problem = schema_problem(spec)
    if problem is not None:
        raise DamagedEntryError(f"the entry is not a preparation: {problem}")
    return _Parsed(info, tuple(order), tensors, tuple(absent), body, _restoring(metadata, order))


_RETURNS_STATE = "state"


def _restoring(metadata: dict[str, Any], order: tuple[str, ...]) -> tuple[str | None, bool]:
    """How a hit builds ``emotion_adv`` and what it returns, as the preparation did."""
    dtype = metadata.get("exaggeration_dtype")
    # Only a Conditionals has an emotion_adv (and always a t3.speaker_emb).
    if dtype is not None and (dtype not in FLOAT_DTYPES or "t3.speaker_emb" not in order):
        raise DamagedEntryError(f"the header's exaggeration_dtype {dtype!r} does not fit the entry")
    returns = metadata.get("returns")
    if returns not in (None, _RETURNS_STATE):
        raise DamagedEntryError(f"the header's returns {returns!r} is not {_RETURNS_STATE!r}")
    return dtype, returns is not None


def _read_metadata(
    metadata: dict[str, Any], key: EntryKey | None
) -> tuple[EntryInfo, tuple[str, ...], tuple[str, ...], Any]:
    """The entry's info, field order, absent fields and layout, as the metadata gives them."""
    if not all(isinstance(value, str) for value in metadata.values()):
        raise DamagedEntryError("the metadata holds values that are not strings")
    try:
        if metadata["format"] != FORMAT:
            raise DamagedEntryError(f"unknown format {metadata['format']!r}")
        if key is not None and metadata["key"] != key.canonical:
            raise DamagedEntryError("the entry was stored under another key")
        info = EntryInfo(
            key=key or _stored_key(metadata["key"]),
            source=metadata["source"],
            created=_finite(metadata["created"], "created"),
            prepare_seconds=_finite(metadata["prepare_seconds"], "prepare_seconds"),
        )
        order = _names(metadata["fields"], "fields")
        absent = _names(metadata["absent"], "absent")
        layout = json.loads(metadata["layout"])
    except KeyError as exc:
        raise DamagedEntryError(f"the header lacks {exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise DamagedEntryError(f"the header is inconsistent: {exc}") from exc
    if info.prepare_seconds < 0:
        raise DamagedEntryError("the header gives a negative preparation time")
    if not set(absent) <= set(order):
        raise DamagedEntryError("the header lists absent fields that are not its fields")
    return info, order, absent, layout


def _stored_key(canonical: str) -> EntryKey:
    """The key a header names, if it is exactly one this library writes."""
    try:
        stored = EntryKey.from_canonical(canonical)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise DamagedEntryError(f"the stored key is malformed: {exc}") from exc
    texts = (stored.content, stored.weights, *(part for pair in stored.settings for part in pair))
    if (
        not all(isinstance(text, str) for text in texts)
        or not all(isinstance(pair, tuple) and len(pair) == _PAIR for pair in stored.settings)
        or type(stored.schema) is not int
        or stored.canonical != canonical
    ):
        raise DamagedEntryError("the stored key is malformed")
    return stored


def _finite(text: str, name: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise DamagedEntryError(f"the header's {name} is not a finite number")
    return value


@functools.lru_cache(maxsize=64)
def _names(text: str, what: str) -> tuple[str, ...]:
    """The field names a JSON list holds, checked.

    Cached: every entry of one kind of model holds the very same lists, and
    the result is immutable (a failure raises, and is not cached).
    """
    value = json.loads(text)
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise DamagedEntryError(f"the header's {what} is not a list of names")
    if len(set(value)) != len(value):
        raise DamagedEntryError(f"the header's {what} names a field twice")
    return tuple(value)


def _tensors(
    header: Mapping[str, Any], names: list[str], layout: Any, body_length: int
) -> dict[str, _Tensor]:
    """The tensors the header places, checked to tile the body exactly as safetensors does."""
    wanted = set(names)
    if header.keys() - {"__metadata__"} != wanted:
        raise DamagedEntryError("the tensors in the file are not the entry's fields")
    if not isinstance(layout, dict) or not layout.keys() <= wanted:
        raise DamagedEntryError("the header's layout names no tensor of the entry")
    tensors = {name: _tensor_spec(name, header[name], layout.get(name)) for name in names}
    position = 0
    for spec in sorted(tensors.values(), key=_span):
        if spec.begin != position:
            raise DamagedEntryError("tensor offsets leave gaps or overlap")
        position = spec.end
    if position != body_length:
        raise DamagedEntryError("tensor offsets do not cover the body")
    return tensors


def _span(spec: _Tensor) -> tuple[int, int]:
    return spec.begin, spec.end


def _tensor_spec(name: str, info: Any, order: Any) -> _Tensor:
    if not isinstance(info, dict) or info.keys() != _TENSOR_KEYS:
        raise DamagedEntryError(f"{name}: the header does not describe a tensor")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise DamagedEntryError(f"{name}: unknown dtype {dtype!r}")
    if not _whole_numbers(shape) or len(shape) > _MAX_RANK:
        raise DamagedEntryError(f"{name}: the shape is not a list of sizes")
    # An empty tensor holds no bytes whatever its other sides, but torch must
    # still compute its strides: they must fit in 64 bits.
    elements = math.prod(shape)
    if (math.prod(max(n, 1) for n in shape) if elements == 0 else elements) > _MAX_ELEMENTS:
        raise DamagedEntryError(f"{name}: the shape is implausibly large")
    if not _whole_numbers(offsets) or len(offsets) != _PAIR:
        raise DamagedEntryError(f"{name}: the offsets are not two positions")
    begin, end = offsets
    if end - begin != elements * _DTYPES[dtype][1]:
        raise DamagedEntryError(f"{name}: the offsets do not match its shape")
    if order is not None and (
        not _whole_numbers(order) or sorted(order) != list(range(len(shape)))
    ):
        raise DamagedEntryError(f"{name}: the layout is not an order of its dimensions")
    return _Tensor(dtype, tuple(shape), begin, end, None if order is None else tuple(order))


def _whole_numbers(value: Any) -> bool:
    # bool is an int, and JSON may hold floats (even Infinity): neither is a size.
    # (map, min and max run in C: this runs three times per tensor on every hit.)
    if not isinstance(value, list):
        return False
    return not value or ({*map(type, value)} == {int} and min(value) >= 0 and max(value) < _LIMIT)


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


# json.dumps(sort_keys=True, separators=(",", ":")), made once.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def _checksum(header: Mapping[str, Any], body: memoryview) -> str:
    try:
        canonical = _CANONICAL.encode(header)
    except (ValueError, RecursionError) as exc:  # e.g. NaN keys mixed with strings
        raise DamagedEntryError(f"the header cannot be checked: {exc}") from exc
    digest = hashlib.sha256(canonical.encode())
    digest.update(body)
    return digest.hexdigest()


def _memory_order(tensor: torch.Tensor) -> list[int]:
    """Dimensions from outermost to innermost in memory."""
    order = sorted(range(tensor.dim()), key=lambda d: (-tensor.stride()[d], d))
    if tensor.permute(order).is_contiguous():
        return order
    return list(range(tensor.dim()))  # overlapping or gapped: keep logical order


def _tensor(spec: _Tensor, buffer: bytearray, base: int) -> torch.Tensor:
    """A tensor on ``buffer`` (its body at ``base``) as a checked header says (it cannot fail)."""
    import numpy as np
    import torch

    count = math.prod(spec.shape)
    numpy_dtype = _NUMPY_DTYPES.get(spec.dtype)
    if count == 0:
        tensor = torch.empty(spec.shape, dtype=getattr(torch, _DTYPES[spec.dtype][0]))
    elif numpy_dtype is None:  # bfloat16: numpy has none
        tensor = torch.frombuffer(
            buffer,
            dtype=getattr(torch, _DTYPES[spec.dtype][0]),
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
