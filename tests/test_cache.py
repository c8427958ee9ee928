"""The two tiers behind one key, with single flight and stats."""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import threading
import time
from types import SimpleNamespace

import pytest
import torch
from strategies import voice_entry

from cached_tts._cache import cache as _cache
from cached_tts._cache.cache import CACHE_DIR_ENV, ConditionalCache, default_cache_dir
from cached_tts._keys.key import EntryKey

PREPARE_SECONDS = 2.5


def key_for(n):
    return EntryKey(content=f"{n:064x}", weights="w", settings=(("device", "cpu"),))


class FakePrepare:
    """Stands in for preparing a voice: counts calls, and takes PREPARE_SECONDS on a fake clock."""

    def __init__(self, clock=None, *, floats=64, fail=None):
        self.calls = 0
        self.clock = clock
        self.floats = floats
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, n=0):
        with self.lock:
            self.calls += 1
        if self.clock is not None:
            self.clock.advance(PREPARE_SECONDS)
        if self.fail is not None:
            raise self.fail
        return voice_entry(float(n), floats=self.floats)

    def of(self, n):
        return lambda: self(n)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def advance(self, seconds):
        self.now += seconds

    def perf_counter(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """The cache's perf_counter, under the test's control."""
    fake = FakeClock()
    monkeypatch.setattr(
        _cache,
        "time",
        SimpleNamespace(perf_counter=fake.perf_counter, monotonic=time.monotonic, time=time.time),
    )
    return fake


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "cache"


def cache_warnings(caplog):
    return [r for r in caplog.records if r.name == "cached_tts" and r.levelno >= logging.WARNING]


def entry_files(cache):
    return sorted((cache.directory / "entries").glob("*.safetensors"))


def test_a_lookup_misses_then_hits_memory_then_disk_in_a_new_cache(folder, clock):
    prepare = FakePrepare(clock)
    first = ConditionalCache(folder)
    missed = first.get_or_prepare(key_for(1), prepare.of(1), source="voice.wav")
    remembered = first.get_or_prepare(key_for(1), prepare.of(1), source="voice.wav")
    assert remembered is missed
    assert prepare.calls == 1

    second = ConditionalCache(folder)
    loaded = second.get_or_prepare(key_for(1), prepare.of(1), source="voice.wav")
    assert prepare.calls == 1
    assert loaded is not missed
    for name, tensor in missed.tensors.items():
        assert torch.equal(loaded.tensors[name], tensor)
        assert loaded.tensors[name].stride() == tensor.stride()
    assert loaded.fields == missed.fields
    assert second.get_or_prepare(key_for(1), prepare.of(1)) is loaded


def test_stats_count_each_tier_and_what_each_holds(folder, clock):
    prepare = FakePrepare(clock)
    first = ConditionalCache(folder)
    entry = first.get_or_prepare(key_for(1), prepare.of(1))
    first.get_or_prepare(key_for(1), prepare.of(1))
    first.get_or_prepare(key_for(1), prepare.of(1))
    second = ConditionalCache(folder)
    second.get_or_prepare(key_for(1), prepare.of(1))
    second.get_or_prepare(key_for(2), prepare.of(2))

    (file_1, file_2) = sorted(entry_files(first))
    stats = first.stats()
    assert (stats.memory_hits, stats.disk_hits, stats.misses) == (2, 0, 1)
    assert (stats.entries, stats.memory_bytes) == (1, entry.nbytes)
    assert (stats.disk_entries, stats.disk_bytes) == (
        2,
        file_1.stat().st_size + file_2.stat().st_size,
    )
    assert stats.seconds_saved == 2 * PREPARE_SECONDS

    stats = second.stats()
    assert (stats.memory_hits, stats.disk_hits, stats.misses) == (0, 1, 1)
    assert (stats.entries, stats.memory_bytes) == (2, 2 * entry.nbytes)
    assert stats.seconds_saved == PREPARE_SECONDS
    assert stats.hit_rate == 0.5


def test_a_fresh_cache_has_empty_stats(folder):
    stats = ConditionalCache(folder).stats()
    assert (stats.memory_hits, stats.disk_hits, stats.misses, stats.entries) == (0, 0, 0, 0)
    assert (stats.memory_bytes, stats.disk_entries, stats.disk_bytes) == (0, 0, 0)
    assert stats.seconds_saved == 0.0


def test_many_threads_asking_for_one_key_prepare_it_once(folder):
    prepare = FakePrepare()
    cache = ConditionalCache(folder)
    start = threading.Barrier(8)
    results = [None] * 8

    def ask(i):
        start.wait()
        results[i] = cache.get_or_prepare(key_for(1), prepare.of(1))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert prepare.calls == 1
    assert all(result is results[0] for result in results)
    stats = cache.stats()
    assert (stats.misses, stats.memory_hits, stats.disk_hits) == (1, 7, 0)


def test_an_exception_from_prepare_propagates_and_nothing_is_stored(folder):
    cache = ConditionalCache(folder)
    failing = FakePrepare(fail=ValueError("no voice in this clip"))
    with pytest.raises(ValueError, match="no voice in this clip"):
        cache.get_or_prepare(key_for(1), failing)

    stats = cache.stats()
    assert (stats.entries, stats.disk_entries, stats.memory_bytes) == (0, 0, 0)
    assert entry_files(cache) == []

    working = FakePrepare()
    cache.get_or_prepare(key_for(1), working)
    assert working.calls == 1


def test_an_os_error_from_prepare_is_the_callers_not_the_folders(folder):
    cache = ConditionalCache(folder)
    failing = FakePrepare(fail=FileNotFoundError(2, "clip vanished", "voice.wav"))

    with pytest.raises(FileNotFoundError, match="clip vanished"):
        cache.get_or_prepare(key_for(1), failing)

    assert failing.calls == 1  # not retried outside the lock
    assert cache.directory == folder  # the disk tier stays in use
    cache.get_or_prepare(key_for(1), FakePrepare())
    assert len(entry_files(cache)) == 1


def test_an_unusable_folder_warns_once_and_the_cache_works_in_memory(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    prepare = FakePrepare()

    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        cache = ConditionalCache(blocker / "cache")
        first = cache.get_or_prepare(key_for(1), prepare.of(1))
        again = cache.get_or_prepare(key_for(1), prepare.of(1))
        cache.stats()

    assert len(cache_warnings(caplog)) == 1
    assert str(blocker / "cache") in cache_warnings(caplog)[0].getMessage()
    assert cache.directory is None
    assert again is first
    assert prepare.calls == 1
    assert (cache.stats().memory_hits, cache.stats().disk_entries) == (1, 0)


def test_a_disk_budget_evicts_the_least_recently_used_entries(folder):
    prepare = FakePrepare(floats=1000)
    cache = ConditionalCache(folder, max_disk_bytes=None)
    cache.get_or_prepare(key_for(0), prepare.of(0))
    (first_file,) = entry_files(cache)
    budget = first_file.stat().st_size * 5 // 2  # room for two entries, not three
    cache = ConditionalCache(folder, max_disk_bytes=budget)

    for n in range(1, 4):
        for path in entry_files(cache):  # make the order of last use unambiguous
            os.utime(path, (path.stat().st_mtime - 10,) * 2)
        cache.get_or_prepare(key_for(n), prepare.of(n))

    stats = cache.stats()
    assert stats.disk_entries == 2
    assert stats.disk_bytes <= budget
    fresh = ConditionalCache(folder, max_disk_bytes=budget)
    fresh.get_or_prepare(key_for(2), prepare.of(2))
    fresh.get_or_prepare(key_for(3), prepare.of(3))
    assert prepare.calls == 4  # the two most recent were served from disk
    assert fresh.stats().disk_hits == 2


def test_an_entry_over_the_memory_budget_is_served_but_not_kept(folder):
    prepare = FakePrepare(floats=1000)
    cache = ConditionalCache(folder, max_memory_bytes=1000)
    entry = cache.get_or_prepare(key_for(1), prepare.of(1))
    assert entry.nbytes > 1000
    cache.get_or_prepare(key_for(1), prepare.of(1))
    stats = cache.stats()
    assert (stats.entries, stats.memory_bytes) == (0, 0)
    assert (stats.misses, stats.disk_hits, stats.memory_hits) == (1, 1, 0)
    assert prepare.calls == 1


def test_a_cache_without_a_folder_is_memory_only(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "env-cache"))
    monkeypatch.chdir(tmp_path)
    prepare = FakePrepare()
    cache = ConditionalCache(cache_dir=None)
    cache.get_or_prepare(key_for(1), prepare.of(1))
    cache.get_or_prepare(key_for(1), prepare.of(1))

    assert cache.directory is None
    assert list(tmp_path.iterdir()) == []
    stats = cache.stats()
    assert (stats.misses, stats.memory_hits, stats.disk_entries) == (1, 1, 0)
    assert ConditionalCache(cache_dir=None).get_or_prepare(key_for(1), prepare.of(1))
    assert prepare.calls == 2  # nothing shared between memory-only caches


def test_the_environment_variable_picks_the_default_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "voices"))
    assert default_cache_dir() == tmp_path / "voices"
    cache = ConditionalCache()
    assert cache.directory == tmp_path / "voices"
    cache.get_or_prepare(key_for(1), FakePrepare().of(1))
    assert len(list((tmp_path / "voices" / "entries").glob("*.safetensors"))) == 1


def test_without_the_environment_variable_the_platform_folder_is_used(monkeypatch):
    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    assert default_cache_dir().name == "cached-tts"


@pytest.mark.parametrize(
    "budget",
    [
        {"max_memory_bytes": -1},
        {"max_disk_bytes": -1},
        {"max_memory_bytes": 1.5},
        {"max_memory_bytes": True},
        {"max_memory_bytes": None},
    ],
    ids=["memory-negative", "disk-negative", "memory-float", "memory-bool", "memory-none"],
)
def test_a_budget_that_is_not_a_whole_number_of_bytes_is_refused(folder, budget):
    with pytest.raises(ValueError, match=next(iter(budget))):
        ConditionalCache(folder, **budget)
    assert not folder.exists()


def test_clear_empties_both_tiers(folder):
    prepare = FakePrepare()
    cache = ConditionalCache(folder)
    for n in range(3):
        cache.get_or_prepare(key_for(n), prepare.of(n))

    cache.clear()

    stats = cache.stats()
    assert (stats.entries, stats.memory_bytes, stats.disk_entries, stats.disk_bytes) == (0,) * 4
    cache.get_or_prepare(key_for(1), prepare.of(1))
    assert prepare.calls == 4
    assert ConditionalCache(folder).stats().disk_entries == 1


def test_a_damaged_entry_is_recomputed_not_served(folder, caplog):
    prepare = FakePrepare()
    ConditionalCache(folder).get_or_prepare(key_for(1), prepare.of(1))
    (path,) = entry_files(ConditionalCache(folder))
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the last byte of the last tensor
    path.write_bytes(bytes(data))

    cache = ConditionalCache(folder)
    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        entry = cache.get_or_prepare(key_for(1), prepare.of(1))

    assert prepare.calls == 2
    assert torch.equal(entry.tensors["t3.speaker_emb"], torch.full((1, 64), 1.0))
    assert len(cache_warnings(caplog)) == 1
    assert cache.stats().misses == 1
    # The recomputed entry replaced the damaged one.
    assert ConditionalCache(folder).get_or_prepare(key_for(1), prepare.of(1)) is not None
    assert prepare.calls == 2


def test_entries_handed_out_are_the_cached_ones_and_keys_are_kept_apart(folder):
    prepare = FakePrepare()
    cache = ConditionalCache(folder)
    one = cache.get_or_prepare(key_for(1), prepare.of(1))
    two = cache.get_or_prepare(key_for(2), prepare.of(2))
    assert one.tensors["t3.speaker_emb"][0, 0].item() == 1.0
    assert two.tensors["t3.speaker_emb"][0, 0].item() == 2.0
    assert prepare.calls == 2


def test_a_clip_path_that_is_not_utf8_does_not_break_caching(folder):
    # os.fsdecode(b"/voices/\xff.wav"): Linux allows such names, and the
    # models pass the clip's path as the entry's source.
    prepare = FakePrepare()
    cache = ConditionalCache(folder)
    entry = cache.get_or_prepare(key_for(1), prepare.of(1), source="/voices/\udcff.wav")
    assert entry is not None
    assert ConditionalCache(folder).get_or_prepare(key_for(1), prepare.of(1)) is not None
    assert prepare.calls == 1


def test_the_content_hash_is_the_sha256_of_the_clip(folder, tmp_path):
    clip = tmp_path / "voice.wav"
    clip.write_bytes(b"RIFF voice")
    cache = ConditionalCache(folder)
    assert cache.content_hash(clip) == hashlib.sha256(b"RIFF voice").hexdigest()


def test_copying_a_cache_gives_the_same_shared_cache(tmp_path):
    cache = ConditionalCache(tmp_path / "cache")
    holder = {"cache": cache, "other": [1, 2]}

    copied = copy.deepcopy(holder)

    assert copy.copy(cache) is cache
    assert copied["cache"] is cache
    assert copied["other"] is not holder["other"]
