"""Clips given in memory, as servers pass uploads: cached like a file with the same bytes."""

from __future__ import annotations

import io
from pathlib import Path

import librosa
import pytest
from chatterbox.tts import ChatterboxTTS

from cached_tts import CachedChatterboxTTS, cached_conditionals
from cached_tts.testing import assert_same_conditionals, random_model

pytestmark = pytest.mark.slow


@pytest.fixture
def model(components, cache):
    return random_model(CachedChatterboxTTS, components=components, cache=cache)


@pytest.fixture
def data(clips):
    return {name: Path(path).read_bytes() for name, path in clips.items()}


@pytest.fixture
def decodes(monkeypatch):
    """How many times upstream decodes a clip."""
    real_load, calls = librosa.load, []

    def counted(*args, **kwargs):
        calls.append(args[0])
        return real_load(*args, **kwargs)

    monkeypatch.setattr(librosa, "load", counted)
    return calls


def test_uploads_of_the_same_bytes_are_prepared_once_like_the_file(model, clips, data, reference):
    model.prepare_conditionals(io.BytesIO(data["alice"]))
    assert_same_conditionals(model.conds, reference(clips["alice"]))

    model.prepare_conditionals(io.BytesIO(data["alice"]), exaggeration=0.7)
    assert_same_conditionals(model.conds, reference(clips["alice"], 0.7))
    model.prepare_conditionals(clips["alice"])  # the file with those bytes

    stats = model.cache.stats()
    assert (stats.misses, stats.memory_hits) == (1, 2)
    assert_same_conditionals(model.conds, reference(clips["alice"]))


def test_an_upload_is_hashed_from_its_position_and_left_read_as_upstream_leaves_it(
    model, clips, data, reference
):
    model.prepare_conditionals(clips["alice"])
    upload = io.BytesIO(b"form-data header " + data["alice"])
    upload.seek(len(b"form-data header "))

    model.prepare_conditionals(upload)

    assert model.cache.stats().memory_hits == 1
    assert_same_conditionals(model.conds, reference(clips["alice"]))
    assert upload.tell() == len(upload.getvalue())  # read to the end, as upstream leaves it


def test_streams_with_the_same_bytes_at_other_positions_never_share_an_entry(
    model, plain, clips, data, reference
):
    both = data["bob"] + data["alice"]
    at_alice = io.BytesIO(both)
    at_alice.seek(len(data["bob"]))
    model.prepare_conditionals(at_alice)
    assert_same_conditionals(model.conds, reference(clips["alice"]))
    with pytest.raises(Exception) as plain_failure:  # noqa: PT011 -- whatever upstream raises
        plain.prepare_conditionals(io.BytesIO(both))

    # From its start the same bytes are not alice's voice: upstream fails on them.
    with pytest.raises(type(plain_failure.value)):
        model.prepare_conditionals(io.BytesIO(both))

    assert model.cache.stats().entries == 1


class Unseekable(io.RawIOBase):
    """A stream read once, front to back, like a socket."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._data.readinto(buffer)


@pytest.mark.parametrize("kind", ["unseekable", "bytes"])
def test_a_clip_the_cache_cannot_read_back_is_upstreams_alone(model, plain, data, kind):
    def clip():
        return Unseekable(data["alice"]) if kind == "unseekable" else data["alice"]

    with pytest.raises(Exception) as plain_failure:  # noqa: PT011 -- whatever upstream raises
        plain.prepare_conditionals(clip())

    with pytest.raises(type(plain_failure.value)):
        model.prepare_conditionals(clip())

    stats = model.cache.stats()
    assert (stats.entries, stats.misses) == (0, 0)


def test_an_upload_written_to_while_it_is_decoded_stores_nothing_under_its_old_hash(
    model, clips, data, reference, monkeypatch
):
    upload = io.BytesIO(data["alice"])
    real_load = librosa.load

    def load_after_overwriting(clip, *args, **kwargs):
        if clip is upload:  # bob's bytes over alice's, after the hash was taken
            start = upload.tell()
            upload.write(data["bob"])
            upload.seek(start)
        return real_load(clip, *args, **kwargs)

    monkeypatch.setattr(librosa, "load", load_after_overwriting)

    model.prepare_conditionals(upload)

    assert_same_conditionals(model.conds, reference(clips["bob"]))  # what upstream decoded
    model.prepare_conditionals(io.BytesIO(data["alice"]))
    assert_same_conditionals(model.conds, reference(clips["alice"]))


@cached_conditionals
class AnnotatingTTS(ChatterboxTTS):
    """Keeps a note beside the voice: not a tensor, so the voice cannot be cached."""

    def prepare_conditionals(self, wav_fpath, exaggeration=0.5):
        super().prepare_conditionals(wav_fpath, exaggeration=exaggeration)
        self.conds.gen["note"] = "annotated"


def test_a_voice_that_cannot_be_cached_is_prepared_once_per_call(
    components, cache, clips, reference, decodes
):
    model = random_model(AnnotatingTTS, components=components, cache=cache)

    model.prepare_conditionals(clips["alice"])

    assert len(decodes) == 1
    assert model.conds.gen.pop("note") == "annotated"
    assert_same_conditionals(model.conds, reference(clips["alice"]))
    assert cache.stats().entries == 0
