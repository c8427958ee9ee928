"""The bytes of a stored entry: a bitwise round trip, and every damage refused."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save
from strategies import entries, entry_keys

from cached_tts._entry import Entry
from cached_tts._exceptions import DamagedEntryError
from cached_tts._format import FORMAT, decode, encode
from cached_tts._keys import EntryKey

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


def tiny_entry():
    return Entry(
        {"gen.embedding": torch.tensor([[1, 2], [3, 4]], dtype=torch.uint8).t()},
        absent=("gen.prompt_feat_len",),
        prepare_seconds=0.5,
    )


def header_of(data):
    """The parsed safetensors header, and the tensor bytes after it."""
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def forge(data, change):
    """Rewrite an entry's header with ``change`` and a checksum that matches it."""
    header, body = header_of(data)
    change(header)
    header["__metadata__"].pop("checksum", None)
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode())
    digest.update(body)
    header["__metadata__"]["checksum"] = digest.hexdigest()
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + body


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
    restored, _ = decode(
        encode(KEY, Entry({"gen.prompt_feat": prompt_feat}), source="", created=0.0), KEY
    )
    assert restored.tensors["gen.prompt_feat"].stride() == prompt_feat.stride() == (12, 1, 4)
    assert torch.equal(restored.tensors["gen.prompt_feat"], prompt_feat)


@pytest.mark.parametrize(
    "view",
    [
        lambda t: t[:, ::2],  # gapped
        lambda t: t[:1].expand(3, 4),  # overlapping
        lambda t: t.t()[1:],  # transposed and offset
    ],
    ids=["gapped", "overlapping", "offset"],
)
def test_a_view_that_is_not_dense_keeps_its_values(view):
    tensor = view(torch.arange(12.0).reshape(3, 4))
    restored, _ = decode(encode(KEY, Entry({"ref.x": tensor}), source="", created=0.0), KEY)
    assert torch.equal(restored.tensors["ref.x"], tensor)


def test_decoded_tensors_are_writable_and_share_nothing_with_the_bytes():
    data = encode(KEY, tiny_entry(), source="", created=0.0)
    restored, _ = decode(data, KEY)
    restored.tensors["gen.embedding"].fill_(0)
    again, _ = decode(data, KEY)
    assert_bitwise_equal(again.tensors["gen.embedding"], tiny_entry().tensors["gen.embedding"], "")


def test_an_entry_is_a_standard_safetensors_file():
    entry = Entry(
        {
            "t3.speaker_emb": torch.randn(1, 256),
            "gen.prompt_token": torch.arange(6, dtype=torch.int64).reshape(1, 6),
            "gen.prompt_feat": torch.randn(1, 5, 3).transpose(1, 2),
            "gen.mask": torch.tensor([True, False]),
        }
    )
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


def test_the_header_names_the_format_key_and_source():
    data = encode(KEY, tiny_entry(), source="voice.wav", created=12.5)
    metadata = header_of(data)[0]["__metadata__"]
    assert metadata["format"] == FORMAT == "cached-tts/1"
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
        decode(safetensors_save({"gen.embedding": torch.zeros(2)}), KEY)
    with pytest.raises(DamagedEntryError, match="checksum"):
        decode(safetensors_save({"gen.embedding": torch.zeros(2)}, metadata={"a": "b"}), KEY)


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h["__metadata__"].update(format="cached-tts/0"),
        lambda h: h["__metadata__"].pop("fields"),
        lambda h: h["__metadata__"].update(fields='["gen.missing"]'),
        lambda h: h["__metadata__"].update(fields="not json"),
        lambda h: h["__metadata__"].update(layout='{"gen.embedding": [0, 1, 2]}'),
        lambda h: h["__metadata__"].update(created="yesterday"),
        lambda h: h["gen.embedding"].update(dtype="F8_E4M3"),
        lambda h: h["gen.embedding"].update(shape=[3, 2]),
        lambda h: h["gen.embedding"].update(shape=["two", 2]),
        lambda h: h["gen.embedding"].update(data_offsets=[0, 400]),
        lambda h: h["gen.embedding"].update(data_offsets=None),
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
