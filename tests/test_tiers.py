"""The shared-tier protocol: verification, counters and back-off that every tier inherits."""

from __future__ import annotations

import logging

from test_objectstore import KEY, OTHER_KEY, Clock, encoded

from cached_tts._tiers.base import SharedTier, StoredObject, TierSettings
from cached_tts._tiers.health import Backoff


class DictTier(SharedTier):
    """The smallest tier: a dict. Everything but storage comes from the base class."""

    def __init__(self, settings: TierSettings | None = None) -> None:
        super().__init__("dict://test", settings or TierSettings())
        self.objects: dict[str, bytes] = {}
        self.discarded: list[tuple[str, str]] = []

    def _fetch(self, digest):
        return self.objects.get(digest)

    def _discard(self, digest, data, damage):
        if self.objects.get(digest) == data:
            del self.objects[digest]
        self.discarded.append((digest, damage))

    def put(self, key, data):
        self.objects.setdefault(key.digest, data)

    def ping(self):
        pass

    def scan(self):
        for digest, data in self.objects.items():
            yield StoredObject(digest, len(data), None)

    def read(self, digest):
        return self.objects.get(digest)

    def delete(self, digest, data):
        if self.objects.get(digest) != data:
            return False
        del self.objects[digest]
        return True

    def delete_all(self):
        count = len(self.objects)
        self.objects.clear()
        return count

    def location(self, digest):
        return f"{self.name}/{digest}"


def test_every_tier_serves_only_verified_entries_and_counts_its_hits():
    tier = DictTier()
    tier.put(KEY, encoded())
    assert tier.get(KEY)[1] == encoded()
    tier.objects[OTHER_KEY.digest] = encoded()  # a whole entry under another key's name
    assert tier.get(OTHER_KEY) is None
    assert tier.discarded == [(OTHER_KEY.digest, "the entry was stored under another key")]
    assert OTHER_KEY.digest not in tier.objects
    assert tier.stats().hits == 1
    assert tier.stats().name == "dict://test"


def test_a_tier_without_a_lease_lets_the_caller_prepare_at_once():
    tier = DictTier()
    assert not tier.leases
    with tier.lease(KEY) as found:
        assert found is None


def test_the_back_off_doubles_up_to_its_maximum_and_starts_small_again(monkeypatch, caplog):
    clock = Clock()
    monkeypatch.setattr("cached_tts._tiers.health._now", clock)
    tier = DictTier(TierSettings(backoff=Backoff(initial=5.0, maximum=12.0)))
    backoff = tier.health
    waits = []
    with caplog.at_level(logging.INFO, logger="cached_tts"):
        for _ in range(4):
            start = clock.now
            backoff.failed(OSError("down"))
            while not backoff.available():
                clock.now += 1.0
            waits.append(clock.now - start)
        backoff.succeeded()
        backoff.failed(OSError("down again"))
        start = clock.now
        while not backoff.available():
            clock.now += 1.0
        waits.append(clock.now - start)
    assert waits == [5.0, 10.0, 12.0, 12.0, 5.0]
    messages = [record.getMessage() for record in caplog.records]
    # One warning per outage, one line when it is over.
    assert sum("failed" in message for message in messages) == 2
    assert sum("back in use" in message for message in messages) == 1


def test_a_call_may_take_a_connect_and_a_read():
    assert TierSettings(connect_timeout=0.25, read_timeout=2.0).call_timeout == 2.25
