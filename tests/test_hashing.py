"""Content hashes of files, remembered until the file changes."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from cached_tts._keys.hashing import RACY_WINDOW_NS, FileHasher, StatSignature, sha256_file

AN_HOUR_NS = 3600 * 1_000_000_000


def write_old_file(path, data):
    """Write ``data`` with an mtime an hour in the past."""
    path.write_bytes(data)
    an_hour_ago = time.time_ns() - AN_HOUR_NS
    os.utime(path, ns=(an_hour_ago, an_hour_ago))
    return path


def rewrite_keeping_mtime(path, data):
    """Rewrite ``path`` in place and put its mtime back, as some tools do.

    Only ctime then tells the versions apart, so the rewrite is repeated
    until the coarse kernel clock has ticked and ctime has moved.
    """
    before = path.stat()
    while True:
        with open(path, "r+b") as f:
            f.write(data)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        if path.stat().st_ctime_ns != before.st_ctime_ns:
            return
        time.sleep(0.005)


def test_sha256_file_is_the_sha256_of_the_bytes(tmp_path):
    data = os.urandom(3 << 20)  # more than one read chunk
    clip = tmp_path / "voice.wav"
    clip.write_bytes(data)
    assert sha256_file(clip) == hashlib.sha256(data).hexdigest()


@pytest.mark.usefixtures("clock_ahead")
def test_a_remembered_digest_is_not_recomputed(tmp_path):
    clip = write_old_file(tmp_path / "voice.wav", b"RIFF one")
    hasher = FileHasher()
    assert hasher.hash(clip) == hashlib.sha256(b"RIFF one").hexdigest()
    assert hasher.hash(clip) == hashlib.sha256(b"RIFF one").hexdigest()
    assert hasher.hash(str(clip)) == hashlib.sha256(b"RIFF one").hexdigest()
    assert hasher.hashes_computed == 1


@pytest.mark.usefixtures("clock_ahead")
def test_each_path_has_its_own_digest(tmp_path):
    one = write_old_file(tmp_path / "one.wav", b"first voice")
    two = write_old_file(tmp_path / "two.wav", b"other voice")
    hasher = FileHasher()
    assert hasher.hash(one) == sha256_file(one)
    assert hasher.hash(two) == sha256_file(two)
    assert hasher.hash(one) != hasher.hash(two)
    assert hasher.hashes_computed == 2


@pytest.mark.usefixtures("clock_ahead")
def test_a_same_size_rewrite_with_its_mtime_put_back_is_detected(tmp_path):
    clip = write_old_file(tmp_path / "voice.wav", b"RIFF aaaa")
    hasher = FileHasher()
    before = hasher.hash(clip)
    stat_before = clip.stat()

    rewrite_keeping_mtime(clip, b"RIFF bbbb")

    stat_after = clip.stat()
    assert (stat_after.st_size, stat_after.st_mtime_ns) == (
        stat_before.st_size,
        stat_before.st_mtime_ns,
    )
    assert hasher.hash(clip) == hashlib.sha256(b"RIFF bbbb").hexdigest() != before
    assert hasher.hashes_computed == 2


def test_a_file_changed_just_before_hashing_is_rehashed_next_time(tmp_path):
    clip = tmp_path / "voice.wav"
    clip.write_bytes(b"just written")
    hasher = FileHasher()
    assert hasher.hash(clip) == hasher.hash(clip) == sha256_file(clip)
    assert hasher.hashes_computed == 2


@pytest.mark.usefixtures("clock_ahead")
def test_an_old_file_is_hashed_once(tmp_path):
    clip = write_old_file(tmp_path / "voice.wav", b"recorded long ago")
    hasher = FileHasher()
    for _ in range(3):
        hasher.hash(clip)
    assert hasher.hashes_computed == 1


def test_a_signature_is_racy_within_the_window_and_not_after():
    changed_at = 1_700_000_000 * 1_000_000_000
    signature = StatSignature(1, 2, 3, mtime_ns=changed_at, ctime_ns=changed_at)
    assert signature.is_racy(changed_at)
    assert signature.is_racy(changed_at + RACY_WINDOW_NS)
    assert not signature.is_racy(changed_at + RACY_WINDOW_NS + 1)
    newer_ctime = StatSignature(1, 2, 3, mtime_ns=0, ctime_ns=changed_at)
    assert newer_ctime.is_racy(changed_at + 1)


@pytest.mark.usefixtures("clock_ahead")
def test_a_digest_remembered_on_disk_serves_a_new_hasher(tmp_path):
    clip = write_old_file(tmp_path / "voice.wav", b"RIFF remembered")
    memo_dir = tmp_path / "hashes"
    digest = FileHasher(memo_dir).hash(clip)
    assert len(list(memo_dir.glob("*.json"))) == 1

    later = FileHasher(memo_dir)
    assert later.hash(clip) == digest
    assert later.hashes_computed == 0


@pytest.mark.usefixtures("clock_ahead")
def test_a_digest_remembered_on_disk_is_ignored_once_the_file_changed(tmp_path):
    clip = write_old_file(tmp_path / "voice.wav", b"RIFF version 1")
    memo_dir = tmp_path / "hashes"
    FileHasher(memo_dir).hash(clip)

    rewrite_keeping_mtime(clip, b"RIFF version 2")

    later = FileHasher(memo_dir)
    assert later.hash(clip) == hashlib.sha256(b"RIFF version 2").hexdigest()
    assert later.hashes_computed == 1


@pytest.mark.usefixtures("clock_ahead")
def test_a_garbled_memo_file_is_ignored(tmp_path):
    clip = write_old_file(tmp_path / "voice.wav", b"RIFF garbled memo")
    memo_dir = tmp_path / "hashes"
    FileHasher(memo_dir).hash(clip)
    (memo_file,) = memo_dir.glob("*.json")
    memo_file.write_bytes(b'{"path": 3')

    later = FileHasher(memo_dir)
    assert later.hash(clip) == hashlib.sha256(b"RIFF garbled memo").hexdigest()
    assert later.hashes_computed == 1


def test_a_racy_digest_is_not_remembered_on_disk(tmp_path):
    clip = tmp_path / "voice.wav"
    clip.write_bytes(b"just written")
    memo_dir = tmp_path / "hashes"
    FileHasher(memo_dir).hash(clip)
    assert not list(memo_dir.glob("*.json"))


@pytest.mark.usefixtures("clock_ahead")
def test_forget_drops_digests_in_memory_and_on_disk(tmp_path):
    clip = write_old_file(tmp_path / "voice.wav", b"RIFF forgotten")
    memo_dir = tmp_path / "hashes"
    hasher = FileHasher(memo_dir)
    hasher.hash(clip)
    hasher.forget()
    assert not list(memo_dir.glob("*.json"))
    hasher.hash(clip)
    assert hasher.hashes_computed == 2


def test_a_missing_file_raises_file_not_found_naming_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "voice.wav"
    with pytest.raises(FileNotFoundError) as raised:
        FileHasher().hash(missing)
    assert raised.value.filename == str(missing)
    assert str(missing) in str(raised.value)


def test_a_folder_raises_is_a_directory_naming_the_path(tmp_path):
    with pytest.raises(IsADirectoryError) as raised:
        FileHasher().hash(tmp_path)
    assert raised.value.filename == str(tmp_path)
    assert str(tmp_path) in str(raised.value)


def _signature_as_text(record):
    record["signature"] = "".join(str(n) for n in record["signature"])


def _signature_as_mapping(record):
    record["signature"] = {str(n): n for n in record["signature"]}


def _signature_cut_short(record):
    record["signature"] = record["signature"][:4]


def _another_path(record):
    record["path"] += ".other"


def _no_digest(record):
    del record["sha256"]


@pytest.mark.usefixtures("clock_ahead")
@pytest.mark.parametrize(
    "forge",
    [_signature_as_text, _signature_as_mapping, _signature_cut_short, _another_path, _no_digest],
)
def test_a_memo_record_that_does_not_match_the_file_is_not_trusted(tmp_path, forge):
    clip = write_old_file(tmp_path / "voice.wav", b"RIFF forged memo")
    memo_dir = tmp_path / "hashes"
    FileHasher(memo_dir).hash(clip)
    (memo_file,) = memo_dir.glob("*.json")
    record = json.loads(memo_file.read_bytes())
    record["sha256"] = "0" * 64  # what a trusted record would serve
    forge(record)
    memo_file.write_text(json.dumps(record))

    later = FileHasher(memo_dir)
    assert later.hash(clip) == hashlib.sha256(b"RIFF forged memo").hexdigest()
    assert later.hashes_computed == 1


@pytest.mark.usefixtures("clock_ahead")
def test_a_sparse_memo_file_is_ignored_without_reading_it_whole(tmp_path, monkeypatch):
    clip = write_old_file(tmp_path / "voice.wav", b"RIFF sparse memo")
    memo_dir = tmp_path / "hashes"
    FileHasher(memo_dir).hash(clip)
    (memo_file,) = memo_dir.glob("*.json")
    os.truncate(memo_file, 8 * 1024**3)  # holes after the record: 8 GiB to a whole read
    asked = []
    real_open = open

    class Bounded:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def read(self, size=-1):
            asked.append(size)
            assert 0 <= size <= 1024**2, "a read of the whole file"
            return self.f.read(size)

    def opening(path, *args, **kwargs):
        f = real_open(path, *args, **kwargs)
        return Bounded(f) if str(path) == str(memo_file) else f

    monkeypatch.setattr("builtins.open", opening)
    later = FileHasher(memo_dir)
    assert later.hash(clip) == hashlib.sha256(b"RIFF sparse memo").hexdigest()
    assert later.hashes_computed == 1  # taken as garbled: hashed anew
    assert asked  # the memo was looked at, and only its start read
