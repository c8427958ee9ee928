"""A memory hit marks its disk entry as used, but never waits on the folder to do it."""

from __future__ import annotations

import contextlib
import os
import threading
import time

import pytest
from strategies import voice_entry

from cached_tts import ConditionalCache, EntryKey
from cached_tts._tiers.disk.touch import Toucher

KEY = EntryKey(content="c" * 64, weights="w", settings=(("device", "cpu"),))

# Far beyond a memory hit (tens of µs), far below the hung mount's wait.
HIT_BOUND_SECONDS = 2.0
HUNG_SECONDS = 10.0


class Utime:
    """``os.utime`` that records the entries it is asked to touch, and may hang on them."""

    def __init__(self, folder, *, hang=False):
        self.folder = str(folder)
        self.hang = hang
        self.entered = threading.Event()
        self.answer = threading.Event()
        self.touched = []
        self.real = os.utime

    def __call__(self, path, *args, **kwargs):
        if str(path).startswith(self.folder):
            self.touched.append(str(path))
            self.entered.set()
            if self.hang:
                self.answer.wait(HUNG_SECONDS)  # a hung NFS server
        return self.real(path, *args, **kwargs)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def prepared_once(folder):
    cache = ConditionalCache(folder, remote=None)
    cache.get_or_prepare(KEY, lambda: voice_entry(1.0))  # a miss: prepared and written
    return cache


def memory_hit(cache):
    started = time.monotonic()
    entry = cache.get_or_prepare(KEY, pytest.fail)
    assert entry.tensors
    return time.monotonic() - started


def test_a_memory_hit_marks_its_disk_entry_as_used(tmp_path):
    cache = prepared_once(tmp_path / "cache")
    (path,) = (tmp_path / "cache" / "entries").glob("*.safetensors")
    os.utime(path, (1.0, 1.0))
    memory_hit(cache)
    assert cache._disk.toucher.join(timeout=30.0)
    assert path.stat().st_mtime > 1.0
    assert cache.stats().memory_hits == 1


def test_a_hung_folder_never_delays_a_memory_hit(tmp_path, monkeypatch):
    cache = prepared_once(tmp_path / "cache")
    utime = Utime(tmp_path / "cache", hang=True)
    monkeypatch.setattr(os, "utime", utime)
    try:
        seconds = memory_hit(cache)
        # The touch was asked for (in the background) and is hung there...
        assert utime.entered.wait(30.0)
        # ...while the hit came back at once, and the next ones do too.
        assert seconds < HIT_BOUND_SECONDS
        assert memory_hit(cache) < HIT_BOUND_SECONDS
    finally:
        utime.answer.set()
    assert cache._disk.toucher.join(timeout=30.0)
    assert len(utime.touched) == 1  # once a minute per entry, hung or not


def test_a_folder_set_aside_is_not_touched_until_it_is_back_in_use(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr("cached_tts._tiers.health._now", clock)
    cache = prepared_once(tmp_path / "cache")
    for _ in range(3):  # the folder's writes fail: it is set aside
        cache._disk.writes.failed(OSError("Stale file handle"))
    assert not cache._disk.writes.available()
    utime = Utime(tmp_path / "cache")
    monkeypatch.setattr(os, "utime", utime)

    memory_hit(cache)
    assert cache._disk.toucher.join(timeout=30.0)
    assert utime.touched == []

    clock.now += 3600.0  # the back-off is over
    memory_hit(cache)
    assert cache._disk.toucher.join(timeout=30.0)
    assert len(utime.touched) == 1


class NoThreads:
    """``threading.Thread.start`` failing as it does at a pids limit, until ``allow()``."""

    def __init__(self):
        self.real = threading.Thread.start
        self.refused = 0
        self.allowed = False

    def allow(self):
        self.allowed = True

    def install(self, monkeypatch):
        def start(thread):
            if self.allowed:
                return self.real(thread)
            self.refused += 1
            raise RuntimeError("can't start new thread")

        monkeypatch.setattr(threading.Thread, "start", start)


def test_a_hit_that_cannot_start_the_touch_thread_still_returns(tmp_path, monkeypatch):
    cache = prepared_once(tmp_path / "cache")
    no_threads = NoThreads()
    no_threads.install(monkeypatch)
    assert memory_hit(cache) < HIT_BOUND_SECONDS  # no RuntimeError out of the lookup
    assert no_threads.refused == 1
    assert cache._disk.toucher.join(timeout=5.0)  # the note was dropped: nothing waits on it


def test_touches_run_again_once_a_thread_can_be_started(monkeypatch):
    marked = []
    toucher = Toucher(marked.append, may_touch=lambda: True, interval=60.0)
    no_threads = NoThreads()
    no_threads.install(monkeypatch)
    # Whether note raises is the other test's concern: this one is about what it leaves.
    with contextlib.suppress(RuntimeError):
        toucher.note("a")
    assert no_threads.refused == 1

    no_threads.allow()
    toucher.note("b")
    assert toucher.join(timeout=10.0)
    assert marked == ["b"]  # not left with a worker that never started
