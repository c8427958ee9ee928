"""cached_tts.enable(): chatterbox's own classes, cached in place and restored exactly."""

from __future__ import annotations

import inspect
import pickle
import pydoc

import chatterbox
import pytest
from chatterbox.tts import ChatterboxTTS
from chatterbox.vc import ChatterboxVC

import cached_tts
from cached_tts import CachedChatterboxTTS, ConditionalCache
from cached_tts._wrapping.patching import is_enabled, patchable_classes
from cached_tts.testing import random_model


@pytest.fixture(autouse=True)
def _always_disabled_afterwards():
    yield
    cached_tts.disable()


@pytest.fixture
def memory_cache():
    return ConditionalCache(cache_dir=None)


def snapshot():
    return {cls: dict(cls.__dict__) for cls in patchable_classes()}


def assert_identical(before, after):
    for cls, held in before.items():
        now = after[cls]
        assert set(now) == set(held), cls
        for name, value in held.items():
            assert now[name] is value, f"{cls.__name__}.{name}"


def test_every_chatterbox_model_class_of_this_release_is_patched():
    names = {cls.__name__ for cls in patchable_classes()}
    assert names == {
        "ChatterboxTTS",
        "ChatterboxMultilingualTTS",
        "ChatterboxTurboTTS",
        "ChatterboxVC",
    }
    cached_tts.enable()
    for cls in patchable_classes():
        assert "cache" in cls.__dict__, cls


def test_disable_gives_back_the_very_same_functions_and_removes_added_names():
    before = snapshot()
    original = ChatterboxTTS.__dict__["prepare_conditionals"]

    cached_tts.enable()
    assert ChatterboxTTS.__dict__["prepare_conditionals"] is not original
    cached_tts.disable()

    assert ChatterboxTTS.__dict__["prepare_conditionals"] is original
    assert "cache" not in ChatterboxTTS.__dict__
    assert_identical(before, snapshot())


def test_enabling_twice_wraps_once():
    original = ChatterboxTTS.__dict__["prepare_conditionals"]
    before = snapshot()

    cached_tts.enable()
    wrapper = ChatterboxTTS.__dict__["prepare_conditionals"]
    cached_tts.enable()

    assert ChatterboxTTS.__dict__["prepare_conditionals"] is wrapper
    assert wrapper.__wrapped__ is original
    cached_tts.disable()
    assert_identical(before, snapshot())


def test_disable_without_enable_changes_nothing():
    before = snapshot()
    cached_tts.disable()
    assert_identical(before, snapshot())


def test_the_context_manager_restores_the_classes_even_after_an_error(memory_cache):
    before = snapshot()

    def fail_inside():
        with cached_tts.enabled(cache=memory_cache):
            assert is_enabled()
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_inside()

    assert not is_enabled()
    assert_identical(before, snapshot())


def test_a_nested_block_leaves_the_outer_one_in_force(memory_cache):
    inner_cache = ConditionalCache(cache_dir=None)
    with cached_tts.enabled(cache=memory_cache):
        with cached_tts.enabled(cache=inner_cache):
            pass
        assert is_enabled()
        assert ChatterboxTTS.cache.fget(object.__new__(ChatterboxTTS)) is memory_cache
    assert not is_enabled()


def test_the_classes_still_pickle_document_and_check_types(memory_cache, components):
    signatures = {
        name: inspect.signature(getattr(ChatterboxTTS, name))
        for name in ("prepare_conditionals", "generate", "from_pretrained", "from_local")
    }
    constructor = inspect.signature(ChatterboxTTS)
    before = random_model(ChatterboxTTS, components=components)

    with cached_tts.enabled(cache=memory_cache):
        after = random_model(ChatterboxTTS, components=components)
        assert isinstance(before, ChatterboxTTS)
        assert isinstance(after, ChatterboxTTS)
        assert pickle.loads(pickle.dumps(ChatterboxTTS)) is ChatterboxTTS  # noqa: S301 -- our own bytes
        assert inspect.signature(ChatterboxTTS) == constructor
        for name, signature in signatures.items():
            assert inspect.signature(getattr(ChatterboxTTS, name)) == signature
        assert "prepare_conditionals" in pydoc.render_doc(ChatterboxTTS, renderer=pydoc.plaintext)
        assert chatterbox.ChatterboxTTS is ChatterboxTTS


def test_enable_does_nothing_when_caching_is_disabled_by_the_environment(monkeypatch):
    monkeypatch.setenv("CACHED_TTS_DISABLE", "1")
    before = snapshot()

    cached_tts.enable()

    assert not is_enabled()
    assert_identical(before, snapshot())


def test_enable_rejects_a_cache_that_is_not_a_conditional_cache(tmp_path):
    with pytest.raises(TypeError, match="ConditionalCache"):
        cached_tts.enable(cache=str(tmp_path))
    assert not is_enabled()


@pytest.mark.slow
def test_a_model_made_before_enable_is_cached_after(components, clips, memory_cache):
    model = random_model(ChatterboxTTS, components=components)

    cached_tts.enable(cache=memory_cache)
    for _ in range(3):
        model.prepare_conditionals(clips["alice"])

    assert model.cache is memory_cache
    stats = memory_cache.stats()
    assert (stats.misses, stats.memory_hits) == (1, 2)


@pytest.mark.slow
def test_a_model_given_its_own_cache_keeps_it(components, clips, memory_cache):
    own = ConditionalCache(cache_dir=None)
    cached_tts.enable(cache=memory_cache)
    model = random_model(ChatterboxTTS, components=components, cache=own)

    model.prepare_conditionals(clips["alice"])

    assert (own.stats().misses, memory_cache.stats().misses) == (1, 0)


@pytest.mark.slow
def test_a_cached_subclass_under_enable_looks_up_once_per_call(components, clips, memory_cache):
    own = ConditionalCache(cache_dir=None)
    model = random_model(CachedChatterboxTTS, components=components, cache=own)
    cached_tts.enable(cache=memory_cache)

    model.prepare_conditionals(clips["alice"])
    model.prepare_conditionals(clips["alice"])

    stats = own.stats()
    assert (stats.misses, stats.hits) == (1, 1)
    assert memory_cache.stats().hits + memory_cache.stats().misses == 0


@pytest.mark.slow
def test_after_disable_a_model_prepares_without_any_cache(components, clips, memory_cache):
    model = random_model(ChatterboxTTS, components=components)
    with cached_tts.enabled(cache=memory_cache):
        model.prepare_conditionals(clips["alice"])

    model.prepare_conditionals(clips["alice"])

    assert not hasattr(model, "cache")
    assert memory_cache.stats().misses == 1
    assert memory_cache.stats().hits == 0


@pytest.mark.slow
def test_voice_conversion_target_voices_are_cached_once_enabled(components, clips, memory_cache):
    model = random_model(ChatterboxVC, components=components)
    cached_tts.enable(cache=memory_cache)

    model.set_target_voice(clips["bob"])
    model.set_target_voice(clips["bob"])

    stats = memory_cache.stats()
    assert (stats.misses, stats.hits) == (1, 1)
