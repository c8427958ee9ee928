"""Bitwise means bitwise: field order, key order, strides and -0.0, against plain ChatterboxTTS."""

from __future__ import annotations

import struct

import pytest

from cached_tts import CachedChatterboxTTS, ConditionalCache
from cached_tts.testing import assert_same_conditionals, random_model

pytestmark = pytest.mark.slow


def assert_identical(actual, expected):
    """Bitwise equal (bytes, dtype, memory order), with upstream's field and key order."""
    assert_same_conditionals(actual, expected)
    assert list(vars(actual.t3)) == list(vars(expected.t3))
    assert list(actual.gen) == list(expected.gen)  # prompt_feat_len (None) stays in place


def test_minus_zero_exaggeration_and_upstreams_order_survive_memory_and_disk(
    components, clips, plain, tmp_path
):
    plain.prepare_conditionals(clips["alice"], exaggeration=-0.0)
    expected = plain.conds
    assert struct.pack("<f", expected.t3.emotion_adv.item()) == struct.pack("<f", -0.0)
    model = random_model(
        CachedChatterboxTTS, components=components, cache=ConditionalCache(tmp_path)
    )

    model.prepare_conditionals(clips["alice"], exaggeration=0.0)  # a miss, +0.0 memoized
    model.prepare_conditionals(clips["alice"], exaggeration=-0.0)  # a memory hit
    assert_identical(model.conds, expected)

    fresh = random_model(
        CachedChatterboxTTS, components=components, cache=ConditionalCache(tmp_path)
    )
    fresh.prepare_conditionals(clips["alice"], exaggeration=-0.0)  # a disk hit
    assert fresh.cache.stats().disk_hits == 1
    assert_identical(fresh.conds, expected)
