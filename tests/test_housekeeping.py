"""Bounded housekeeping: max_disk_bytes bounds the whole folder, and nothing piles up."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from filelock import FileLock
from strategies import voice_entry

from cached_tts._atomic import TEMP_PREFIX
from cached_tts._cache.cache import ConditionalCache
from cached_tts._cli import main
from cached_tts._entries.entry import Entry
from cached_tts._keys import hashing as _hashing
from cached_tts._keys.hashing import FileHasher, remembered_path
from cached_tts._keys.key import EntryKey
from cached_tts._tiers.disk.eviction import STALE_TEMP_SECONDS
from cached_tts._tiers.disk.store import DiskStore

LONG_AGO = time.time() - 86400


def key_for(content: str) -> EntryKey:
    return EntryKey(content=content, weights="w", settings=())


def small_entry(n: int) -> Entry:
    return voice_entry(float(n), floats=5000)  # about 20 KB on disk


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def names(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.is_dir() else []


@pytest.fixture(autouse=True)
def remember_at_once(monkeypatch):
    """Clips written by a test are seconds old: let their hashes be remembered on disk."""
    monkeypatch.setattr(_hashing, "RACY_WINDOW_NS", 0)


def old_clip(folder: Path, n: int) -> Path:
    """A clip saved a while ago."""
    clip = folder / f"upload-{n}.wav"
    clip.write_bytes(f"RIFF voice {n}".encode() * 20)
    os.utime(clip, (LONG_AGO, LONG_AGO))
    return clip


def test_500_voices_keep_the_whole_folder_within_max_disk_bytes(tmp_path):
    folder, uploads = tmp_path / "cache", tmp_path / "uploads"
    uploads.mkdir()
    cache = ConditionalCache(folder, max_disk_bytes=250_000)

    for n in range(500):
        clip = old_clip(uploads, n)
        key = key_for(cache.content_hash(clip))
        cache.get_or_prepare(key, lambda n=n: small_entry(n), source=str(clip))

    entries = names(folder / "entries")
    assert names(folder / "hashes")  # hashes are remembered, within the budget
    assert folder_bytes(folder) <= 250_000
    assert 5 <= len(entries) <= 12
    assert len(names(folder / "locks")) <= len(entries)


def test_hashing_new_paths_of_known_voices_stays_within_the_budget(tmp_path):
    """A server saving each upload under a new path, all of them hits: no entry write evicts."""
    folder, uploads = tmp_path / "cache", tmp_path / "uploads"
    uploads.mkdir()
    cache = ConditionalCache(folder, max_disk_bytes=40_000)
    clip = old_clip(uploads, 0)
    key = key_for(cache.content_hash(clip))
    cache.get_or_prepare(key, lambda: small_entry(0))

    for n in range(300):
        copy = uploads / f"again-{n}.wav"
        copy.write_bytes(clip.read_bytes())
        os.utime(copy, (LONG_AGO, LONG_AGO))
        assert cache.content_hash(copy) == key.content

    assert folder_bytes(folder) <= 40_000
    assert names(folder / "entries") == [DiskStore(folder).path_for(key).name]


def test_hashes_of_vanished_files_are_dropped_before_those_in_use(tmp_path):
    folder, clips = tmp_path / "cache", tmp_path / "clips"
    clips.mkdir()
    store = DiskStore(folder)
    store.prepare()
    hasher = FileHasher(store.hashes_dir)
    kept, vanished = old_clip(clips, 1), old_clip(clips, 2)
    hasher.hash(kept)
    hasher.hash(vanished)
    memo_of = {remembered_path(path): path for path in store.hashes_dir.iterdir()}
    # The memo in use is the least recently used: only vanishing sends the other first.
    os.utime(memo_of[str(kept)], (LONG_AGO, LONG_AGO))
    vanished.unlink()

    store.evict(memo_of[str(kept)].stat().st_size)

    assert list(store.hashes_dir.iterdir()) == [memo_of[str(kept)]]


def test_the_entry_just_written_outlasts_older_entries_and_remembered_hashes(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    store = DiskStore(tmp_path / "cache")
    store.prepare()
    # One creation time for both: its text's length varies with the clock's
    # reading, and an entry a byte over the budget of one would be evicted too.
    store.write(key_for("a" * 64), small_entry(1), source="", created=1.5e9)
    FileHasher(store.hashes_dir).hash(old_clip(clips, 1))
    store.max_bytes = store.path_for(key_for("a" * 64)).stat().st_size

    store.write(key_for("b" * 64), small_entry(2), source="", created=1.5e9)

    assert names(store.entries_dir) == [store.path_for(key_for("b" * 64)).name]
    assert names(store.hashes_dir) == []


def test_lock_files_are_private(tmp_path):
    store = DiskStore(tmp_path / "cache")
    store.prepare()
    old_umask = os.umask(0o022)
    try:
        with store.lock_for(key_for("a" * 64), timeout=1):
            pass
    finally:
        os.umask(old_umask)

    (lock_file,) = (tmp_path / "cache" / "locks").iterdir()
    assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600


def test_an_evicted_entrys_lock_goes_unless_a_process_holds_it(tmp_path):
    store = DiskStore(tmp_path / "cache")
    store.prepare()
    for n in range(3):
        with store.lock_for(key_for(f"{n:064x}"), timeout=1):
            store.write(key_for(f"{n:064x}"), small_entry(n), source="")
    held = FileLock(store.locks_dir / f"{key_for(f'{0:064x}').digest}.lock")
    held.acquire()  # another process is preparing voice 0 again
    try:
        store.evict(0)
        assert names(store.entries_dir) == []
        assert names(store.locks_dir) == [f"{key_for(f'{0:064x}').digest}.lock"]
    finally:
        held.release()
    store.tidy()
    assert names(store.locks_dir) == []


def test_clearing_a_cache_removes_locks_and_temporary_files(tmp_path):
    folder = tmp_path / "cache"
    cache = ConditionalCache(folder)
    cache.get_or_prepare(key_for("a" * 64), lambda: small_entry(1))
    (folder / "entries" / f"{TEMP_PREFIX}killed").write_bytes(b"half an entry")

    cache.clear()

    assert names(folder / "entries") == []
    assert names(folder / "locks") == []


def test_touch_times_are_kept_only_for_voices_in_memory(tmp_path):
    cache = ConditionalCache(tmp_path / "cache", max_memory_bytes=3 * small_entry(0).nbytes)
    for n in range(300):
        key = key_for(f"{n:064x}")
        cache.get_or_prepare(key, lambda n=n: small_entry(n))
        cache.get_or_prepare(key, lambda n=n: small_entry(n))  # a memory hit touches the file

    assert cache.stats().entries == 3
    assert len(cache._disk.toucher._last) <= 2 * 3 + 64


def test_a_later_writer_reaps_temporary_files_a_killed_writer_left(tmp_path):
    store = DiskStore(tmp_path / "cache", max_bytes=10**9)
    store.prepare()
    stale = [
        store.entries_dir / f"{TEMP_PREFIX}killed",
        store.hashes_dir / f"{TEMP_PREFIX}killed",
    ]
    for path in stale:
        path.write_bytes(b"half a file")
        os.utime(path, (LONG_AGO, LONG_AGO))
    in_flight = store.entries_dir / f"{TEMP_PREFIX}writing"
    in_flight.write_bytes(b"being written now")

    store.write(key_for("a" * 64), small_entry(1), source="")

    assert not any(path.exists() for path in stale)
    assert in_flight.exists()


@pytest.fixture
def litter(tmp_path):
    """A folder with one entry, a killed writer's temporary files and orphan locks."""
    folder = tmp_path / "cache"
    store = DiskStore(folder)
    store.prepare()
    store.write(key_for("a" * 64), small_entry(1), source="/voices/a.wav")
    stale = [store.entries_dir / f"{TEMP_PREFIX}a", store.hashes_dir / f"{TEMP_PREFIX}b"]
    for path in stale:
        path.write_bytes(b"half a file")
        old = time.time() - STALE_TEMP_SECONDS - 60
        os.utime(path, (old, old))
    for n in range(3):  # preparations that never stored an entry
        (store.locks_dir / f"{n:064x}.lock").touch()
    return folder, stale


@pytest.mark.parametrize(
    "argv",
    [["verify", "--fix"], ["prune", "--older-than", "30d"], ["clear", "--yes"]],
    ids=["verify-fix", "prune", "clear"],
)
def test_commands_remove_temporary_files_and_orphan_locks(litter, argv, capsys):
    folder, stale = litter

    assert main([*argv, "--cache-dir", str(folder)]) == 0
    capsys.readouterr()

    assert not any(path.exists() for path in stale)
    assert names(folder / "locks") == []
