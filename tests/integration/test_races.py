"""Races between a lookup and the world: clips that change, workers that take their time."""

from __future__ import annotations

import os
import shutil
import threading

import chatterbox.tts
import librosa
import pytest

from cached_tts import CachedChatterboxTTS, ConditionalCache
from cached_tts.testing import assert_same_conditionals, random_model

pytestmark = pytest.mark.slow

WAIT = 120.0  # how long a test waits for an event before it fails; never a timing check


@pytest.fixture
def model(components, cache):
    return random_model(CachedChatterboxTTS, components=components, cache=cache)


def replace_file(path, source):
    """Replace ``path`` with a copy of ``source``, as a writer saving atomically does."""
    staged = f"{path}.new"
    shutil.copyfile(source, staged)
    os.replace(staged, path)


@pytest.fixture
def upload_replaced_while_decoded(clips, tmp_path, monkeypatch):
    """A copy of alice's clip that becomes bob's the first time upstream decodes it."""
    upload = tmp_path / "upload.wav"
    shutil.copyfile(clips["alice"], upload)
    real_load = librosa.load

    def load_after_replacing(path, *args, **kwargs):
        # Upstream decodes after the hash was taken: the file is replaced in between.
        if os.fspath(path) == str(upload) and not load_after_replacing.replaced:
            replace_file(upload, clips["bob"])
            load_after_replacing.replaced = True
        return real_load(path, *args, **kwargs)

    load_after_replacing.replaced = False
    monkeypatch.setattr(librosa, "load", load_after_replacing)
    return load_after_replacing, upload


def test_a_clip_replaced_while_it_is_decoded_stores_nothing_under_its_old_hash(
    model, components, clips, reference, upload_replaced_while_decoded
):
    alice, bob = reference(clips["alice"]), reference(clips["bob"])
    load, upload = upload_replaced_while_decoded

    model.prepare_conditionals(str(upload))

    assert load.replaced
    assert_same_conditionals(model.conds, bob)  # the caller gets what upstream decoded
    model.prepare_conditionals(clips["alice"])  # alice's bytes, looked up again
    assert_same_conditionals(model.conds, alice)
    fresh = random_model(
        CachedChatterboxTTS, components=components, cache=ConditionalCache(model.cache.directory)
    )
    fresh.prepare_conditionals(clips["alice"])  # and from disk
    assert_same_conditionals(fresh.conds, alice)


class Stop(Exception):  # noqa: N818 -- not an error: where the test stops a generate
    """Raised by generate right after it prepared its voice: the rest is not under test."""


@pytest.fixture
def generate_until_prepared(monkeypatch):
    """Upstream's own generate, stopped with ``Stop`` right after its preparation."""

    def stop(_text):
        raise Stop

    monkeypatch.setattr(chatterbox.tts, "punc_norm", stop)


class WaitForOtherProcess:
    """Parks a cache's lookups in the wait for another process's file lock, until ``go``."""

    def __init__(self, cache, monkeypatch):
        self.waiting, self.go = threading.Event(), threading.Event()
        real = cache._disk._acquire_process_lock

        def parked(key, source):
            self.waiting.set()
            self.go.wait(WAIT)
            return real(key, source)

        monkeypatch.setattr(cache._disk, "_acquire_process_lock", parked)


def in_thread(function):
    """Run ``function`` in a thread; returns an event set when it is done, and its outcome."""
    done, outcome = threading.Event(), []

    def run():
        try:
            outcome.append(function())
        except BaseException as exc:  # noqa: BLE001 -- handed to the test
            outcome.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    return done, outcome


def test_a_memory_hit_is_served_while_the_model_waits_for_another_process(
    model, clips, reference, monkeypatch
):
    model.prepare_conditionals(clips["alice"])  # alice is in memory
    other = WaitForOtherProcess(model.cache, monkeypatch)
    bob_done, _ = in_thread(lambda: model.prepare_conditionals(clips["bob"]))
    try:
        assert other.waiting.wait(WAIT)  # bob's lookup waits for "another process"

        hit_done, hit = in_thread(lambda: model.prepare_conditionals(clips["alice"]))

        assert hit_done.wait(WAIT), "a memory hit queued behind another worker's preparation"
        assert hit == [None]
        assert not bob_done.is_set()
    finally:
        other.go.set()
    assert bob_done.wait(WAIT)
    assert_same_conditionals(model.conds, reference(clips["bob"]))


@pytest.mark.usefixtures("generate_until_prepared")
def test_a_generate_waiting_for_another_process_lets_the_models_hits_through(
    model, clips, reference, monkeypatch
):
    model.prepare_conditionals(clips["alice"])  # alice is in memory
    other = WaitForOtherProcess(model.cache, monkeypatch)
    bob_done, bob = in_thread(lambda: model.generate("Hi.", audio_prompt_path=clips["bob"]))
    try:
        assert other.waiting.wait(WAIT)  # bob's generate waits for "another process"

        hit_done, hit = in_thread(
            lambda: model.generate("Hi.", audio_prompt_path=clips["alice"], exaggeration=0.7)
        )

        assert hit_done.wait(WAIT), "a generate queued behind another worker's preparation"
        assert isinstance(hit[0], Stop)  # it ran to where the test stops it
        assert_same_conditionals(model.conds, reference(clips["alice"], 0.7))
        assert not bob_done.is_set()
    finally:
        other.go.set()
    assert bob_done.wait(WAIT)
    assert isinstance(bob[0], Stop)
    assert_same_conditionals(model.conds, reference(clips["bob"]))
    assert model.cache.stats().misses == 2  # each voice prepared once, generate included
