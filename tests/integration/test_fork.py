"""A worker forked while the model prepares in the background (gunicorn --preload) works."""

from __future__ import annotations

import os
import sys
import threading

import librosa
import pytest
import torch
from forking import start_child, wait_for_child

import cached_tts
from cached_tts import CachedChatterboxTTS
from cached_tts.testing import assert_same_conditionals, random_model

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="Windows cannot fork"),
]

WAIT = 120.0  # a hang is what this guards against, not a timing


def test_a_child_forked_during_a_background_warm_prepares_voices(
    components, cache, clips, plain, monkeypatch
):
    model = random_model(CachedChatterboxTTS, components=components, cache=cache)
    parent, inside, go = os.getpid(), threading.Event(), threading.Event()
    real_load = librosa.load

    def load_slowly_in_the_parent(*args, **kwargs):
        if os.getpid() == parent:  # the warm thread, mid-preparation
            inside.set()
            go.wait(WAIT)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(librosa, "load", load_slowly_in_the_parent)
    warming = cached_tts.warm(model, [clips["alice"]], background=True)
    assert inside.wait(WAIT)

    def child():
        # torch's own CPU thread pool (OpenMP) does not survive a fork once the
        # parent used it: with or without this library, a child's first
        # parallel op then hangs. Workers set this, as torch's DataLoader does.
        # (Fewer threads also change the bits a preparation computes, so the
        # reference is computed here too.)
        torch.set_num_threads(1)
        # The model's lock, held by the parent's warm thread at the fork...
        model.prepare_conditionals(clips["bob"])
        plain.prepare_conditionals(clips["bob"])
        assert_same_conditionals(model.conds, plain.conds)
        # ...and the voice it was preparing, in flight there: the child takes
        # its turn on the parent's file lock and reads what the parent stored.
        model.prepare_conditionals(clips["alice"])
        assert model.cache.stats().disk_hits == 1

    try:
        pid = start_child(child)  # gunicorn --preload forks its workers here
    finally:
        go.set()
    assert wait_for_child(pid, timeout=WAIT) == "ok"
    assert warming.result(timeout=WAIT).new == [clips["alice"]]
