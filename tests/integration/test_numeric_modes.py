"""A voice prepared under one numeric mode is never served under another.

Autocast, the matmul precision and the TF32 flags change what preparation
computes (or whether it runs at all): the result under each mode is what the
plain class computes under that mode, errors included.
"""

from __future__ import annotations

import pytest
import torch
from chatterbox.tts import ChatterboxTTS
from chatterbox.vc import ChatterboxVC

from cached_tts import (
    CachedChatterboxTTS,
    CachedChatterboxVC,
    ConditionalCache,
    cached_conditionals,
)
from cached_tts.testing import assert_same_conditionals, random_model

pytestmark = pytest.mark.slow


def bf16_autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16)


@pytest.fixture
def plain_vc(components, clips):
    """What plain VC prepares for Alice outside and inside CPU autocast."""
    plain = random_model(ChatterboxVC, components=components)
    plain.set_target_voice(clips["alice"])
    outside = plain.ref_dict
    with bf16_autocast():
        plain.set_target_voice(clips["alice"])
    inside = plain.ref_dict
    # The reproduction itself: autocast changes what VC prepares.
    assert inside["embedding"].dtype == torch.bfloat16
    assert outside["embedding"].dtype == torch.float32
    return outside, inside


def test_a_vc_voice_prepared_under_autocast_is_served_only_under_autocast(
    components, clips, cache, plain_vc
):
    outside, inside = plain_vc
    model = random_model(CachedChatterboxVC, components=components, cache=cache)

    with bf16_autocast():
        model.set_target_voice(clips["alice"])
    assert_same_conditionals(model.ref_dict, inside)
    model.set_target_voice(clips["alice"])
    assert_same_conditionals(model.ref_dict, outside)
    model.set_target_voice(clips["alice"])  # from memory, by the remembered call
    assert_same_conditionals(model.ref_dict, outside)
    with bf16_autocast():
        model.set_target_voice(clips["alice"])
    assert_same_conditionals(model.ref_dict, inside)
    stats = cache.stats()
    assert (stats.misses, stats.memory_hits) == (2, 2)

    # Another process on the same folder finds each voice under its own mode.
    again = ConditionalCache(cache.directory)
    other = random_model(CachedChatterboxVC, components=components, cache=again)
    other.set_target_voice(clips["alice"])
    assert_same_conditionals(other.ref_dict, outside)
    with bf16_autocast():
        other.set_target_voice(clips["alice"])
    assert_same_conditionals(other.ref_dict, inside)
    assert (again.stats().misses, again.stats().disk_hits) == (0, 2)


def test_a_tts_voice_is_not_served_where_plain_preparation_raises(components, clips, cache):
    plain = random_model(ChatterboxTTS, components=components)
    with bf16_autocast(), pytest.raises(TypeError) as plain_error:
        plain.prepare_conditionals(clips["alice"])

    model = random_model(CachedChatterboxTTS, components=components, cache=cache)
    model.prepare_conditionals(clips["alice"])  # stored outside autocast
    model.prepare_conditionals(clips["alice"])
    with bf16_autocast(), pytest.raises(TypeError) as cached_error:
        model.prepare_conditionals(clips["alice"])

    assert str(cached_error.value) == str(plain_error.value)
    stats = cache.stats()
    assert (stats.misses, stats.memory_hits, stats.entries) == (1, 1, 1)


def test_a_voice_prepared_at_another_matmul_precision_takes_its_own_key(
    components, clips, cache, reference
):
    model = random_model(CachedChatterboxTTS, components=components, cache=cache)
    model.prepare_conditionals(clips["alice"])
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        model.prepare_conditionals(clips["alice"])
    finally:
        torch.set_float32_matmul_precision(before)
    model.prepare_conditionals(clips["alice"])

    assert_same_conditionals(model.conds, reference(clips["alice"]))
    stats = cache.stats()
    assert (stats.misses, stats.memory_hits, stats.entries) == (2, 1, 2)


class AutocastVC(ChatterboxVC):
    """A generate that prepares its voice under CPU autocast, set inside it.

    It returns what it conditions on instead of audio: generating on CPU takes minutes.
    """

    def generate(self, audio, target_voice_path=None):
        del audio
        with bf16_autocast():
            self.set_target_voice(target_voice_path)
        return self.ref_dict


@cached_conditionals
class CachedAutocastVC(AutocastVC):
    """The same subclass, cached."""


def test_a_voice_generate_found_is_not_taken_under_a_mode_generate_sets_itself(
    components, clips, cache, plain_vc
):
    _, inside = plain_vc
    model = random_model(CachedAutocastVC, components=components, cache=cache)

    for _ in range(2):  # a miss, then a hit by the remembered call
        assert_same_conditionals(model.generate("x.wav", clips["alice"]), inside)
    # The wrapper looked outside autocast (where generate was called) too.
    assert cache.stats().entries == 2


class AutocastTTS(ChatterboxTTS):
    """A generate that prepares under CPU autocast, where plain preparation raises."""

    def generate(self, text, audio_prompt_path=None, exaggeration=0.5, **_options):
        del text
        with bf16_autocast():
            self.prepare_conditionals(audio_prompt_path, exaggeration=exaggeration)
        return self.conds


@cached_conditionals
class CachedAutocastTTS(AutocastTTS):
    """The same subclass, cached."""


def test_a_generate_that_prepares_where_plain_raises_raises_cached_too(components, clips, cache):
    plain = random_model(AutocastTTS, components=components)
    with pytest.raises(TypeError) as plain_error:
        plain.generate("Hi.", audio_prompt_path=clips["alice"])
    model = random_model(CachedAutocastTTS, components=components, cache=cache)

    for _ in range(2):  # the wrapper's own lookup, outside autocast, succeeds each time
        with pytest.raises(TypeError) as cached_error:
            model.generate("Hi.", audio_prompt_path=clips["alice"])
        assert str(cached_error.value) == str(plain_error.value)


def test_a_mode_switched_by_another_thread_mid_preparation_stores_nothing(components, clips, cache):
    """The matmul precision is process-wide: another thread may flip it while one prepares."""
    model = random_model(CachedChatterboxVC, components=components, cache=cache)
    embed_ref = model.s3gen.embed_ref

    def flipped_mid_call(*args, **kwargs):
        torch.set_float32_matmul_precision("high")  # what the other thread does, forced here
        return embed_ref(*args, **kwargs)

    model.s3gen.embed_ref = flipped_mid_call
    try:
        model.set_target_voice(clips["alice"])
    finally:
        torch.set_float32_matmul_precision("highest")
        del model.s3gen.embed_ref
    # Prepared partly under "high": stored under neither mode's key.
    assert (cache.stats().entries, cache.stats().disk_entries) == (0, 0)
    misses = cache.stats().misses

    model.set_target_voice(clips["alice"])  # prepared again, under one mode, and stored
    assert (cache.stats().misses, cache.stats().disk_entries) == (misses + 1, 1)
