"""A digest names bytes the clip really held, and still holds when it is stored."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from cached_tts._exceptions import ContentChangedError
from cached_tts._keys import hashing as _hashing
from cached_tts._keys.clip import clip_of, is_seekable_stream
from cached_tts._keys.hashing import FileHasher, sha256_file

OLD = b"RIFF" + b"a" * 60
NEW = b"RIFF" + b"b" * 70  # another size, so the signature moves


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rewrite_while_hashing(monkeypatch, path, times):
    """Each of the first ``times`` reads of ``path`` is followed by a rewrite of it."""
    real = _hashing.sha256_file
    rewrites = iter([NEW + bytes([n]) for n in range(times)])

    def hash_then_rewrite(name):
        digest = real(name)
        data = next(rewrites, None)
        if data is not None:
            path.write_bytes(data)
        return digest

    monkeypatch.setattr(_hashing, "sha256_file", hash_then_rewrite)


def test_a_file_changed_while_hashed_gives_the_digest_of_what_it_holds(tmp_path, monkeypatch):
    clip = tmp_path / "voice.wav"
    clip.write_bytes(OLD)
    rewrite_while_hashing(monkeypatch, clip, times=1)
    hasher = FileHasher(tmp_path / "memo")

    digest = hasher.hash(clip)

    assert digest == sha(clip.read_bytes())
    assert digest != sha(OLD)


def test_a_file_that_keeps_changing_while_hashed_gives_no_digest(tmp_path, monkeypatch):
    clip = tmp_path / "voice.wav"
    clip.write_bytes(OLD)
    rewrite_while_hashing(monkeypatch, clip, times=10)
    hasher = FileHasher(tmp_path / "memo")

    with pytest.raises(ContentChangedError, match="changed every time"):
        hasher.hash(clip)

    assert not list(tmp_path.glob("memo/*.json"))
    assert len(hasher._memo) == 0
    monkeypatch.undo()
    assert hasher.hash(clip) == sha(clip.read_bytes())  # nothing torn was remembered


@pytest.mark.usefixtures("clock_ahead")
def test_a_file_rewritten_after_its_snapshot_no_longer_holds_it(tmp_path):
    clip = tmp_path / "voice.wav"
    clip.write_bytes(OLD)
    hasher = FileHasher()
    snapshot = hasher.snapshot(clip)
    assert not snapshot.racy
    assert hasher.still_holds(snapshot)

    clip.write_bytes(NEW)

    assert not hasher.still_holds(snapshot)


@pytest.mark.usefixtures("clock_ahead")
def test_an_old_file_with_its_signature_unchanged_is_not_read_again(tmp_path, monkeypatch):
    clip = tmp_path / "voice.wav"
    clip.write_bytes(OLD)
    hasher = FileHasher()
    snapshot = hasher.snapshot(clip)

    monkeypatch.setattr(_hashing, "sha256_file", lambda _: pytest.fail("read again"))

    assert hasher.still_holds(snapshot)


def freeze_stat(monkeypatch, path):
    """``os.stat(path)`` keeps answering what it answers now: a rewrite in one timestamp tick."""
    real = os.stat
    frozen = real(path)

    def stat(name, *args, **kwargs):
        if os.fspath(name) == os.fspath(path):
            return frozen
        return real(name, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)


def test_a_racy_file_rewritten_within_its_timestamp_tick_is_read_again(tmp_path, monkeypatch):
    clip = tmp_path / "voice.wav"
    clip.write_bytes(OLD)  # just written: racy, as an upload used at once is
    hasher = FileHasher()
    snapshot = hasher.snapshot(clip)
    assert snapshot.racy
    freeze_stat(monkeypatch, clip)
    assert hasher.still_holds(snapshot)  # same bytes: a recent file is still cacheable

    clip.write_bytes(OLD[:-1] + b"z")  # same size, and a signature that did not move

    assert not hasher.still_holds(snapshot)


def test_a_removed_file_no_longer_holds_its_snapshot(tmp_path):
    clip = tmp_path / "voice.wav"
    clip.write_bytes(OLD)
    hasher = FileHasher()
    snapshot = hasher.snapshot(clip)

    clip.unlink()

    assert not hasher.still_holds(snapshot)


def test_a_stream_is_hashed_from_its_position_and_put_back_there():
    stream = io.BytesIO(b"junk" + OLD)
    stream.seek(4)

    clip = clip_of(stream, FileHasher())

    assert clip is not None
    assert clip.digest == sha(OLD)
    assert stream.tell() == 4


def test_a_stream_and_a_file_with_the_same_bytes_have_the_same_hash(tmp_path):
    clip = tmp_path / "voice.wav"
    clip.write_bytes(OLD)

    from_stream = clip_of(io.BytesIO(OLD), FileHasher())
    from_file = clip_of(clip, FileHasher())

    assert from_stream is not None
    assert from_file is not None
    assert from_stream.digest == from_file.digest == sha256_file(clip)


def test_a_stream_written_to_after_hashing_no_longer_holds_its_bytes():
    stream = io.BytesIO(OLD)
    clip = clip_of(stream, FileHasher())
    assert clip is not None
    stream.read()  # where a decoder leaves it
    assert clip.unchanged()
    assert stream.tell() == len(OLD)  # checking leaves it where it was

    stream.seek(10)
    stream.write(b"x")

    assert not clip.unchanged()


def test_a_stream_served_from_the_cache_is_left_read_to_its_end():
    stream = io.BytesIO(OLD)
    clip = clip_of(stream, FileHasher())
    assert clip is not None

    clip.served()

    assert stream.tell() == len(OLD)


class Unseekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._data.readinto(buffer)


def test_only_streams_that_can_be_put_back_are_cacheable():
    closed = io.BytesIO(OLD)
    closed.close()

    assert is_seekable_stream(io.BytesIO(OLD))
    assert not is_seekable_stream(Unseekable(OLD))
    assert not is_seekable_stream(closed)
    assert not is_seekable_stream(OLD)
    assert not is_seekable_stream(bytearray(OLD))


def test_a_text_stream_has_no_clip_and_is_left_as_it_was():
    stream = io.StringIO("RIFF....")

    assert clip_of(stream, FileHasher()) is None
    assert stream.tell() == 0
