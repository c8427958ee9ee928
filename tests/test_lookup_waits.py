"""Waiting for someone else's preparation: bounded, and never while holding what they need."""

from __future__ import annotations

import threading

import redis
import torch
from strategies import voice_entry

from cached_tts import Backoff, ConditionalCache, EntryKey, RemoteSettings
from cached_tts._entries.entry import Entry

WAIT = 60.0  # how long a test waits for an event before it fails; never a timing check


def key(name: str = "alice") -> EntryKey:
    return EntryKey(content=name * 4, weights="w", settings=(("device", "cpu"),))


def entry(value: float = 1.0) -> Entry:
    return voice_entry(value)


def test_a_lease_is_released_even_if_redis_failed_during_the_preparation(tmp_path, redis_url):
    settings = RemoteSettings(backoff=Backoff(initial=60.0), lease_seconds=120.0)
    cache = ConditionalCache(tmp_path / "cache", remote=redis_url, remote_settings=settings)
    lease = f"{settings.prefix}lease:{key().digest}"
    client = redis.Redis.from_url(redis_url)

    def prepare() -> Entry:
        assert client.exists(lease)  # held while preparing
        # A blip (a timed-out write, say) starts a back-off mid-preparation.
        cache._tiers[0].health.failed(ConnectionError("a blip"))
        return entry()

    cache.get_or_prepare(key(), prepare)

    assert not cache._tiers[0].available()  # still backing off...
    assert not client.exists(lease)  # ...yet the lease is released, not left for 120 s


def test_a_lookup_told_not_to_wait_prepares_beside_a_preparation_under_way(tmp_path):
    cache = ConditionalCache(tmp_path / "cache")
    inside, go = threading.Event(), threading.Event()

    def slow() -> Entry:
        inside.set()
        go.wait(WAIT)
        return entry(1.0)

    leader = threading.Thread(target=cache.get_or_prepare, args=(key(), slow))
    leader.start()
    try:
        assert inside.wait(WAIT)

        found = cache.get_or_prepare(key(), lambda: entry(1.0), wait=False)

        assert torch.equal(found.tensors["gen.embedding"], entry(1.0).tensors["gen.embedding"])
        assert cache.stats().misses == 1
    finally:
        go.set()
        leader.join(WAIT)
