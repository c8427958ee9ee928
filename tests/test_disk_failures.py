"""A disk that fails for a moment is not gone for good; a read-only folder is read."""

from __future__ import annotations

import errno
import logging
import os
import tempfile
from pathlib import Path

import pytest
from strategies import voice_entry

from cached_tts._cache.cache import ConditionalCache
from cached_tts._entries.entry import Entry
from cached_tts._keys.key import EntryKey
from cached_tts._tiers import health as _health
from cached_tts._tiers.disk import store as _store
from cached_tts._tiers.disk import tier as _disk_tier
from cached_tts._tiers.disk.store import DiskStore


def key_for(n: int) -> EntryKey:
    return EntryKey(content=f"{n:064x}", weights="w", settings=())


class Prepare:
    """Counts preparations; each gives a small entry."""

    def __init__(self) -> None:
        self.calls = 0

    def of(self, n: int):
        def prepare() -> Entry:
            self.calls += 1
            return voice_entry(float(n), floats=16)

        return prepare


def on_disk(folder: Path, n: int) -> bool:
    return DiskStore(folder).path_for(key_for(n)).exists()


class FailingSeam:
    """Wraps a function of ours so that its next ``times`` calls raise ``error``."""

    def __init__(self, real, error: int, times: int = 1) -> None:
        self.real, self.error, self.times, self.calls = real, error, times, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.times:
            self.times -= 1
            raise OSError(self.error, os.strerror(self.error))
        return self.real(*args, **kwargs)


def test_one_full_disk_skips_that_write_only(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    cache = ConditionalCache(folder)
    prepare = Prepare()
    monkeypatch.setattr(
        _store, "write_atomically", FailingSeam(_store.write_atomically, errno.ENOSPC)
    )

    cache.get_or_prepare(key_for(1), prepare.of(1))
    cache.get_or_prepare(key_for(2), prepare.of(2))

    assert not on_disk(folder, 1)  # that write was skipped
    assert on_disk(folder, 2)  # the next one was not
    assert cache.stats().disk_entries == 1


def test_one_failed_read_is_a_miss_for_that_entry_only(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    warm = ConditionalCache(folder)
    for n in (1, 2):
        warm.get_or_prepare(key_for(n), Prepare().of(n))
    too_many_open_files = FailingSeam(open, errno.EMFILE)
    monkeypatch.setattr(_store, "open", too_many_open_files, raising=False)

    cache, prepare = ConditionalCache(folder), Prepare()
    cache.get_or_prepare(key_for(1), prepare.of(1))  # EMFILE: a miss (or a re-read finds it)
    cache.get_or_prepare(key_for(2), prepare.of(2))  # read from the folder

    assert too_many_open_files.times == 0
    assert prepare.calls <= 1
    assert cache.stats().disk_hits == 2 - prepare.calls


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """The back-off clock, moved by the test alone."""
    fake = FakeClock()
    monkeypatch.setattr(_health, "_now", fake)
    return fake


def test_a_folder_that_keeps_failing_is_set_aside_and_comes_back(
    tmp_path, monkeypatch, clock, caplog
):
    folder = tmp_path / "cache"
    cache, prepare = ConditionalCache(folder), Prepare()
    broken = FailingSeam(_store.write_atomically, errno.EIO, times=10**9)
    monkeypatch.setattr(_store, "write_atomically", broken)
    policy = _disk_tier._DISK_BACKOFF

    with caplog.at_level(logging.INFO, logger="cached_tts"):
        for n in range(6):
            cache.get_or_prepare(key_for(n), prepare.of(n))
        set_aside_after = broken.calls
        clock.now += policy.initial  # past the back-off: the next write is a retry
        cache.get_or_prepare(key_for(6), prepare.of(6))  # it fails: set aside again, 2x as long
        clock.now += policy.initial
        cache.get_or_prepare(key_for(7), prepare.of(7))  # still in the back-off: skipped
        retried = broken.calls
        clock.now += policy.initial
        broken.times = 0  # the disk works again
        cache.get_or_prepare(key_for(10), prepare.of(10))
        cache.get_or_prepare(key_for(11), prepare.of(11))

    assert set_aside_after == policy.failures  # then the folder was skipped
    assert retried == policy.failures + 1
    assert on_disk(folder, 10)
    assert on_disk(folder, 11)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipping it" in warnings[0].getMessage()
    back = [r for r in caplog.records if "back in use" in r.getMessage()]
    assert len(back) == 1
    assert back[0].levelno == logging.INFO


@pytest.mark.parametrize("listing", ["succeeds", "fails"])
def test_a_failure_between_check_and_use_never_raises(tmp_path, monkeypatch, listing):
    """Another thread's disk failures, forced while stats() lists the folder it checked."""
    folder = tmp_path / "cache"
    cache = ConditionalCache(folder)
    cache.get_or_prepare(key_for(1), Prepare().of(1))
    monkeypatch.setattr(
        _store, "write_atomically", FailingSeam(_store.write_atomically, errno.EIO, times=10**9)
    )
    real_files = DiskStore.files
    calls = []

    def another_thread_fails_mid_listing(store_self):
        calls.append(store_self)
        for n in range(5):  # enough failures to set the folder aside
            cache._disk.put(key_for(100 + n), b"never written")
        if listing == "fails":
            raise OSError(errno.EIO, "Input/output error")
        return real_files(store_self)

    monkeypatch.setattr(DiskStore, "files", another_thread_fails_mid_listing)

    stats = cache.stats()
    assert calls == [cache._store]  # the interleaving was forced
    assert stats.disk_entries == (1 if listing == "succeeds" else 0)
    assert stats.disk_tier


# -- a read-only folder ---------------------------------------------------------


class ReadOnlyVolume:
    """A folder that behaves like a read-only mount: every change to it fails with EROFS.

    Tests run as root, where file modes do not stop writes, so the calls that
    change a folder fail here as the kernel makes them fail on a read-only volume.
    """

    def __init__(self, folder: Path) -> None:
        self.inside = str(folder.resolve())

    def holds(self, path) -> bool:
        return isinstance(path, str | os.PathLike) and os.path.abspath(path).startswith(self.inside)

    def refusing(self, real, changes):
        """``real``, failing with EROFS when ``changes(*args, **kwargs)`` says it changes us."""

        def call(*args, **kwargs):
            if changes(*args, **kwargs):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), self.inside)
            return real(*args, **kwargs)

        return call

    def install(self, monkeypatch) -> None:
        writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC
        real_access = os.access

        def access(path, mode, *args, **kwargs):
            if self.holds(path) and mode & os.W_OK:
                return False
            return real_access(path, mode, *args, **kwargs)

        def on_path(path, *_args, **_kwargs):
            return self.holds(path)

        monkeypatch.setattr(os, "access", access)
        for name in ("mkdir", "utime", "unlink", "rename", "replace"):
            monkeypatch.setattr(os, name, self.refusing(getattr(os, name), on_path))
        opens_for_writing = lambda path, flags, *_a, **_k: self.holds(path) and flags & writes  # noqa: E731
        monkeypatch.setattr(os, "open", self.refusing(os.open, opens_for_writing))
        in_folder = lambda *_a, dir=None, **_k: dir is not None and self.holds(dir)  # noqa: A006, E731
        monkeypatch.setattr(tempfile, "mkstemp", self.refusing(tempfile.mkstemp, in_folder))


@pytest.fixture
def read_only(monkeypatch):
    """Call it with a folder to make that folder read-only for the rest of the test."""
    return lambda folder: ReadOnlyVolume(folder).install(monkeypatch)


def test_a_read_only_folder_serves_its_hits_and_stores_nothing(tmp_path, read_only, caplog):
    folder = tmp_path / "baked"
    warm = ConditionalCache(folder)
    warm.get_or_prepare(key_for(1), Prepare().of(1))
    locks_before = sorted(os.listdir(folder / "locks"))
    read_only(folder)

    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        cache, prepare = ConditionalCache(folder), Prepare()
        first = cache.get_or_prepare(key_for(1), prepare.of(1))
        for n in (2, 3):
            cache.get_or_prepare(key_for(n), prepare.of(n))

    assert prepare.calls == 2  # voice 1 came from the folder
    assert first.tensors["t3.speaker_emb"][0, 0].item() == 1.0
    assert cache.stats().disk_hits == 1
    assert not on_disk(folder, 2)
    assert sorted(os.listdir(folder / "locks")) == locks_before
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "read-only" in warnings[0]


def test_a_read_only_folder_without_a_locks_folder_is_read(tmp_path, read_only):
    folder = tmp_path / "baked"
    ConditionalCache(folder).get_or_prepare(key_for(1), Prepare().of(1))
    for name in os.listdir(folder / "locks"):
        os.unlink(folder / "locks" / name)
    os.rmdir(folder / "locks")  # an image built with the entries only
    read_only(folder)

    cache, prepare = ConditionalCache(folder), Prepare()
    cache.get_or_prepare(key_for(1), prepare.of(1))

    assert prepare.calls == 0
    assert cache.directory == folder
