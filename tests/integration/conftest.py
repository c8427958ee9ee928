"""Real Chatterbox architecture with random weights, built once per session."""

from __future__ import annotations

import os
import time

import pytest
from chatterbox.tts import ChatterboxTTS

from cached_tts import ConditionalCache
from cached_tts.testing import random_components, random_model, write_voice_clip

# Plain programs that tests run in their own processes: importing them here
# (for their doctests) would run them.
collect_ignore = ["programs"]


def aged(path):
    """Set a file's times back so its hash is remembered (it is no longer racy)."""
    old = time.time() - 3600
    os.utime(path, (old, old))
    return path


@pytest.fixture(scope="session")
def components():
    return random_components("english", seed=0)


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    return {
        "alice": str(write_voice_clip(folder / "alice.wav", seconds=2.5, seed=1)),
        "bob": str(write_voice_clip(folder / "bob.wav", seconds=2.5, seed=2)),
    }


@pytest.fixture
def short_generation(components, tmp_path, monkeypatch):
    """A 1 s voice, and generation capped at 10 speech tokens: a generate in 3 s, not 9.

    S3Gen decodes the voice's tokens with the new ones; the cap holds for the test.
    """
    inference = components.t3.inference

    def ten_tokens(*args, max_new_tokens=None, **kwargs):  # noqa: ARG001 -- generate asks for 1000
        return inference(*args, max_new_tokens=10, **kwargs)

    monkeypatch.setattr(components.t3, "inference", ten_tokens)
    return str(write_voice_clip(tmp_path / "short.wav", seconds=1.0, seed=1))


@pytest.fixture(scope="session")
def plain(components):
    """A plain upstream ChatterboxTTS on the same modules: the reference."""
    return random_model(ChatterboxTTS, components=components)


@pytest.fixture(scope="session")
def reference(plain):
    """What the plain model prepares for (clip, exaggeration), memoized."""
    prepared = {}

    def conds(clip, exaggeration=0.5):
        if (clip, exaggeration) not in prepared:
            plain.prepare_conditionals(clip, exaggeration=exaggeration)
            prepared[clip, exaggeration] = plain.conds
        return prepared[clip, exaggeration]

    return conds


@pytest.fixture(scope="session")
def warm():
    """New processes with chatterbox imported and ``components`` built: see warm.py."""
    from warm import WarmProcesses

    server = WarmProcesses()
    yield server
    server.close()


@pytest.fixture
def cache(tmp_path):
    return ConditionalCache(tmp_path / "cache")


@pytest.fixture(scope="session")
def hub_home(tmp_path_factory):
    """An offline Hugging Face cache holding a random-weight English checkpoint.

    Full size (1.6 GB, the 520M-parameter T3), so it is written once per session
    and removed at its end. Yields (HF_HOME folder, snapshot folder).
    """
    import shutil

    from cached_tts.testing import write_hub_cache

    home = tmp_path_factory.mktemp("hf_home")
    snapshot = write_hub_cache(home, "english", seed=0)
    yield home, snapshot
    shutil.rmtree(home, ignore_errors=True)
