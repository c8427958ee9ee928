"""A cache with several shared tiers: memory, disk, then each remote in order.

Through ConditionalCache, against a real redis-server and a real S3 API
(moto's server) on loopback, and fsspec's memory:// store; small entries.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid

import pytest
import redis
from redis_server import SilentServer
from test_objectstore_s3 import PATIENT, bucket_and_prefix, object_of, put_raw
from test_remote import entry, key, preparer, same

from cached_tts import ConditionalCache, RemoteSettings
from cached_tts._cache.forget import Erased, erase_content
from cached_tts._entries.format import decode, encode
from cached_tts._tiers.base import TierSettings
from cached_tts._tiers.health import Backoff
from cached_tts._tiers.objectstore.opening import open_object_store
from cached_tts._tiers.objectstore.tier import ObjectStoreTier
from cached_tts._tiers.redis.tier import RemoteTier
from cached_tts._tiers.shared import open_tiers


def memory_url():
    return f"memory://cached-tts-tests/{uuid.uuid4().hex}/prod"


def machine(tmp_path, name, remote, settings=PATIENT, **kwargs):
    """A machine of the fleet: a cache folder of its own, and the shared tiers."""
    return ConditionalCache(tmp_path / name, remote=remote, remote_settings=settings, **kwargs)


def holds(url, k):
    """Whether the store at ``url`` holds a verified entry for ``k``."""
    found = open_object_store(url, PATIENT).get(k)
    return found is not None and same(found[0], entry())


def in_redis(redis_url, k):
    data = redis.Redis.from_url(redis_url).get(f"cached-tts:entry:{k.digest}")
    return data is not None and same(decode(data, k)[0], entry())


# -- opening ------------------------------------------------------------------


def test_remote_takes_a_list_a_comma_separated_string_or_the_environment(
    tmp_path, redis_url, s3_url, monkeypatch
):
    as_list = machine(tmp_path, "a", [redis_url, s3_url])
    as_text = machine(tmp_path, "b", f"{redis_url}, {s3_url}")
    monkeypatch.setenv("CACHED_TTS_REMOTE", f"{redis_url},{s3_url}")
    from_env = ConditionalCache(tmp_path / "c")
    for cache in (as_list, as_text, from_env):
        assert [type(tier) for tier in cache._tiers] == [RemoteTier, ObjectStoreTier]
        assert [tier.name for tier in cache._tiers] == [redis_url, s3_url]


def test_a_redis_client_and_a_hand_built_tier_are_tiers_too(tmp_path, redis_url):
    bucket = open_object_store(memory_url())
    cache = machine(tmp_path, "a", [redis.Redis.from_url(redis_url), bucket])
    assert isinstance(cache._tiers[0], RemoteTier)
    assert cache._tiers[1] is bucket


def test_an_unknown_scheme_says_which_kinds_there_are():
    with pytest.raises(ValueError, match=r"neither a Redis URL .* nor an object store's"):
        open_tiers("http://cache:6379/0")


def test_settings_reach_every_tier_and_redis_keeps_its_own_fields(redis_url):
    settings = TierSettings(read_timeout=3.0, max_value_bytes=50_000)
    redis_tier, bucket = open_tiers([redis_url, memory_url()], settings)
    assert (redis_tier.settings.read_timeout, redis_tier.settings.max_value_bytes) == (3.0, 50_000)
    assert redis_tier.settings.prefix == "cached-tts:"  # RemoteSettings' default
    assert bucket.settings is settings
    redis_tier, bucket = open_tiers([redis_url, memory_url()], RemoteSettings(prefix="p:"))
    assert (redis_tier.settings.prefix, bucket.settings.prefix) == ("p:", "p:")


# -- the walk -----------------------------------------------------------------


def test_a_preparation_is_written_to_every_tier(tmp_path, redis_url, s3_url):
    cache = machine(tmp_path, "a", [redis_url, s3_url])
    cache.get_or_prepare(key(), preparer(), source="alice.wav")
    assert in_redis(redis_url, key())
    assert holds(s3_url, key())
    assert cache.stats().disk_entries == 1


def test_a_hit_in_s3_fills_redis_disk_and_memory(tmp_path, redis_url, s3_url):
    machine(tmp_path, "a", s3_url).get_or_prepare(key(), preparer())  # the bucket only
    assert not in_redis(redis_url, key())

    second = machine(tmp_path, "b", [redis_url, s3_url])
    prepare = preparer()
    assert same(second.get_or_prepare(key(), prepare), entry())
    assert prepare.calls == []
    assert in_redis(redis_url, key())
    second.get_or_prepare(key(), prepare)
    stats = second.stats()
    assert (stats.remote_hits, stats.memory_hits, stats.disk_entries) == (1, 1, 1)
    # Per tier, in lookup order: the bucket served it.
    assert [(t.name, t.hits) for t in stats.remote_tiers] == [(redis_url, 0), (s3_url, 1)]

    # A third machine is now served by Redis, the first tier.
    third = machine(tmp_path, "c", [redis_url, s3_url])
    third.get_or_prepare(key(), prepare)
    assert [t.hits for t in third.stats().remote_tiers] == [1, 0]


def test_a_hit_in_a_later_tier_fills_every_earlier_one(tmp_path):
    first, second, third = memory_url(), memory_url(), memory_url()
    machine(tmp_path, "a", third).get_or_prepare(key(), preparer())
    machine(tmp_path, "b", [first, second, third]).get_or_prepare(key(), preparer())
    assert holds(first, key())
    assert holds(second, key())


def test_every_tier_holds_the_very_bytes_of_the_disk_entry(tmp_path, redis_url, s3_url, s3_env):
    machine(tmp_path, "a", [redis_url, s3_url]).get_or_prepare(key(), preparer())
    on_disk = (tmp_path / "a" / "entries" / f"{key().digest}.safetensors").read_bytes()
    stored = redis.Redis.from_url(redis_url).get(f"cached-tts:entry:{key().digest}")
    assert on_disk == stored == object_of(s3_env, s3_url, key())


def test_the_lease_comes_from_the_first_tier_that_has_one(tmp_path, redis_url, s3_url):
    """S3 listed first, Redis second: Redis's lease still makes the fleet take turns."""
    client = redis.Redis.from_url(redis_url)
    leases_seen = []

    def prepare():
        leases_seen.extend(client.keys("cached-tts:lease:*"))
        return entry()

    machine(tmp_path, "a", [s3_url, redis_url]).get_or_prepare(key(), prepare)
    assert leases_seen == [f"cached-tts:lease:{key().digest}".encode()]
    assert client.keys("cached-tts:lease:*") == []  # released


def test_a_worker_waiting_on_the_lease_gets_the_result_from_the_bucket_listed_first(
    tmp_path, redis_url, s3_url
):
    """While one machine prepares under Redis's lease, another waits and is served."""
    first = machine(tmp_path, "a", [s3_url, redis_url])
    second = machine(tmp_path, "b", [s3_url, redis_url])
    second_waits = threading.Event()
    second_redis = second._tiers[1]
    lookups = []

    def get(k, real=second_redis.get):
        lookups.append(k)
        if len(lookups) == 2:  # the first look inside lease(): its SET NX was refused
            second_waits.set()
        return real(k)

    second_redis.get = get
    served = []

    def ask():
        served.append(second.get_or_prepare(key(), preparer()))

    waiter = threading.Thread(target=ask, daemon=True)

    def prepare():
        # The interleaving is forced: the second machine asks while this one holds the lease.
        waiter.start()
        assert second_waits.wait(60)
        return entry()

    first.get_or_prepare(key(), prepare)
    waiter.join(timeout=60)
    assert len(served) == 1
    assert same(served[0], entry())
    assert second.stats().misses == 0
    assert second.stats().remote_hits == 1


def test_an_object_store_alone_has_no_lease(tmp_path, s3_url):
    cache = machine(tmp_path, "a", s3_url)
    assert not any(tier.leases for tier in cache._tiers)
    cache.get_or_prepare(key(), preparer())  # prepares at once, nothing to wait for
    assert cache.stats().misses == 1


# -- verified on every read ------------------------------------------------------


@pytest.mark.parametrize("bad", ["damaged", "other key"])
def test_a_damaged_or_misplaced_object_is_recomputed_and_replaced(tmp_path, s3_url, s3_env, bad):
    good = encode(key(), entry(), source="x", created=0.0)
    data = {
        "damaged": good[:-3] + bytes([good[-3] ^ 1]) + good[-2:],
        "other key": encode(key("bob"), entry(), source="x", created=0.0),
    }[bad]
    put_raw(s3_env, s3_url, key(), data)
    cache = machine(tmp_path, "a", s3_url)
    prepare = preparer(2.0)
    served = cache.get_or_prepare(key(), prepare)
    assert len(prepare.calls) == 1
    assert same(served, entry(2.0))  # recomputed, never the stored one
    assert cache.stats().remote_hits == 0
    stored = object_of(s3_env, s3_url, key())
    assert same(decode(stored, key())[0], entry(2.0))  # replaced by the good entry


def test_an_object_over_the_size_limit_is_recomputed_and_replaced(tmp_path, s3_url, s3_env):
    good = encode(key(), entry(), source="x", created=0.0)
    put_raw(s3_env, s3_url, key(), good + b"\0" * 100_000)  # a whole entry, padded
    settings = dataclasses.replace(PATIENT, max_value_bytes=len(good) + 1000)
    cache = machine(tmp_path, "a", s3_url, settings)
    prepare = preparer(2.0)
    served = cache.get_or_prepare(key(), prepare)
    assert len(prepare.calls) == 1
    assert same(served, entry(2.0))  # recomputed, never the stored one
    assert (cache.stats().remote_hits, cache.stats().remote_errors) == (0, 0)
    stored = object_of(s3_env, s3_url, key())
    assert same(decode(stored, key())[0], entry(2.0))  # replaced by the good entry


# -- read-only credentials ------------------------------------------------------


def test_read_only_credentials_serve_hits_and_a_refused_write_never_fails_a_call(
    tmp_path, s3_url, s3_env, caplog
):
    bucket, _ = bucket_and_prefix(s3_url)
    writer, reader = s3_env.users(bucket)
    s3_env.enforce_credentials(enforce=True)
    try:
        warm = machine(tmp_path, "ci", s3_url, remote_options=writer.options())
        warm.get_or_prepare(key("alice"), preparer())
        production = machine(tmp_path, "prod", s3_url, remote_options=reader.options())
        with caplog.at_level(logging.WARNING, logger="cached_tts"):
            assert same(production.get_or_prepare(key("alice"), preparer()), entry())
            for name in ("bob", "carol"):  # misses: prepared, the writes refused
                assert same(production.get_or_prepare(key(name), preparer(3.0)), entry(3.0))
        stats = production.stats()
        assert (stats.remote_hits, stats.misses, stats.remote_errors) == (1, 2, 0)
        assert len([r for r in caplog.records if "refused to write" in r.getMessage()]) == 1
    finally:
        s3_env.enforce_credentials(enforce=False)
    assert object_of(s3_env, s3_url, key("bob")) is None


def test_read_only_keys_that_may_not_list_get_misses_not_an_outage(tmp_path, s3_url, s3_env):
    bucket, prefix = bucket_and_prefix(s3_url)
    only_alice = s3_env.user(
        bucket, ["s3:GetObject"], [f"arn:aws:s3:::{bucket}/{prefix}/{key('alice').digest}*"]
    )
    machine(tmp_path, "ci", s3_url).get_or_prepare(key("alice"), preparer())
    s3_env.enforce_credentials(enforce=True)
    try:
        cache = machine(tmp_path, "prod", s3_url, remote_options=only_alice.options())
        cache.get_or_prepare(key("bob"), preparer())  # a 403, not a 404
        cache.get_or_prepare(key("alice"), preparer())  # still in use: no back-off
    finally:
        s3_env.enforce_credentials(enforce=False)
    stats = cache.stats()
    assert (stats.misses, stats.remote_hits, stats.remote_errors) == (1, 1, 0)


# -- never a stall ----------------------------------------------------------------


def test_a_server_stopped_mid_run_never_fails_a_lookup(tmp_path, own_s3, caplog):
    url = f"s3://{own_s3.new_bucket()}/prod"
    settings = TierSettings(connect_timeout=2.0, read_timeout=10.0, backoff=Backoff(initial=60))
    cache = machine(tmp_path, "a", url, settings)
    cache.get_or_prepare(key("alice"), preparer())
    own_s3.stop()
    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        for name in ("bob", "carol", "dave"):
            assert same(cache.get_or_prepare(key(name), preparer(4.0)), entry(4.0))
    stats = cache.stats()
    assert stats.misses == 4
    # One failed call, then the bucket is skipped during the back-off.
    assert stats.remote_errors == 1
    assert [(t.name, t.errors) for t in stats.remote_tiers] == [(url, 1)]
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1


def test_a_server_that_never_answers_does_not_stall_a_lookup(tmp_path, s3_env, monkeypatch):
    """botocore would wait 600 s for an answer; the tier's deadline ends the call."""
    silent = SilentServer()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.port}")
    try:
        settings = TierSettings(connect_timeout=0.2, read_timeout=0.3)
        cache = machine(
            tmp_path,
            "a",
            f"s3://{s3_env.new_bucket()}/prod",
            settings,
            remote_options={"config_kwargs": {"read_timeout": 600}},
        )
        served = []
        lookup = threading.Thread(
            target=lambda: served.append(cache.get_or_prepare(key(), preparer())), daemon=True
        )
        lookup.start()
        lookup.join(timeout=120)  # a hang guard, far beyond the 0.5 s deadline
        assert len(served) == 1
        assert same(served[0], entry())
        assert cache.stats().remote_errors == 1
    finally:
        silent.close()


def test_redis_down_and_the_bucket_up_still_serves_from_the_bucket(tmp_path, s3_url):
    machine(tmp_path, "a", s3_url).get_or_prepare(key(), preparer())
    dead_redis = "redis://127.0.0.1:1/0"
    cache = machine(tmp_path, "b", [dead_redis, s3_url])
    prepare = preparer()
    assert same(cache.get_or_prepare(key(), prepare), entry())
    assert prepare.calls == []
    stats = cache.stats()
    assert stats.remote_hits == 1
    assert [(t.hits, t.errors) for t in stats.remote_tiers] == [(0, 1), (1, 0)]


def test_erasing_a_voice_reaches_every_shared_tier(tmp_path, redis_url, s3_url, s3_env):
    cache = machine(tmp_path, "a", [redis_url, s3_url])
    cache.get_or_prepare(key("alice"), preparer())
    cache.get_or_prepare(key("bob"), preparer())
    erased = Erased()
    erase_content(key("alice").content, None, cache._tiers, erased)
    assert sorted(erased.shared) == [key("alice").digest] * 2
    with pytest.warns(DeprecationWarning, match=r"Erased\.redis is deprecated: use Erased\.shared"):
        assert erased.redis is erased.shared
    assert not in_redis(redis_url, key("alice"))
    assert object_of(s3_env, s3_url, key("alice")) is None
    assert in_redis(redis_url, key("bob"))
    assert holds(s3_url, key("bob"))
