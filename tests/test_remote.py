"""The Redis tier, against a real redis-server on loopback, with small entries."""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time

import pytest
import redis
import torch
from strategies import voice_entry

from cached_tts import ConditionalCache, EntryKey, RemoteSettings
from cached_tts._entries.entry import Entry
from cached_tts._entries.format import decode, encode
from cached_tts._tiers.disk.store import DiskStore
from cached_tts._tiers.health import Backoff
from cached_tts._tiers.redis.tier import open_remote

# Short back-offs so that recovery is observable within a test.
FAST = RemoteSettings(backoff=Backoff(initial=0.2, maximum=0.4), lease_seconds=5.0)


def key(name: str = "alice") -> EntryKey:
    return EntryKey(content=name * 4, weights="w", settings=(("device", "cpu"),))


def entry(value: float = 1.0) -> Entry:
    return voice_entry(value, prepare_seconds=0.5)


def preparer(value: float = 1.0, delay: float = 0.0):
    calls = []

    def prepare() -> Entry:
        calls.append(1)
        time.sleep(delay)
        return entry(value)

    prepare.calls = calls
    return prepare


def machine(tmp_path, name, remote, settings=FAST):
    return ConditionalCache(tmp_path / name, remote=remote, remote_settings=settings)


def same(a: Entry, b: Entry) -> bool:
    return a.tensors.keys() == b.tensors.keys() and all(
        torch.equal(a.tensors[n], b.tensors[n]) for n in a.tensors
    )


def entry_name(k: EntryKey) -> str:
    return f"cached-tts:entry:{k.digest}"


def test_a_voice_prepared_on_one_machine_is_a_redis_hit_on_another(tmp_path, redis_url):
    first, second = machine(tmp_path, "a", redis_url), machine(tmp_path, "b", redis_url)
    prepare = preparer()
    made = first.get_or_prepare(key(), prepare, source="alice.wav")
    served = second.get_or_prepare(key(), prepare, source="alice.wav")

    assert len(prepare.calls) == 1
    assert same(made, served)
    assert (second.stats().remote_hits, second.stats().misses) == (1, 0)
    assert second.stats().seconds_saved > 0


def test_a_redis_hit_fills_disk_and_memory(tmp_path, redis_url):
    machine(tmp_path, "a", redis_url).get_or_prepare(key(), preparer())
    second = machine(tmp_path, "b", redis_url)
    second.get_or_prepare(key(), preparer())
    second.get_or_prepare(key(), preparer())
    assert (second.stats().remote_hits, second.stats().memory_hits) == (1, 1)
    assert second.stats().disk_entries == 1
    # Redis gone for good: the disk copy still serves a new process.
    offline = ConditionalCache(tmp_path / "b", remote=None)
    offline.get_or_prepare(key(), preparer())
    assert offline.stats().disk_hits == 1


def test_a_miss_is_written_to_redis_in_the_disk_entry_format(tmp_path, redis_url):
    machine(tmp_path, "a", redis_url).get_or_prepare(key(), preparer(), source="alice.wav")
    stored = redis.Redis.from_url(redis_url).get(entry_name(key()))
    # Dropped into another machine's folder, the value is a valid disk entry.
    store = DiskStore(tmp_path / "other")
    store.prepare()
    store.path_for(key()).write_bytes(stored)
    found, info = store.read(key())
    assert same(found, entry())
    assert info.source == "alice.wav"


def test_disk_and_redis_hold_the_very_same_bytes(tmp_path, redis_url):
    first = machine(tmp_path, "a", redis_url)
    first.get_or_prepare(key(), preparer(), source="alice.wav")
    second = machine(tmp_path, "b", redis_url)
    second.get_or_prepare(key(), preparer(), source="alice.wav")

    stored = redis.Redis.from_url(redis_url).get(entry_name(key()))
    for folder in ("a", "b"):
        on_disk = DiskStore(tmp_path / folder).path_for(key()).read_bytes()
        assert on_disk == stored


def test_keys_live_under_the_configured_prefix_and_leases_are_released(tmp_path, redis_url):
    settings = RemoteSettings(prefix="fleet-7:")
    machine(tmp_path, "a", redis_url, settings).get_or_prepare(key(), preparer())
    assert redis.Redis.from_url(redis_url).keys("*") == [f"fleet-7:entry:{key().digest}".encode()]


def test_ttl_is_set_on_write_and_refreshed_on_hit(tmp_path, redis_url):
    settings = RemoteSettings(ttl=100)
    client = redis.Redis.from_url(redis_url)
    machine(tmp_path, "a", redis_url, settings).get_or_prepare(key(), preparer())
    assert 0 < client.ttl(entry_name(key())) <= 100
    client.expire(entry_name(key()), 10)
    machine(tmp_path, "b", redis_url, settings).get_or_prepare(key(), preparer())
    assert client.ttl(entry_name(key())) > 10


def test_a_value_over_the_size_limit_is_not_stored_in_redis(tmp_path, redis_url):
    cache = machine(tmp_path, "a", redis_url, RemoteSettings(max_value_bytes=100))
    cache.get_or_prepare(key(), preparer())
    assert redis.Redis.from_url(redis_url).keys("*") == []
    assert cache.stats().disk_entries == 1


def sent_by(client) -> int:
    """Bytes the server has sent its clients so far (INFO's own answer included)."""
    return int(client.info("stats")["total_net_output_bytes"])


def test_a_value_over_the_size_limit_is_read_no_further_and_the_good_entry_replaces_it(
    tmp_path, redis_url, caplog
):
    client = redis.Redis.from_url(redis_url)
    good = encode(key(), entry(), source="alice.wav", created=0.0)
    limit = len(good) + 1000
    client.set(entry_name(key()), good + b"\0" * 2_000_000)  # a whole entry, padded
    cache = machine(tmp_path, "a", redis_url, dataclasses.replace(FAST, max_value_bytes=limit))
    prepare = preparer()
    before = sent_by(client)
    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        served = cache.get_or_prepare(key(), prepare, source="alice.wav")
    # The lookup, the lease and the write took far less than the 2 MB value.
    assert sent_by(client) - before < 100_000
    assert "over max_value_bytes" in caplog.text
    assert len(prepare.calls) == 1
    assert same(served, entry())
    assert same(decode(client.get(entry_name(key())), key())[0], entry())
    assert cache.stats().remote_errors == 0


def test_housekeeping_reads_an_oversized_value_no_further_and_deletes_it(redis_url):
    client = redis.Redis.from_url(redis_url)
    tier = open_remote(redis_url, dataclasses.replace(FAST, max_value_bytes=100))
    name = entry_name(key())
    client.set(name, b"x" * 5000)
    start = tier.read(key().digest)
    assert start == b"x" * 101
    # What a read that stopped early stands for is never a good entry written since.
    client.set(name, b"y" * 100)
    assert not tier.delete(key().digest, start)
    client.set(name, b"z" * 5000)
    assert tier.delete(key().digest, start)
    assert not client.exists(name)


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "not an entry"])
def test_a_damaged_value_is_deleted_and_recomputed_not_served(tmp_path, redis_url, damage):
    client = redis.Redis.from_url(redis_url)
    good = encode(key(), entry(1.0), source="x", created=0.0)
    bad = {
        "flip a byte": good[:-3] + bytes([good[-3] ^ 1]) + good[-2:],
        "truncate": good[: len(good) // 2],
        "not an entry": b"\x80\x04pickle",
    }[damage]
    client.set(entry_name(key()), bad)
    cache = machine(tmp_path, "a", redis_url)
    prepare = preparer(2.0)
    got = cache.get_or_prepare(key(), prepare)

    assert len(prepare.calls) == 1
    assert same(got, entry(2.0))
    assert cache.stats().misses == 1
    # The recomputed entry replaced the damaged value.
    assert client.get(entry_name(key())) != bad


WRONG_TYPES = {
    "list": lambda c, name: c.rpush(name, b"junk"),
    "hash": lambda c, name: c.hset(name, "field", b"junk"),
    "set": lambda c, name: c.sadd(name, b"junk"),
}


@pytest.mark.parametrize("kind", list(WRONG_TYPES))
def test_a_key_of_the_wrong_type_is_damage_replaced_by_the_good_entry_not_an_outage(
    tmp_path, redis_url, kind
):
    client = redis.Redis.from_url(redis_url)
    WRONG_TYPES[kind](client, entry_name(key()))
    cache = machine(tmp_path, "a", redis_url)
    prepare = preparer(2.0)

    got = cache.get_or_prepare(key(), prepare)

    assert same(got, entry(2.0))
    assert len(prepare.calls) == 1
    assert cache.stats().remote_errors == 0  # Redis answered: no back-off
    assert client.type(entry_name(key())) == b"string"
    # Another worker is served the good entry from Redis.
    other = machine(tmp_path, "b", redis_url)
    assert same(other.get_or_prepare(key(), preparer(3.0)), entry(2.0))
    assert other.stats().remote_hits == 1


def test_a_wrong_typed_key_is_removed_only_while_it_still_is_one(redis_url, monkeypatch):
    client = redis.Redis.from_url(redis_url)
    name = entry_name(key())
    client.rpush(name, b"junk")
    good = encode(key(), entry(4.0), source="x", created=0.0)
    tier = open_remote(redis_url, FAST)
    real_read = tier._read_bounded  # the script that reads a value

    def read_then_repaired(*args, **kwargs):
        try:
            return real_read(*args, **kwargs)
        finally:  # another worker replaces the list with a good entry meanwhile
            client.delete(name)
            client.set(name, good)

    monkeypatch.setattr(tier, "_read_bounded", read_then_repaired)

    assert tier.get(key()) is None
    assert client.get(name) == good
    assert tier.errors == 0


def test_a_value_stored_under_another_key_is_deleted_and_recomputed(tmp_path, redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set(entry_name(key("alice")), encode(key("bob"), entry(9.0), source="b", created=0))
    cache = machine(tmp_path, "a", redis_url)
    got = cache.get_or_prepare(key("alice"), preparer(1.0))
    assert same(got, entry(1.0))
    assert cache.stats().misses == 1


def test_threads_on_two_machines_prepare_a_voice_once_in_total(tmp_path, redis_url):
    machines = [machine(tmp_path, name, redis_url) for name in "ab"]
    prepare = preparer(delay=0.5)
    results = []

    def lookup(cache):
        results.append(cache.get_or_prepare(key(), prepare))

    threads = [threading.Thread(target=lookup, args=(m,)) for m in machines * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(prepare.calls) == 1
    assert len(results) == 4
    assert all(same(r, entry()) for r in results)
    assert sum(m.stats().remote_hits for m in machines) == 1


def test_a_failed_preparation_releases_the_lease_for_the_next_worker(tmp_path, redis_url):
    first, second = machine(tmp_path, "a", redis_url), machine(tmp_path, "b", redis_url)

    def fail() -> Entry:
        raise RuntimeError("clip unreadable")

    with pytest.raises(RuntimeError, match="clip unreadable"):
        first.get_or_prepare(key(), fail)
    assert redis.Redis.from_url(redis_url).keys("*") == []
    started = time.monotonic()
    second.get_or_prepare(key(), preparer())
    assert time.monotonic() - started < 2  # no wait for a lease nobody holds


def test_a_lease_left_by_a_dead_worker_expires(tmp_path, redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set(f"cached-tts:lease:{key().digest}", "dead-worker", px=500)
    prepare = preparer()
    machine(tmp_path, "a", redis_url).get_or_prepare(key(), prepare)
    assert len(prepare.calls) == 1
    assert client.get(f"cached-tts:lease:{key().digest}") is None


def test_a_lease_is_released_only_by_its_owner(tmp_path, redis_url):
    client = redis.Redis.from_url(redis_url)
    (tier,) = machine(tmp_path, "a", redis_url)._tiers
    lease = f"cached-tts:lease:{key().digest}"
    with tier.lease(key()) as found:
        assert found is None
        client.set(lease, "someone-else")  # ours expired and another took it
    assert client.get(lease) == b"someone-else"


def test_unreachable_redis_never_fails_a_lookup_and_warns_once(tmp_path, caplog):
    cache = machine(tmp_path, "a", "redis://127.0.0.1:1/0")
    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        for name in ["a", "b", "c", "d"]:
            assert same(cache.get_or_prepare(key(name), preparer()), entry())
    warnings = [r for r in caplog.records if "Cache tier redis:" in r.getMessage()]
    assert len(warnings) == 1
    assert cache.stats().misses == 4
    assert cache.stats().remote_errors >= 1


def test_a_hung_redis_costs_a_lookup_at_most_its_timeouts(tmp_path, silent_server):
    settings = RemoteSettings(backoff=Backoff(initial=60))
    cache = machine(tmp_path, "a", silent_server.url, settings)
    started = time.monotonic()
    first = cache.get_or_prepare(key("a"), preparer())
    assert time.monotonic() - started < 10
    assert same(first, entry())
    # Backing off: later lookups do not touch Redis at all.
    started = time.monotonic()
    cache.get_or_prepare(key("b"), preparer())
    assert time.monotonic() - started < 0.5
    assert cache.stats().remote_errors == 1


def test_redis_killed_mid_run_and_restarted_serves_again(tmp_path, own_redis, caplog):
    first = machine(tmp_path, "a", own_redis.url)
    first.get_or_prepare(key("a"), preparer(1.0))
    own_redis.kill()
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="cached_tts"):
        for name, value in [("b", 2.0), ("c", 3.0)]:
            assert same(first.get_or_prepare(key(name), preparer(value)), entry(value))
        assert time.monotonic() - started < 10
        own_redis.start()
        time.sleep(FAST.backoff.maximum + 0.1)
        assert same(first.get_or_prepare(key("d"), preparer(4.0)), entry(4.0))
    assert any("back in use" in r.getMessage() for r in caplog.records)
    # Written after the restart, so the fleet sees it.
    second = machine(tmp_path, "b", own_redis.url)
    prepare = preparer(0.0)
    assert same(second.get_or_prepare(key("d"), prepare), entry(4.0))
    assert prepare.calls == []


def test_remote_comes_from_the_environment_when_not_given(tmp_path, redis_url, monkeypatch):
    monkeypatch.setenv("CACHED_TTS_REMOTE", redis_url)
    machine_a = ConditionalCache(tmp_path / "a")
    machine_a.get_or_prepare(key(), preparer())
    assert redis.Redis.from_url(redis_url).exists(entry_name(key()))
    assert ConditionalCache(tmp_path / "b", remote=None)._tiers == ()


def test_a_ready_client_can_be_given(tmp_path, redis_url):
    client = redis.Redis.from_url(redis_url)
    machine(tmp_path, "a", client).get_or_prepare(key(), preparer())
    assert client.exists(entry_name(key()))


def test_a_client_that_decodes_responses_is_refused_with_a_clear_error(redis_url):
    with pytest.raises(ValueError, match="decode_responses=False"):
        ConditionalCache(None, remote=redis.Redis.from_url(redis_url, decode_responses=True))


def test_without_redis_py_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"pip install 'cached-tts\[redis\]'"):
        ConditionalCache(None, remote="redis://127.0.0.1:6379/0")
