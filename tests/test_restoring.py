"""A hit builds and returns what the preparation did, in this process and from bytes.

Upstream builds ``emotion_adv`` in the default dtype and returns ``None``; a
fork may build it in bfloat16 and return ``self.conds``. An entry remembers
which, and its stored bytes say so only where it differs from upstream.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from chatterbox.models.t3.modules.cond_enc import T3Cond
from chatterbox.tts import Conditionals
from strategies import forge, header_of, voice_entry

from cached_tts._entries.entry import (
    UncacheableError,
    conditionals_from_entry,
    entry_from_conditionals,
    entry_from_ref_dict,
)
from cached_tts._entries.format import decode, encode
from cached_tts._exceptions import DamagedEntryError
from cached_tts._keys.key import EntryKey

KEY = EntryKey(content="c" * 64, weights="w", settings=(("device", "cpu"),))


def conditionals(exaggeration=0.5, dtype=None):
    """A ``Conditionals`` whose ``emotion_adv`` is built in ``dtype`` (``None``: as upstream)."""
    ones = torch.ones(1, 1, 1) if dtype is None else torch.ones(1, 1, 1, dtype=dtype)
    t3 = T3Cond(
        speaker_emb=torch.tensor([[0.25, -1.5, 3.0]]),
        cond_prompt_speech_tokens=torch.tensor([[7, 8, 9]]),
        emotion_adv=exaggeration * ones,
    )
    gen = {
        "prompt_token": torch.tensor([[1, 2, 3, 4]]),
        "prompt_token_len": torch.tensor([4]),
        "prompt_feat": torch.full((1, 8, 3), 0.5),
        "prompt_feat_len": None,
        "embedding": torch.tensor([[1.0, 2.0]]),
    }
    return Conditionals(t3, gen)


def restored(entry, exaggeration):
    return conditionals_from_entry(entry, exaggeration, "cpu", Conditionals)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_emotion_adv_comes_back_in_the_dtype_the_preparation_built_it_in(dtype):
    entry = entry_from_conditionals(conditionals(0.5, dtype))

    for exaggeration in (0.5, 0.7, 1.0 / 3):
        again = restored(entry, exaggeration).t3.emotion_adv
        expected = conditionals(exaggeration, dtype).t3.emotion_adv
        assert again.dtype == dtype
        assert torch.equal(again.view(torch.uint8), expected.view(torch.uint8))


def test_upstream_s_emotion_adv_is_rebuilt_as_upstream_builds_it():
    entry = entry_from_conditionals(conditionals(0.5))

    assert entry.exaggeration_dtype is None
    assert restored(entry, 0.7).t3.emotion_adv.dtype == torch.float32


def same_bits(a, b):
    return a.dtype == b.dtype and torch.equal(a.view(torch.uint8), b.view(torch.uint8))


@pytest.fixture
def float64_default():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_upstream_s_emotion_adv_follows_the_default_dtype_of_each_restore():
    entry = entry_from_conditionals(conditionals(0.5))
    assert restored(entry, 0.5).t3.emotion_adv.dtype == torch.float32  # remembered now

    torch.set_default_dtype(torch.float64)
    try:
        again = restored(entry, 0.5).t3.emotion_adv
        expected = 0.5 * torch.ones(1, 1, 1)
    finally:
        torch.set_default_dtype(torch.float32)

    assert expected.dtype == torch.float64
    assert same_bits(again, expected)


def f64(value):
    return torch.tensor([value], dtype=torch.float64)


# (the dtype a preparation builds its ones in, None: upstream's; the first
# call's argument): each leaves no doubt which dtype that was.
TELLING_CALLS = [
    (None, 0.5),
    (None, 1),
    (None, f64(0.5)),
    (None, torch.tensor([0.5], dtype=torch.bfloat16)),
    (torch.bfloat16, 0.5),
    (torch.bfloat16, torch.tensor(0.5, dtype=torch.float64)),  # 0-dim: the ones' dtype wins
    (torch.bfloat16, torch.tensor([0.5], dtype=torch.bfloat16)),
    (torch.float16, 2),
]


@pytest.mark.parametrize(("dtype", "first"), TELLING_CALLS)
def test_each_restore_builds_emotion_adv_as_the_preparation_would_for_its_own_argument(
    dtype, first
):
    entry = entry_from_conditionals(conditionals(first, dtype), exaggeration=first)

    for later in (0.7, 1, f64(0.7), torch.tensor(0.7, dtype=torch.float64), first):
        expected = conditionals(later, dtype).t3.emotion_adv
        assert same_bits(restored(entry, later).t3.emotion_adv, expected), later


def test_a_float64_exaggeration_tensor_first_leaves_later_floats_in_the_default_dtype():
    entry = entry_from_conditionals(conditionals(f64(0.5)), exaggeration=f64(0.5))

    assert entry.exaggeration_dtype is None
    assert restored(entry, 0.5).t3.emotion_adv.dtype == torch.float32
    assert restored(entry, f64(0.5)).t3.emotion_adv.dtype == torch.float64


@pytest.mark.usefixtures("float64_default")
def test_an_emotion_adv_no_single_dtype_explains_is_not_cached():
    # Under a float64 default a float32 [1] tensor times bfloat16, float16 or
    # float32 ones gives float32: which one a later float needs is unknown.
    argument = torch.tensor([0.5], dtype=torch.float32)
    conds = conditionals(argument, torch.bfloat16)

    with pytest.raises(UncacheableError, match="no single dtype"):
        entry_from_conditionals(conds, exaggeration=argument)


def test_an_entry_knows_whether_the_preparation_returned_its_state():
    conds = conditionals()

    assert entry_from_conditionals(conds, 1.0, conds).returns_state
    assert not entry_from_conditionals(conds, 1.0, None).returns_state
    ref = dict(conds.gen)
    assert entry_from_ref_dict(ref, 1.0, ref).returns_state


def test_a_preparation_that_returns_anything_else_cannot_be_cached():
    conds = conditionals()

    with pytest.raises(UncacheableError, match="returned a tuple"):
        entry_from_conditionals(conds, 1.0, (conds.t3, conds.gen))
    with pytest.raises(UncacheableError, match="returned a Conditionals"):
        entry_from_conditionals(conds, 1.0, conditionals())  # equal, but not the one it set


def test_the_stored_bytes_keep_the_dtype_and_the_return_of_a_fork():
    conds = conditionals(0.5, torch.bfloat16)
    entry = entry_from_conditionals(conds, 1.0, conds)

    decoded, _ = decode(encode(KEY, entry, source="a.wav", created=0.0), KEY)

    assert (decoded.exaggeration_dtype, decoded.returns_state) == ("BF16", True)
    assert restored(decoded, 0.7).t3.emotion_adv.dtype == torch.bfloat16


def test_an_upstream_entry_s_header_says_nothing_of_either():
    metadata = header_of(encode(KEY, voice_entry(), source="a.wav", created=0.0))[0]

    assert {"exaggeration_dtype", "returns"}.isdisjoint(metadata["__metadata__"])


@pytest.mark.parametrize(
    ("entry", "metadata"),
    [
        (voice_entry(), {"exaggeration_dtype": "I64"}),
        (voice_entry(), {"exaggeration_dtype": "float32"}),
        (voice_entry(vc=True), {"exaggeration_dtype": "F32"}),  # VC has no emotion_adv
        (voice_entry(), {"returns": "self"}),
        (voice_entry(), {"returns": ""}),
    ],
)
def test_a_forged_restoring_hint_is_damage(entry, metadata):
    data = forge(
        encode(KEY, entry, source="a.wav", created=0.0),
        lambda header: header["__metadata__"].update(metadata),
    )

    with pytest.raises(DamagedEntryError):
        decode(data, KEY)


def test_an_entry_refuses_an_exaggeration_dtype_that_is_no_float():
    with pytest.raises(ValueError, match="not a float dtype"):
        dataclasses.replace(voice_entry(), exaggeration_dtype="I64")
