"""Subclasses and forks that do more than upstream, cached with ``cached_conditionals``.

Each is compared with the very same class uncached: a cached method returns
what the wrapped one returns, builds ``emotion_adv`` as it does, and applies
the exaggeration that the call which prepares passes.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from chatterbox.models.t3.modules.cond_enc import T3Cond
from chatterbox.tts import ChatterboxTTS

from cached_tts import CachedChatterboxTTS, ConditionalCache, cached_conditionals
from cached_tts.testing import assert_same_conditionals, assert_same_tensors, random_model

pytestmark = pytest.mark.slow


class ReturningFork(ChatterboxTTS):
    """As block-diffusion forks do: ``emotion_adv`` in bfloat16, and ``self.conds`` returned."""

    def prepare_conditionals(self, wav_fpath, exaggeration=0.5):
        super().prepare_conditionals(wav_fpath, exaggeration)
        t3 = self.conds.t3
        self.conds.t3 = T3Cond(
            speaker_emb=t3.speaker_emb,
            cond_prompt_speech_tokens=t3.cond_prompt_speech_tokens,
            emotion_adv=exaggeration * torch.ones(1, 1, 1, dtype=torch.bfloat16),
        ).to(device=self.device)
        return self.conds


@cached_conditionals
class CachedReturningFork(ReturningFork):
    """The same fork, cached."""


def test_a_fork_gets_back_what_it_returns_in_the_dtypes_it_built(components, clips, tmp_path):
    plain = random_model(ReturningFork, components=components)
    expected = plain.prepare_conditionals(clips["alice"], exaggeration=0.7)
    cache_dir = tmp_path / "cache"
    model = random_model(
        CachedReturningFork, components=components, cache=ConditionalCache(cache_dir)
    )
    # A new cache object on the folder: what a next process reads from disk.
    other = random_model(
        CachedReturningFork, components=components, cache=ConditionalCache(cache_dir)
    )

    served = [model, model, other]  # a miss, a memory hit, a disk hit
    for each in served:
        returned = each.prepare_conditionals(clips["alice"], exaggeration=0.7)
        assert returned is each.conds
        assert_same_conditionals(returned, expected)
        assert returned.t3.emotion_adv.dtype == torch.bfloat16
    counts = (model.cache.stats().misses, model.cache.stats().memory_hits)
    assert (counts, other.cache.stats().disk_hits) == ((1, 1), 1)


def test_upstream_s_preparation_returns_none_on_a_miss_and_on_a_hit(components, clips, cache):
    model = random_model(CachedChatterboxTTS, components=components, cache=cache)

    assert model.prepare_conditionals(clips["alice"]) is None
    assert model.prepare_conditionals(clips["alice"]) is None
    assert model.cache.stats().memory_hits == 1


class PairFork(ChatterboxTTS):
    """Returns a tuple of its own: no hit could give that back."""

    def prepare_conditionals(self, wav_fpath, exaggeration=0.5):
        super().prepare_conditionals(wav_fpath, exaggeration)
        return self.conds.t3, self.conds.gen


@cached_conditionals
class CachedPairFork(PairFork):
    """The same fork, cached."""


def test_a_preparation_that_returns_something_else_runs_uncached_and_returns_it(
    components, clips, cache
):
    plain = random_model(PairFork, components=components)
    model = random_model(CachedPairFork, components=components, cache=cache)
    t3, gen = plain.prepare_conditionals(clips["bob"])

    for _ in range(2):
        returned = model.prepare_conditionals(clips["bob"])
        assert returned[0] is model.conds.t3
        assert_same_tensors(returned[0].speaker_emb, t3.speaker_emb)
        assert_same_tensors(returned[1]["embedding"], gen["embedding"])
    assert cache.stats().entries == 0


class HalvingTTS(ChatterboxTTS):
    """A generate that prepares its voice at half the exaggeration it is given.

    It returns what it conditions on instead of audio: generating on CPU takes minutes.
    """

    def generate(self, text, audio_prompt_path=None, exaggeration=0.5, **_options):
        del text
        if audio_prompt_path:
            self.prepare_conditionals(audio_prompt_path, exaggeration=exaggeration / 2)
        return self.conds.t3.emotion_adv.clone()


@cached_conditionals
class CachedHalvingTTS(HalvingTTS):
    """The same subclass, cached."""


def test_the_exaggeration_applied_is_the_one_the_preparing_call_passes(components, clips, cache):
    plain = random_model(HalvingTTS, components=components)
    model = random_model(CachedHalvingTTS, components=components, cache=cache)

    for exaggeration in (0.8, 0.3):  # a miss, then a hit at another exaggeration
        expected = plain.generate(
            "Hi.", audio_prompt_path=clips["alice"], exaggeration=exaggeration
        )
        applied = model.generate("Hi.", audio_prompt_path=clips["alice"], exaggeration=exaggeration)
        assert_same_tensors(applied, expected)
        assert applied.item() == pytest.approx(exaggeration / 2)
    assert (cache.stats().misses, cache.stats().memory_hits) == (1, 1)


class T3DtypeFork(ChatterboxTTS):
    """As forks that run T3 in bfloat16 do: ``emotion_adv`` in T3's dtype."""

    def prepare_conditionals(self, wav_fpath, exaggeration=0.5):
        super().prepare_conditionals(wav_fpath, exaggeration)
        dtype = next(self.t3.parameters()).dtype
        self.conds.t3.emotion_adv = exaggeration * torch.ones(1, 1, 1, dtype=dtype)


@cached_conditionals
class CachedT3DtypeFork(T3DtypeFork):
    """The same fork, cached."""


def test_a_voice_prepared_under_one_t3_dtype_is_not_served_under_another(
    components, clips, tmp_path
):
    # A T3 of its own: the session's is shared with every other test.
    own = dataclasses.replace(components, t3=copy.deepcopy(components.t3))
    plain = random_model(T3DtypeFork, components=own)
    model = random_model(CachedT3DtypeFork, components=own, cache=ConditionalCache(tmp_path))
    # Another process on the same folder, its T3 left in float32.
    other = random_model(CachedT3DtypeFork, components=components, cache=ConditionalCache(tmp_path))

    model.prepare_conditionals(clips["alice"])  # stored under a float32 T3
    model.prepare_conditionals(clips["alice"])  # remembered
    own.t3.to(torch.bfloat16)
    plain.prepare_conditionals(clips["alice"], exaggeration=0.7)
    for _ in range(2):  # a miss, then a hit by the remembered call
        model.prepare_conditionals(clips["alice"], exaggeration=0.7)
        assert_same_conditionals(model.conds, plain.conds)
    other.prepare_conditionals(clips["alice"], exaggeration=0.7)  # from disk

    assert model.conds.t3.emotion_adv.dtype == torch.bfloat16
    assert other.conds.t3.emotion_adv.dtype == torch.float32
    assert (model.cache.stats().misses, other.cache.stats().disk_hits) == (2, 1)


def test_a_float64_exaggeration_tensor_first_leaves_later_floats_as_upstream_builds_them(
    components, clips, cache
):
    plain = random_model(ChatterboxTTS, components=components)
    model = random_model(CachedChatterboxTTS, components=components, cache=cache)
    tensor = torch.tensor([0.5], dtype=torch.float64)

    model.prepare_conditionals(clips["alice"], exaggeration=tensor)
    assert model.conds.t3.emotion_adv.dtype == torch.float64
    plain.prepare_conditionals(clips["alice"], exaggeration=0.5)
    model.prepare_conditionals(clips["alice"], exaggeration=0.5)

    assert_same_conditionals(model.conds, plain.conds)
    assert cache.stats().memory_hits == 1
