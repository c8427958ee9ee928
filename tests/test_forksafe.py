"""A process forked while another thread holds the cache's locks never hangs in the child."""

from __future__ import annotations

import os
import sys
import threading
import uuid

import pytest
from forking import in_forked_child, start_child, wait_for_child
from strategies import voice_entry

from cached_tts import ConditionalCache, EntryKey
from cached_tts._cache.singleflight import SingleFlight
from cached_tts._entries import entry as _entry
from cached_tts._entries.entry import Entry, _exaggeration_copier
from cached_tts._entries.format import encode
from cached_tts._tiers.memory import MemoryTier
from cached_tts._tiers.objectstore.opening import open_object_store
from cached_tts._wrapping.voice import model_lock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Windows cannot fork")

# Long enough for a loaded 2-core machine; a hang is what it guards against.
CHILD_TIMEOUT = 60.0


def key(n: int = 0) -> EntryKey:
    return EntryKey(content=f"{n:064x}", weights="w", settings=(("device", "cpu"),))


def entry(value: float = 1.0) -> Entry:
    return voice_entry(value)


class Parked:
    """A thread parked inside ``work`` until the test lets it go."""

    def __init__(self, work) -> None:
        self.inside = threading.Event()
        self.go = threading.Event()
        self.thread = threading.Thread(target=work, args=(self,), daemon=True)
        self.thread.start()
        assert self.inside.wait(CHILD_TIMEOUT)

    def park(self) -> None:
        self.inside.set()
        self.go.wait(CHILD_TIMEOUT)

    def release(self) -> None:
        self.go.set()
        self.thread.join(CHILD_TIMEOUT)


def test_a_child_forked_while_a_lock_is_held_can_take_it():
    tier = MemoryTier(1 << 20)
    model = object.__new__(type("Model", (), {}))
    lock = model_lock(model)

    def hold(parked):
        with tier._lock, lock, _entry._exaggerations_lock:
            parked.park()

    parked = Parked(hold)
    try:

        def child():
            tier.put("k", entry())
            assert tier.get("k") is not None
            with model_lock(model):
                pass
            # An exaggeration never asked for before fills the memo under its lock.
            assert _exaggeration_copier(0.123456).tensor.item() == pytest.approx(0.123456)

        assert in_forked_child(child, timeout=CHILD_TIMEOUT) == "ok"
    finally:
        parked.release()


def test_a_child_forked_while_a_computation_is_in_flight_computes_its_own():
    flight: SingleFlight[int] = SingleFlight()

    def lead(parked):
        flight.do("voice", lambda: parked.park() or 1)

    parked = Parked(lead)
    try:
        assert in_forked_child(lambda: flight.do("voice", lambda: 2), timeout=CHILD_TIMEOUT) == "ok"
    finally:
        parked.release()


def test_a_child_forked_mid_preparation_looks_up_the_same_voice(tmp_path):
    cache = ConditionalCache(tmp_path / "cache")

    def prepare_slowly(parked):
        def prepare():
            with cache._counts._lock, cache._hasher._lock:
                parked.park()
            return entry()

        cache.get_or_prepare(key(), prepare)

    parked = Parked(prepare_slowly)
    try:

        def child():
            # Another voice takes the locks the parent's thread holds...
            assert cache.get_or_prepare(key(1), lambda: entry(2.0)).tensors
            # ...and the voice in flight is prepared here rather than waited for.
            # (The parent's file lock on it is taken in turn once the parent is done.)
            assert cache.get_or_prepare(key(), lambda: entry(3.0)).tensors

        pid = start_child(child)  # while the parent's thread holds it all
        parked.release()  # the parent finishes, and frees the file lock
        assert wait_for_child(pid, timeout=CHILD_TIMEOUT) == "ok"
    finally:
        parked.release()


def test_a_child_forked_while_a_thread_opens_the_bucket_client_looks_up_at_once():
    """``warm(background=True)`` then ``gunicorn --preload``: a fork lands mid-open.

    The parent's thread is inside the opening of the client (as while credentials
    are looked up); the child, which has no such thread, opens its own.
    """
    url = f"memory://cached-tts-tests/{uuid.uuid4().hex}/prod"
    data = encode(key(), entry(), source="voice.wav", created=1.0)
    open_object_store(url).put(key(), data)  # the bucket holds the voice
    tier = open_object_store(url)
    parent = os.getpid()
    real_open = tier._open_filesystem
    parked_in_open = []

    def open_filesystem():
        if os.getpid() == parent:
            parked_in_open[0].park()
        return real_open()

    def look_up(parked):
        parked_in_open.append(parked)
        tier.get(key())

    tier._open_filesystem = open_filesystem
    opening = Parked(look_up)
    try:

        def child():
            found = tier.get(key())
            assert found is not None
            assert found[1] == data

        assert in_forked_child(child, timeout=CHILD_TIMEOUT) == "ok"
    finally:
        opening.release()
