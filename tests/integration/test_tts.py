"""CachedChatterboxTTS on the real architecture, against plain ChatterboxTTS."""

from __future__ import annotations

import threading

import pytest
import torch
from chatterbox.tts import ChatterboxTTS

from cached_tts import CachedChatterboxTTS, ConditionalCache
from cached_tts.testing import (
    assert_same_conditionals,
    random_model,
    with_other_voice_encoder,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def model(components, cache):
    return random_model(CachedChatterboxTTS, components=components, cache=cache)


def test_the_cached_class_is_a_drop_in_subclass(model):
    assert isinstance(model, ChatterboxTTS)
    assert isinstance(model.cache, ConditionalCache)


def test_a_miss_is_bitwise_what_the_plain_model_prepares(model, clips, reference):
    model.prepare_conditionals(clips["alice"], exaggeration=0.7)

    assert_same_conditionals(model.conds, reference(clips["alice"], 0.7))
    assert model.cache.stats().misses == 1


def test_a_memory_hit_is_bitwise_the_same_and_prepares_nothing(model, clips, reference):
    model.prepare_conditionals(clips["alice"])
    model.prepare_conditionals(clips["alice"])

    stats = model.cache.stats()
    assert (stats.misses, stats.memory_hits) == (1, 1)
    assert stats.seconds_saved > 0
    assert_same_conditionals(model.conds, reference(clips["alice"], 0.5))


def test_a_disk_hit_in_a_new_cache_is_bitwise_the_plain_result(
    model, components, clips, reference, tmp_path
):
    model.prepare_conditionals(clips["alice"], exaggeration=0.5)
    fresh = ConditionalCache(tmp_path / "cache")
    other = random_model(CachedChatterboxTTS, components=components, cache=fresh)

    other.prepare_conditionals(clips["alice"], exaggeration=0.9)

    stats = fresh.stats()
    assert (stats.misses, stats.disk_hits) == (0, 1)
    assert_same_conditionals(other.conds, reference(clips["alice"], 0.9))


def test_changing_exaggeration_never_prepares_again(model, clips, reference):
    for exaggeration in (0.25, 0.5, 1.0, 2.0):
        model.prepare_conditionals(clips["bob"], exaggeration=exaggeration)
        assert_same_conditionals(model.conds, reference(clips["bob"], exaggeration))

    assert model.cache.stats().misses == 1


def test_what_the_model_holds_is_its_own(model, clips, reference):
    model.prepare_conditionals(clips["alice"])
    # What upstream generate() and notebook users do to the model's state.
    model.conds.t3.speaker_emb.mul_(0)
    model.conds.gen["prompt_feat"].zero_()
    model.conds.t3 = None

    model.prepare_conditionals(clips["alice"])

    assert_same_conditionals(model.conds, reference(clips["alice"], 0.5))


def test_cached_conditionals_carry_no_autograd_graph(model, clips, reference):
    model.prepare_conditionals(clips["alice"])

    # The plain model records a graph for the speaker embedding; the cache must not.
    assert reference(clips["alice"], 0.5).gen["embedding"].grad_fn is not None
    tensors = [*vars(model.conds.t3).values(), *model.conds.gen.values()]
    for tensor in (t for t in tensors if torch.is_tensor(t)):
        assert tensor.grad_fn is None
        assert not tensor.is_inference()


def test_models_with_different_weights_sharing_a_folder_never_share_entries(
    components, clips, cache
):
    other_components = with_other_voice_encoder(components, seed=7)
    first = random_model(CachedChatterboxTTS, components=components, cache=cache)
    second = random_model(CachedChatterboxTTS, components=other_components, cache=cache)
    second_plain = random_model(ChatterboxTTS, components=other_components)

    first.prepare_conditionals(clips["alice"])
    second.prepare_conditionals(clips["alice"])
    second_plain.prepare_conditionals(clips["alice"])

    assert cache.stats().misses == 2
    assert cache.stats().disk_entries == 2
    assert_same_conditionals(second.conds, second_plain.conds)
    assert not torch.equal(first.conds.t3.speaker_emb, second.conds.t3.speaker_emb)


def test_threads_asking_for_one_voice_prepare_it_once(components, clips, cache, reference):
    models = [
        random_model(CachedChatterboxTTS, components=components, cache=cache) for _ in range(4)
    ]
    start = threading.Barrier(len(models))
    errors = []

    def prepare(m):
        start.wait()
        try:
            m.prepare_conditionals(clips["bob"], exaggeration=0.5)
        except Exception as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=prepare, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert cache.stats().misses == 1
    for m in models:
        assert_same_conditionals(m.conds, reference(clips["bob"], 0.5))


def test_generate_gives_the_plain_models_waveform_under_the_same_seed(
    model, plain, short_generation, reference
):
    text, voice = "Hello there.", short_generation
    torch.manual_seed(0)
    expected = plain.generate(text, audio_prompt_path=voice)

    torch.manual_seed(0)
    on_miss = model.generate(text, audio_prompt_path=voice)
    torch.manual_seed(0)
    on_hit = model.generate(text, audio_prompt_path=voice)

    assert torch.equal(on_miss, expected)
    assert torch.equal(on_hit, expected)
    stats = model.cache.stats()
    assert (stats.misses, stats.memory_hits) == (1, 1)
    # generate() sets conds.t3.cond_prompt_speech_emb; the cache never sees it.
    model.prepare_conditionals(voice)
    assert_same_conditionals(model.conds, reference(voice, 0.5))


def test_a_missing_clip_raises_before_any_model_work(model, tmp_path):
    missing = tmp_path / "nope.wav"

    with pytest.raises(FileNotFoundError, match=r"nope\.wav"):
        model.prepare_conditionals(str(missing))
    with pytest.raises(FileNotFoundError, match=r"nope\.wav"):
        model.generate("Hi.", audio_prompt_path=str(missing))
    assert model.cache.stats().misses == 0


def test_a_folder_as_clip_raises_is_a_directory_error(model, tmp_path):
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        model.prepare_conditionals(str(tmp_path))


def test_audio_that_cannot_be_decoded_raises_and_caches_nothing(model, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 10)

    with pytest.raises(Exception):  # noqa: B017, PT011 -- whatever the decoder raises
        model.prepare_conditionals(str(broken))

    stats = model.cache.stats()
    assert (stats.entries, stats.disk_entries, stats.misses) == (0, 0, 0)


def test_a_model_id_replaces_the_weights_fingerprint(components, clips, cache):
    named = random_model(CachedChatterboxTTS, components=components, cache=cache, model_id="v1")
    other = random_model(CachedChatterboxTTS, components=components, cache=cache, model_id="v2")

    named.prepare_conditionals(clips["alice"])
    other.prepare_conditionals(clips["alice"])

    assert cache.stats().misses == 2
