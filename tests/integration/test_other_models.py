"""The multilingual, Turbo and VC classes, and user subclasses."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from chatterbox.models.t3 import T3
from chatterbox.mtl_tts import ChatterboxMultilingualTTS
from chatterbox.tts import ChatterboxTTS
from chatterbox.tts_turbo import ChatterboxTurboTTS
from chatterbox.vc import ChatterboxVC

from cached_tts import (
    CachedChatterboxMultilingualTTS,
    CachedChatterboxTTS,
    CachedChatterboxTurboTTS,
    CachedChatterboxVC,
    WeightsUnavailableError,
    cached_conditionals,
)
from cached_tts.testing import (
    _t3_config,
    assert_same_conditionals,
    random_components,
    random_model,
    write_voice_clip,
)

pytestmark = pytest.mark.slow


def test_multilingual_hits_are_bitwise_the_plain_result(components, clips, cache):
    # Share the expensive S3Gen and VoiceEncoder (built once per session, 1 GB);
    # only the multilingual T3 differs, and its 1-layer build takes a fraction of a second.
    torch.manual_seed(0)
    mtl_t3 = T3(_t3_config("multilingual")).eval()
    mtl = dataclasses.replace(components, variant="multilingual", t3=mtl_t3)
    plain = random_model(ChatterboxMultilingualTTS, components=mtl)
    cached = random_model(CachedChatterboxMultilingualTTS, components=mtl, cache=cache)

    cached.prepare_conditionals(clips["alice"], exaggeration=0.3)
    cached.prepare_conditionals(clips["alice"], exaggeration=0.8)
    plain.prepare_conditionals(clips["alice"], exaggeration=0.8)

    assert isinstance(cached, ChatterboxMultilingualTTS)
    assert cached.cache.stats().misses == 1
    assert_same_conditionals(cached.conds, plain.conds)


@pytest.fixture(scope="module")
def turbo():
    return random_components("turbo", seed=0)


def test_turbo_keys_norm_loudness_and_hits_bitwise(turbo, cache, tmp_path):
    clip = str(write_voice_clip(tmp_path / "long.wav", seconds=6.0, seed=3))  # Turbo needs > 5 s
    plain = random_model(ChatterboxTurboTTS, components=turbo)
    cached = random_model(CachedChatterboxTurboTTS, components=turbo, cache=cache)

    cached.prepare_conditionals(clip)
    cached.prepare_conditionals(clip)
    plain.prepare_conditionals(clip)
    assert_same_conditionals(cached.conds, plain.conds)

    cached.prepare_conditionals(clip, norm_loudness=False)
    plain.prepare_conditionals(clip, norm_loudness=False)
    assert_same_conditionals(cached.conds, plain.conds)
    stats = cache.stats()
    assert (stats.misses, stats.memory_hits) == (2, 1)


def test_turbo_refuses_a_short_clip_and_caches_nothing(turbo, cache, clips):
    model = random_model(CachedChatterboxTurboTTS, components=turbo, cache=cache)
    with pytest.raises(AssertionError, match="longer than 5 seconds"):
        model.prepare_conditionals(clips["alice"])
    assert cache.stats().entries == 0


def test_vc_target_voices_are_cached_bitwise(components, clips, cache):
    plain = random_model(ChatterboxVC, components=components)
    cached = random_model(CachedChatterboxVC, components=components, cache=cache)

    cached.set_target_voice(clips["bob"])
    cached.ref_dict["embedding"].zero_()  # the model's copy is its own
    cached.set_target_voice(clips["bob"])
    plain.set_target_voice(clips["bob"])

    assert isinstance(cached, ChatterboxVC)
    assert_same_conditionals(cached.ref_dict, plain.ref_dict)
    stats = cache.stats()
    assert (stats.misses, stats.memory_hits) == (1, 1)


def test_a_user_subclass_decorated_in_place_is_cached(components, clips, cache, reference):
    @cached_conditionals
    class HouseTTS(ChatterboxTTS):
        """A user's own subclass."""

    model = random_model(HouseTTS, components=components, cache=cache)
    model.prepare_conditionals(clips["alice"])
    model.prepare_conditionals(clips["alice"])

    assert HouseTTS.__bases__ == (ChatterboxTTS,)
    assert cache.stats().misses == 1
    assert_same_conditionals(model.conds, reference(clips["alice"], 0.5))


def test_decorating_an_upstream_class_leaves_it_untouched():
    before = dict(vars(ChatterboxTTS))
    cached_class = cached_conditionals(ChatterboxTTS)

    assert issubclass(cached_class, ChatterboxTTS)
    assert dict(vars(ChatterboxTTS)) == before


def test_the_decorator_refuses_a_class_that_is_not_a_model():
    with pytest.raises(TypeError, match="not a Chatterbox model class"):
        cached_conditionals(dict)


@pytest.mark.parametrize(
    ("cls", "missing"),
    [(CachedChatterboxTTS, "ve.safetensors"), (CachedChatterboxVC, "s3gen.safetensors")],
)
def test_from_local_names_the_missing_checkpoint_file(cls, missing, tmp_path):
    with pytest.raises(WeightsUnavailableError, match=missing.replace(".", r"\.")):
        cls.from_local(tmp_path, "cpu")
