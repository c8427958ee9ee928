"""The bytes of a stored entry: a bitwise round trip, and every damage refused."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save
from strategies import entries, entry_keys, forge, header_of, voice_entry

from cached_tts._entries.entry import Entry, UncacheableError
from cached_tts._entries.format import FORMAT, decode, encode
from cached_tts._exceptions import DamagedEntryError
from cached_tts._keys.key import SCHEMA_VERSION, EntryKey

KEY = EntryKey(content="c" * 64, weights="w", settings=(("device", "cpu"),))


def assert_bitwise_equal(actual, expected, where):
    assert actual.dtype == expected.dtype, where
    assert actual.shape == expected.shape, where
    if expected.numel() > 0:
        # A dimension of size 1 has no meaningful stride; every other one must match.
        for dim, size in enumerate(expected.shape):
            if size > 1:
                assert actual.stride(dim) == expected.stride(dim), where
    as_bytes = lambda t: t.contiguous().reshape(-1).view(torch.uint8)  # noqa: E731
    assert torch.equal(as_bytes(actual), as_bytes(expected)), where


def assert_same_entry(actual, expected):
    assert actual.fields == expected.fields
    assert actual.absent == expected.absent
    assert actual.prepare_seconds == expected.prepare_seconds
    for name, tensor in expected.tensors.items():
        assert_bitwise_equal(actual.tensors[name], tensor, name)


def with_tensor(entry, name, tensor):
    """``entry`` with ``name`` holding ``tensor`` instead."""
    return Entry({**entry.tensors, name: tensor}, entry.absent, entry.prepare_seconds, entry.order)


def tiny_entry():
    """A VC preparation whose embedding is a transposed view (its strides must survive)."""
    embedding = torch.tensor([[1, 2], [3, 4]], dtype=torch.float32).t()
    return with_tensor(voice_entry(vc=True, prepare_seconds=0.5), "ref.embedding", embedding)


# -- the round trip --------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=entry_keys(),
    entry=entries(),
    source=st.text(max_size=40),
    created=st.floats(allow_nan=False, allow_infinity=False),
)
def test_an_entry_comes_back_bitwise_with_its_header(key, entry, source, created):
    data = encode(key, entry, source=source, created=created)
    restored, info = decode(data, key)
    assert_same_entry(restored, entry)
    assert (info.key, info.source, info.created) == (key, source, created)
    assert info.prepare_seconds == entry.prepare_seconds


@settings(max_examples=30, deadline=None)
@given(entry=entries())
def test_an_entry_decoded_without_a_key_reports_the_stored_key(entry):
    restored, info = decode(encode(KEY, entry, source="a.wav", created=1.0), None)
    assert info.key == KEY
    assert info.key.digest == KEY.digest
    assert_same_entry(restored, entry)


def test_a_transposed_tensor_keeps_its_strides():
    prompt_feat = torch.arange(12.0).reshape(1, 3, 4).transpose(1, 2)
    entry = with_tensor(voice_entry(), "gen.prompt_feat", prompt_feat)
    restored, _ = decode(encode(KEY, entry, source="", created=0.0), KEY)
    assert restored.tensors["gen.prompt_feat"].stride() == prompt_feat.stride() == (12, 1, 4)
    assert torch.equal(restored.tensors["gen.prompt_feat"], prompt_feat)


@pytest.mark.parametrize(
    "view",
    [
        lambda t: t[:, :, ::2],  # gapped
        lambda t: t[:, :1].expand(1, 3, 4),  # overlapping
        lambda t: t.transpose(1, 2)[:, 1:],  # transposed and offset
    ],
    ids=["gapped", "overlapping", "offset"],
)
def test_a_view_that_is_not_dense_keeps_its_values(view):
    tensor = view(torch.arange(12.0).reshape(1, 3, 4))
    entry = with_tensor(voice_entry(vc=True), "ref.prompt_feat", tensor)
    restored, _ = decode(encode(KEY, entry, source="", created=0.0), KEY)
    assert torch.equal(restored.tensors["ref.prompt_feat"], tensor)


def test_decoded_tensors_are_writable_and_share_nothing_with_the_bytes():
    data = encode(KEY, tiny_entry(), source="", created=0.0)
    restored, _ = decode(data, KEY)
    restored.tensors["ref.embedding"].fill_(0)
    again, _ = decode(data, KEY)
    assert_bitwise_equal(again.tensors["ref.embedding"], tiny_entry().tensors["ref.embedding"], "")


def test_an_entry_is_a_standard_safetensors_file():
    entry = with_tensor(voice_entry(), "t3.speaker_emb", torch.randn(1, 256))
    data = encode(KEY, entry, source="voice.wav", created=0.0)
    loaded = safetensors_load(data)
    layout = json.loads(header_of(data)[0]["__metadata__"]["layout"])
    assert layout == {"gen.prompt_feat": [0, 2, 1]}
    assert set(loaded) == set(entry.tensors)
    for name, tensor in entry.tensors.items():
        assert loaded[name].dtype == tensor.dtype
        # safetensors holds the memory order; the layout metadata says how to undo it.
        order = layout.get(name, list(range(tensor.dim())))
        assert torch.equal(loaded[name], tensor.permute(order))


def test_the_header_fields_are_those_of_this_schema():
    # A header field that changes what a hit returns is a new layout: SCHEMA_VERSION
    # (and the format with it) must move, so that no reader of the old layout finds,
    # and so misreads, an entry of the new one. Pinned here to make that a decision.
    entry = dataclasses.replace(voice_entry(), exaggeration_dtype="BF16", returns_state=True)
    metadata = header_of(encode(KEY, entry, source="voice.wav", created=1.0))[0]["__metadata__"]
    assert (SCHEMA_VERSION, FORMAT, sorted(metadata)) == (
        3,
        "cached-tts/3",
        sorted(
            [
                "format",
                "key",
                "fields",
                "absent",
                "layout",
                "source",
                "created",
                "prepare_seconds",
                "exaggeration_dtype",
                "returns",
                "checksum",
            ]
        ),
    )


def test_the_header_names_the_format_key_and_source():
    data = encode(KEY, tiny_entry(), source="voice.wav", created=12.5)
    metadata = header_of(data)[0]["__metadata__"]
    assert metadata["format"] == FORMAT == "cached-tts/3"
    assert metadata["key"] == KEY.canonical
    assert metadata["source"] == "voice.wav"
    assert float(metadata["created"]) == 12.5
    assert len(metadata["checksum"]) == 64


# -- damage ----------------------------------------------------------------


def test_an_empty_buffer_is_refused():
    with pytest.raises(DamagedEntryError):
        decode(b"", KEY)


def test_a_truncated_entry_is_refused_at_every_length():
    data = encode(KEY, tiny_entry(), source="a.wav", created=0.0)
    for length in range(len(data)):
        with pytest.raises(DamagedEntryError):
            decode(data[:length], KEY)


def test_every_single_bit_flip_is_refused():
    data = encode(KEY, tiny_entry(), source="a.wav", created=0.0)
    accepted = []
    for bit in range(len(data) * 8):
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        try:
            decode(damaged, KEY)
        except DamagedEntryError:
            continue
        accepted.append(bit)
    assert accepted == []
    assert len(data) * 8 > 2000  # the header and the tensor bytes were both flipped


def test_an_entry_stored_under_another_key_is_refused():
    data = encode(KEY, tiny_entry(), source="a.wav", created=0.0)
    other = EntryKey(content="d" * 64, weights="w", settings=(("device", "cpu"),))
    with pytest.raises(DamagedEntryError, match="another key"):
        decode(data, other)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_is_refused(garbage):
    with pytest.raises(DamagedEntryError):
        decode(garbage, KEY)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_behind_a_plausible_header_length_is_refused(garbage):
    with pytest.raises(DamagedEntryError):
        decode(len(garbage).to_bytes(8, "little") + garbage, KEY)


@settings(max_examples=40, deadline=None)
@given(st.recursive(st.none() | st.integers() | st.text(max_size=5), st.lists))
def test_json_that_is_not_an_entry_header_is_refused(value):
    header = json.dumps({"__metadata__": value}).encode()
    with pytest.raises(DamagedEntryError):
        decode(len(header).to_bytes(8, "little") + header, KEY)


def test_a_deeply_nested_header_is_refused_as_damage():
    header = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(DamagedEntryError):
        decode(len(header).to_bytes(8, "little") + header, KEY)


def test_a_plain_safetensors_file_is_refused():
    with pytest.raises(DamagedEntryError, match="metadata"):
        decode(safetensors_save({"ref.embedding": torch.zeros(2)}), KEY)
    with pytest.raises(DamagedEntryError, match="checksum"):
        decode(safetensors_save({"ref.embedding": torch.zeros(2)}, metadata={"a": "b"}), KEY)


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h["__metadata__"].update(format="cached-tts/0"),
        lambda h: h["__metadata__"].pop("fields"),
        lambda h: h["__metadata__"].update(fields='["ref.missing"]'),
        lambda h: h["__metadata__"].update(fields="not json"),
        lambda h: h["__metadata__"].update(layout='{"ref.embedding": [0, 1, 2]}'),
        lambda h: h["__metadata__"].update(created="yesterday"),
        lambda h: h["ref.embedding"].update(dtype="F8_E4M3"),
        lambda h: h["ref.embedding"].update(shape=[3, 2]),
        lambda h: h["ref.embedding"].update(shape=["two", 2]),
        lambda h: h["ref.embedding"].update(data_offsets=[0, 400]),
        lambda h: h["ref.embedding"].update(data_offsets=None),
    ],
    ids=[
        "format",
        "no-fields",
        "missing-tensor",
        "fields-not-json",
        "layout",
        "created",
        "dtype",
        "shape",
        "shape-type",
        "offsets",
        "offsets-type",
    ],
)
def test_a_header_with_a_valid_checksum_but_inconsistent_fields_is_refused(change):
    data = encode(KEY, tiny_entry(), source="a.wav", created=0.0)
    decode(forge(data, lambda _: None), KEY)  # the forger itself makes valid entries
    with pytest.raises(DamagedEntryError):
        decode(forge(data, change), KEY)


def dumped(value):
    """A metadata value as the header holds it: JSON text."""
    return json.dumps(value)


@pytest.mark.parametrize(
    "change",
    [
        # The cases the issue names: each raised AttributeError, TypeError or OverflowError.
        lambda h: h["__metadata__"].update(layout=dumped([1])),
        lambda h: h["__metadata__"].update(absent=dumped([1])),
        lambda h: h["ref.embedding"].update(data_offsets=[0, float("inf")]),
        lambda h: h["__metadata__"].update(fields=dumped({"ref.embedding": 1})),
        lambda h: h["__metadata__"].update(created=5),
        lambda h: h["__metadata__"].update(created="inf"),
        lambda h: h["__metadata__"].update(prepare_seconds="nan"),
        lambda h: h["__metadata__"].update(prepare_seconds="-1"),
        lambda h: h["__metadata__"].update(key=dumped([1])),
        lambda h: h["__metadata__"].update(key=dumped({"content": 1})),
        lambda h: h["ref.embedding"].update(shape=[2.0, 2]),
        lambda h: h["ref.embedding"].update(shape=[True, 2, 2]),
        lambda h: h["ref.embedding"].update(data_offsets=[-8, 8]),
        lambda h: h.update(extra={"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}),
        lambda h: h["ref.embedding"].update(extra=1),
        lambda h: h.update({"ref.embedding": "F32"}),
        # A field both absent and a tensor; a field named twice.
        lambda h: h["__metadata__"].update(absent=dumped(["ref.prompt_feat_len", "ref.embedding"])),
        lambda h: h["__metadata__"].update(
            fields=dumped([*json.loads(h["__metadata__"]["fields"]), "ref.embedding"])
        ),
        lambda h: h["__metadata__"].update(layout=dumped({"ref.embedding": [1, 1]})),
        lambda h: h["__metadata__"].update(layout=dumped({"ref.nothing": [1, 0]})),
    ],
)
def test_a_forged_header_of_any_malformed_structure_is_damage(change):
    data = encode(KEY, tiny_entry(), source="a.wav", created=0.0)
    with pytest.raises(DamagedEntryError):
        decode(forge(data, change), KEY)
    with pytest.raises(DamagedEntryError):
        decode(forge(data, change), None)


def raw_entry(tensors, fields, absent):
    """An entry file as ``encode`` writes one, but of any fields (no schema check)."""
    metadata = {
        "format": FORMAT,
        "key": KEY.canonical,
        "fields": dumped(fields),
        "absent": dumped(absent),
        "layout": "{}",
        "source": "a.wav",
        "created": "0.0",
        "prepare_seconds": "0.0",
    }
    return forge(safetensors_save(tensors, metadata=metadata), lambda _: None)


def test_a_well_formed_entry_that_drops_a_t3cond_field_is_damage():
    # T3Cond would quietly default the dropped field to None: a wrong voice.
    entry = voice_entry()
    tensors = {n: t.contiguous() for n, t in entry.tensors.items()}
    decode(raw_entry(tensors, list(entry.fields), list(entry.absent)), KEY)  # the whole one
    del tensors["t3.cond_prompt_speech_tokens"]
    fields = [n for n in entry.fields if n != "t3.cond_prompt_speech_tokens"]
    with pytest.raises(DamagedEntryError, match="not a preparation"):
        decode(raw_entry(tensors, fields, list(entry.absent)), KEY)


def test_an_empty_tensor_of_absurd_sides_is_damage():
    # No bytes to hold, but torch cannot even compute its strides.
    entry = with_tensor(voice_entry(vc=True), "ref.prompt_feat", torch.empty(0, 1, 1))
    tensors = {n: t.contiguous() for n, t in entry.tensors.items()}
    data = raw_entry(tensors, list(entry.fields), list(entry.absent))
    decode(data, KEY)
    with pytest.raises(DamagedEntryError, match="shape"):
        decode(forge(data, lambda h: h["ref.prompt_feat"].update(shape=[0, 2**61, 2**61])), KEY)


@pytest.mark.parametrize(
    ("name", "tensor"),
    [
        ("gen.extra", torch.zeros(2)),
        ("t3.speaker_emb", torch.zeros(1, 4, dtype=torch.int64)),  # an embedding of integers
        ("gen.prompt_feat", torch.zeros(1, 8)),  # one dimension short
        ("gen.prompt_token", torch.zeros(1, 4, dtype=torch.bool)),
    ],
    ids=["extra", "dtype", "rank", "bool"],
)
def test_an_entry_with_fields_other_than_a_preparations_is_damage(name, tensor):
    entry = voice_entry()
    tensors = {**{n: t.contiguous() for n, t in entry.tensors.items()}, name: tensor}
    fields = list(dict.fromkeys([*entry.fields, name]))
    with pytest.raises(DamagedEntryError, match="not a preparation"):
        decode(raw_entry(tensors, fields, list(entry.absent)), KEY)


def test_encode_refuses_what_decode_would_refuse():
    with pytest.raises(UncacheableError):
        encode(KEY, Entry({"gen.embedding": torch.zeros(1, 4)}), source="", created=0.0)


def test_an_entry_keeps_upstreams_field_order_with_absent_fields_in_place():
    entry = voice_entry()
    assert entry.fields.index("gen.prompt_feat_len") == entry.fields.index("gen.prompt_feat") + 1
    restored, _ = decode(encode(KEY, entry, source="", created=0.0), KEY)
    assert restored.fields == entry.fields
    assert list(restored.copies("gen", "cpu")) == [
        "prompt_token",
        "prompt_token_len",
        "prompt_feat",
        "prompt_feat_len",
        "embedding",
    ]


# -- any forged header: a whole entry or DamagedEntryError, nothing else -----

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_SAMPLE = encode(KEY, voice_entry(), source="a.wav", created=0.0)
_NAMES = [n for n in header_of(_SAMPLE)[0] if n != "__metadata__"]
_FIELDS = json.loads(header_of(_SAMPLE)[0]["__metadata__"]["fields"])
_FIELD_NAMES = [*_FIELDS, "ref.embedding", "x"]
_small_ints = st.integers(-2, 2200) | st.sampled_from([2**61, 2**62 - 1, 2**63, -(2**63), 2**64])
_numbers = _small_ints | st.floats() | st.booleans()


_DELETE = object()
_METADATA_FIELDS = ["format", "key", "fields", "absent", "layout", "source", "created"]


class _Edit:
    """One edit of a header, named in Hypothesis's reports by how it was built."""

    def __init__(self, apply, description):
        self.apply, self.description = apply, description

    def __call__(self, header):
        self.apply(header)

    def __repr__(self):
        return self.description


# The edits compose: each applies to whatever earlier edits left (a value of
# any type, a place removed) and does nothing where it has nothing to change,
# so a drawn list of edits never fails in the forger, only in the decoder.


def edit_at(path, value):
    """An edit that sets (or with ``_DELETE`` removes) one place in a header."""

    def apply(header):
        target = header
        for part in path[:-1]:
            target = target.get(part) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            return  # an earlier edit removed or replaced the place
        if value is _DELETE:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value

    return _Edit(apply, f"edit_at({path!r}, {'_DELETE' if value is _DELETE else repr(value)})")


def dropped_field(name):
    """An edit that removes a tensor and its field: a dropped T3Cond field, say."""

    def apply(header):
        header.pop(name, None)
        metadata = header.get("__metadata__")
        if not isinstance(metadata, dict):
            return
        try:
            names = json.loads(metadata["fields"])
        except (KeyError, TypeError, ValueError):
            return  # no field list left to drop it from (an earlier edit made it so)
        if isinstance(names, list):
            metadata["fields"] = json.dumps([n for n in names if n != name])

    return _Edit(apply, f"dropped_field({name!r})")


def _maybe_deleted(values):
    return values | st.just(_DELETE)


#: One arbitrary edit of an entry's header (a callable that applies it).
header_edits = st.one_of(
    st.builds(
        edit_at,
        st.tuples(st.sampled_from(["__metadata__", *_NAMES]) | st.text(max_size=6)),
        _json,
    ),
    st.builds(
        edit_at,
        st.tuples(
            st.sampled_from(_NAMES), st.sampled_from(["dtype", "shape", "data_offsets", "other"])
        ),
        _maybe_deleted(
            _json
            | st.lists(_numbers, max_size=4)
            | st.sampled_from(["F32", "F64", "I64", "BOOL", "U8", "F8_E4M3"])
        ),
    ),
    st.builds(
        edit_at,
        st.tuples(st.just("__metadata__"), st.sampled_from([*_METADATA_FIELDS, "prepare_seconds"])),
        _maybe_deleted(
            _json | _json.map(json.dumps) | st.sampled_from(["inf", "nan", "-0", "1e400"])
        ),
    ),
    st.builds(
        edit_at,
        st.tuples(st.just("__metadata__"), st.sampled_from(["fields", "absent"])),
        st.lists(st.sampled_from(_FIELD_NAMES), max_size=12).map(json.dumps),
    ),
    st.builds(
        edit_at,
        st.just(("__metadata__", "layout")),
        st.dictionaries(
            st.sampled_from(_FIELD_NAMES),
            st.lists(_small_ints | st.floats(), max_size=4),
            max_size=3,
        ).map(json.dumps),
    ),
    st.builds(dropped_field, st.sampled_from(_NAMES)),
    # Edits that keep an entry whole: any field order, any source.
    st.builds(
        edit_at, st.just(("__metadata__", "fields")), st.permutations(_FIELDS).map(json.dumps)
    ),
    st.builds(edit_at, st.just(("__metadata__", "source")), st.text(max_size=8)),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(header_edits, min_size=1, max_size=3))
# The case a clean clone's run drew: the field list made no list, then a field dropped.
@example(edits=[edit_at(("__metadata__", "fields"), "inf"), dropped_field("t3.speaker_emb")])
@example(edits=[edit_at(("__metadata__",), []), dropped_field("t3.speaker_emb")])
def test_a_forged_header_decodes_to_a_whole_entry_or_damage_and_nothing_else(edits):
    from chatterbox.tts import Conditionals

    from cached_tts._entries.entry import (
        conditionals_from_entry,
        ref_dict_from_entry,
        schema_problem_of,
    )
    from cached_tts._entries.format import check

    def apply(header):
        for edit in edits:
            edit(header)

    data = forge(_SAMPLE, apply)
    info, damage = check(data, KEY.digest)
    try:
        entry, _ = decode(data, KEY)
    except DamagedEntryError:
        assert damage is not None
        return
    assert damage is None
    assert info is not None
    assert schema_problem_of(entry) is None
    # What a lookup would build from it builds.
    if "ref" in {name.partition(".")[0] for name in entry.fields}:
        assert len(ref_dict_from_entry(entry, "cpu")) == 5
    else:
        conds = conditionals_from_entry(entry, 0.5, "cpu", Conditionals)
        assert list(conds.gen) == [n.partition(".")[2] for n in entry.fields if n[:4] == "gen."]


# -- the fast parse: the same tensors and the same verdicts as before -------------


@settings(max_examples=60, deadline=None)
@given(entry=entries())
def test_decoded_tensors_are_the_stored_ones_with_the_strides_a_permute_gives(entry):
    """Tensors are built as numpy views now: every stride, size-1 dimensions too, as before.

    Before, each was ``torch.frombuffer`` reshaped, then permuted back from
    memory order: what safetensors' own loader gives, permuted the same way.
    """
    data = encode(KEY, entry, source="", created=0.0)
    header, _ = header_of(data)
    layout = json.loads(header["__metadata__"]["layout"])
    stored = safetensors_load(data)
    for restored in (decode(data, KEY)[0], decode(bytearray(data), KEY, owned=True)[0]):
        for name, tensor in stored.items():
            order = layout.get(name)
            expected = tensor
            if order is not None:
                expected = tensor.permute(sorted(range(len(order)), key=order.__getitem__))
            actual = restored.tensors[name]
            assert (actual.dtype, actual.shape) == (expected.dtype, expected.shape), name
            if expected.numel() > 0:
                assert actual.stride() == expected.stride(), name
            assert_bitwise_equal(actual, expected, name)


def test_an_owned_buffer_is_shared_by_the_tensors_and_any_other_is_copied():
    data = bytearray(encode(KEY, tiny_entry(), source="", created=0.0))
    start = torch.frombuffer(data, dtype=torch.uint8).data_ptr()

    def inside(tensor):
        return start <= tensor.data_ptr() < start + len(data)

    owned, _ = decode(data, KEY, owned=True)
    assert all(inside(t) for t in owned.tensors.values())
    copied, _ = decode(data, KEY)
    assert not any(inside(t) for t in copied.tensors.values())
    copied.tensors["ref.embedding"].fill_(0)
    assert_bitwise_equal(owned.tensors["ref.embedding"], tiny_entry().tensors["ref.embedding"], "")


def _whole_numbers_as_before(value):
    return isinstance(value, list) and all(type(n) is int and 0 <= n < 2**62 for n in value)


_NUMBERS = (
    st.integers() | st.sampled_from([-1, 0, 2**62 - 1, 2**62, 2**64]) | st.booleans() | st.floats()
)
_JSON_VALUES = st.recursive(
    st.none() | _NUMBERS | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=2), inner),
    max_leaves=12,
)


@given(st.lists(_NUMBERS, max_size=6) | _JSON_VALUES)
@example([2**62 - 1, 0])
@example([0, -1])
@example([2**62])
@example([True])
@example([1.0])
@example((1, 2))
def test_sizes_and_offsets_are_judged_as_before(value):
    from cached_tts._entries.header import _whole_numbers

    assert _whole_numbers(value) == _whole_numbers_as_before(value)


def test_field_lists_are_parsed_once_and_handed_out_immutable():
    from cached_tts._entries.header import _names

    text = json.dumps(["t3.a", "gen.b"])
    first = _names(text, "fields")
    assert first == ("t3.a", "gen.b")
    assert _names(text, "fields") is first  # a tuple: no caller can change what others get
    for _ in range(2):  # a refusal is not remembered as a result
        with pytest.raises(DamagedEntryError, match="names a field twice"):
            _names(json.dumps(["t3.a", "t3.a"]), "fields")
