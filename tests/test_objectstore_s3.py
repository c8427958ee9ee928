"""The object-store tier against a real S3 API on loopback, through s3fs and botocore.

The server is moto's (tests/s3_server.py); the tier finds it through
``AWS_ENDPOINT_URL`` and keys in the environment, as a deployment would.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from redis_server import SilentServer
from test_format import assert_same_entry
from test_objectstore import KEY, LIMIT, OTHER_KEY, encoded, oversized

from cached_tts._entries.format import decode
from cached_tts._tiers.base import TierSettings
from cached_tts._tiers.health import Backoff
from cached_tts._tiers.objectstore.opening import open_object_store

# Timeouts a loaded test machine always meets, where a test is not about them.
PATIENT = TierSettings(connect_timeout=5.0, read_timeout=30.0)


def patient(url, **kwargs):
    return open_object_store(url, PATIENT, **kwargs)


def bucket_and_prefix(url):
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix


def put_raw(server, url, key, data):
    bucket, prefix = bucket_and_prefix(url)
    server.client().put_object(Bucket=bucket, Key=f"{prefix}/{key.digest}.safetensors", Body=data)


def object_of(server, url, key):
    bucket, prefix = bucket_and_prefix(url)
    client = server.client()
    try:
        return client.get_object(Bucket=bucket, Key=f"{prefix}/{key.digest}.safetensors")[
            "Body"
        ].read()
    except client.exceptions.NoSuchKey:
        return None


def test_an_entry_put_by_one_machine_is_served_verified_to_another(s3_url, s3_env):
    data = encoded()
    patient(s3_url).put(KEY, data)
    assert object_of(s3_env, s3_url, KEY) == data
    other_machine = patient(s3_url)
    entry, served = other_machine.get(KEY)
    assert served == data
    assert_same_entry(entry, decode(data, KEY)[0])
    assert other_machine.stats().hits == 1
    assert other_machine.stats().errors == 0


def test_an_absent_entry_is_a_quiet_miss(s3_url, caplog):
    tier = patient(s3_url)
    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        assert tier.get(KEY) is None
    assert caplog.records == []
    assert tier.stats().errors == 0


def test_the_loser_of_a_conditional_create_succeeds_quietly(s3_url, s3_env, caplog):
    first, second = patient(s3_url), patient(s3_url)
    first.put(KEY, encoded(created=1.0))
    with caplog.at_level(logging.DEBUG, logger="cached_tts"):
        second.put(KEY, encoded(created=2.0))
    # The server refused the second create (If-None-Match: *): the first object stays.
    assert object_of(s3_env, s3_url, KEY) == encoded(created=1.0)
    assert "already holds" in caplog.text
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert second.stats().errors == 0
    assert not second.read_only


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda: encoded()[:1000], id="truncated"),
        pytest.param(lambda: encoded()[:-1] + bytes([encoded()[-1] ^ 1]), id="flipped-bit"),
        pytest.param(lambda: encoded(key=OTHER_KEY), id="other-key"),
    ],
)
def test_a_damaged_or_misplaced_object_is_not_served_and_is_deleted(s3_url, s3_env, bad):
    put_raw(s3_env, s3_url, KEY, bad())
    tier = patient(s3_url)
    assert tier.get(KEY) is None
    assert object_of(s3_env, s3_url, KEY) is None
    # The next preparation's put takes its place.
    tier.put(KEY, encoded())
    assert tier.get(KEY)[1] == encoded()


@pytest.fixture
def read_only_keys(s3_url, s3_env):
    """(writer, reader) keys of IAM users, with moto checking every request's keys."""
    bucket, _ = bucket_and_prefix(s3_url)
    writer, reader = s3_env.users(bucket)
    s3_env.enforce_credentials(enforce=True)
    yield writer, reader
    s3_env.enforce_credentials(enforce=False)


def test_read_only_credentials_read_and_a_refused_write_warns_once(
    s3_url, s3_env, read_only_keys, caplog
):
    writer_keys, reader_keys = read_only_keys
    patient(s3_url, options=writer_keys.options()).put(OTHER_KEY, encoded(key=OTHER_KEY))
    reader = patient(s3_url, options=reader_keys.options())
    assert reader.get(OTHER_KEY)[1] == encoded(key=OTHER_KEY)
    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        reader.put(KEY, encoded())
        reader.put(KEY, encoded())
    assert len([r for r in caplog.records if "refused to write" in r.getMessage()]) == 1
    assert reader.read_only
    assert reader.stats().errors == 0
    s3_env.enforce_credentials(enforce=False)
    assert object_of(s3_env, s3_url, KEY) is None


def test_read_only_credentials_never_serve_a_damaged_object(s3_url, s3_env, read_only_keys):
    writer_keys, reader_keys = read_only_keys
    put_raw_as = patient(s3_url, options=writer_keys.options())._filesystem()
    bucket, prefix = bucket_and_prefix(s3_url)
    put_raw_as.pipe_file(f"{bucket}/{prefix}/{KEY.digest}.safetensors", encoded(key=OTHER_KEY))
    reader = patient(s3_url, options=reader_keys.options())
    assert reader.get(KEY) is None
    assert reader.read_only  # its delete was refused
    assert reader.stats().errors == 0
    s3_env.enforce_credentials(enforce=False)
    assert object_of(s3_env, s3_url, KEY) == encoded(key=OTHER_KEY)


def wait_until(condition):
    event = threading.Event()
    while not condition():
        event.wait(0.02)


def test_a_stopped_server_is_skipped_then_used_again_after_a_restart(own_s3, caplog):
    url = f"s3://{own_s3.new_bucket()}/prod"
    settings = TierSettings(connect_timeout=5.0, read_timeout=30.0, backoff=Backoff(initial=0.3))
    tier = open_object_store(url, settings)
    tier.put(KEY, encoded())
    assert tier.get(KEY) is not None

    own_s3.stop()  # mid-run: connections are refused
    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        assert tier.get(KEY) is None
        tier.put(OTHER_KEY, encoded(key=OTHER_KEY))  # skipped: backing off
        assert tier.get(KEY) is None
    assert tier.stats().errors == 1
    assert not tier.available()
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1

    own_s3.start()  # the same port; moto kept the bucket
    wait_until(tier.available)
    with caplog.at_level(logging.INFO, logger="cached_tts"):
        assert tier.get(KEY)[1] == encoded()
    assert "is back in use" in caplog.text
    assert tier.stats().errors == 1


@pytest.mark.usefixtures("s3_env")
def test_a_server_that_never_answers_costs_one_deadline_then_a_back_off(monkeypatch):
    """The deadline holds even when botocore's own read timeout would wait for minutes."""
    silent = SilentServer()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.port}")
    try:
        settings = TierSettings(
            connect_timeout=0.2, read_timeout=0.3, backoff=Backoff(initial=60.0)
        )
        tier = open_object_store(
            "s3://voices/prod", settings, options={"config_kwargs": {"read_timeout": 600}}
        )
        returned = []
        lookup = threading.Thread(target=lambda: returned.append(tier.get(KEY)), daemon=True)
        lookup.start()
        lookup.join(timeout=120)  # a hang guard, far beyond the 0.5 s deadline
        assert returned == [None]
        assert tier.stats().errors == 1
        assert not tier.available()
        tier.put(KEY, encoded())  # skipped: no second wait
        assert tier.stats().errors == 1
    finally:
        silent.close()


def test_scan_lists_digests_sizes_and_times(s3_url, s3_env):
    tier = patient(s3_url)
    assert list(tier.scan()) == []
    tier.ping()  # an empty prefix answers
    tier.put(KEY, encoded())
    tier.put(OTHER_KEY, encoded(key=OTHER_KEY, seed=1))
    bucket, _ = bucket_and_prefix(s3_url)
    s3_env.client().put_object(Bucket=bucket, Key="prod/readme.txt", Body=b"not an entry")
    s3_env.client().put_object(Bucket=bucket, Key="elsewhere.safetensors", Body=b"outside")
    listed = sorted(tier.scan(), key=lambda found: found.digest)
    expected = sorted(
        [(KEY.digest, len(encoded())), (OTHER_KEY.digest, len(encoded(key=OTHER_KEY, seed=1)))]
    )
    assert [(found.digest, found.size) for found in listed] == expected
    assert all(found.modified is not None and found.modified > 0 for found in listed)


def test_delete_and_delete_all(s3_url, s3_env):
    tier = patient(s3_url)
    tier.put(KEY, encoded())
    tier.put(OTHER_KEY, encoded(key=OTHER_KEY))
    assert tier.delete(KEY.digest, b"other bytes") is False
    assert tier.delete(KEY.digest, encoded()) is True
    assert object_of(s3_env, s3_url, KEY) is None
    assert tier.delete_all() == 1
    assert list(tier.scan()) == []


@pytest.mark.usefixtures("s3_env")
def test_a_missing_bucket_is_a_failure_not_a_refusal(caplog):
    tier = patient("s3://no-such-bucket-here/prod")
    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        tier.put(KEY, encoded())
    assert tier.stats().errors == 1
    assert not tier.read_only
    assert "bucket does not exist" in caplog.text
    with pytest.raises(FileNotFoundError, match="no-such-bucket-here"):
        tier.ping()


def slow_set_up(monkeypatch, seconds, started=None):
    """Building the S3 client takes ``seconds``, as a slow credentials lookup would.

    Each build begun is added to ``started``, if given.
    """
    import asyncio

    import s3fs

    original = s3fs.S3FileSystem.set_session

    async def slow(self, *args, **kwargs):
        if self._s3 is None:  # building it; later calls reuse it
            if started is not None:
                started.append(self)
            await asyncio.sleep(seconds)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "set_session", slow)


def test_a_slow_credentials_lookup_is_not_a_timeout_of_the_first_lookup(s3_url, monkeypatch):
    patient(s3_url).put(KEY, encoded())
    slow_set_up(monkeypatch, 4.0)
    settings = TierSettings(connect_timeout=1.0, read_timeout=2.5, open_timeout=60.0)
    # Building the client takes longer than a call may, not longer than opening may.
    assert settings.call_timeout < 4.0 < settings.open_timeout
    cold = open_object_store(s3_url, settings)
    assert cold.get(KEY)[1] == encoded()
    assert cold.stats().errors == 0


@pytest.mark.usefixtures("s3_env")
def test_a_client_that_never_gets_built_costs_one_open_timeout(monkeypatch):
    slow_set_up(monkeypatch, 3600)
    settings = TierSettings(open_timeout=0.3, backoff=Backoff(initial=60.0))
    tier = open_object_store("s3://voices/prod", settings)
    returned = []
    lookup = threading.Thread(target=lambda: returned.append(tier.get(KEY)), daemon=True)
    lookup.start()
    lookup.join(timeout=120)  # a hang guard, far beyond the 0.3 s limit
    assert returned == [None]
    assert tier.stats().errors == 1
    assert not tier.available()


@pytest.mark.usefixtures("s3_env")
def test_lookups_during_a_hung_open_wait_one_open_timeout_and_never_queue(monkeypatch):
    """8 cold lookups at once while credentials never come: one open, one failure.

    Taking turns on the open, the k-th lookup waited k open timeouts (8 s here).
    """
    attempts = []
    slow_set_up(monkeypatch, 3600, started=attempts)
    settings = TierSettings(open_timeout=1.0, backoff=Backoff(initial=60.0))
    tier = open_object_store("s3://voices/prod", settings)
    callers = 8
    together = threading.Barrier(callers)
    timed = []

    def lookup():
        together.wait()
        started = time.monotonic()
        found = tier.get(KEY)
        timed.append((found, time.monotonic() - started))

    threads = [threading.Thread(target=lookup, daemon=True) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)  # a hang guard, far beyond any limit here
    assert len(timed) == callers
    assert all(found is None for found, _seconds in timed)
    assert len(attempts) == 1
    # The documented deadline of a cold lookup, with room for a loaded machine.
    assert max(seconds for _found, seconds in timed) < settings.open_timeout + 3.0
    assert tier.stats().errors == 1
    assert not tier.available()


def test_a_long_lived_tier_sees_what_other_machines_wrote_since_its_last_scan(s3_url):
    tier = patient(s3_url)
    tier.put(KEY, encoded())
    assert [found.digest for found in tier.scan()] == [KEY.digest]
    patient(s3_url).put(OTHER_KEY, encoded(key=OTHER_KEY))
    assert sorted(found.digest for found in tier.scan()) == sorted([KEY.digest, OTHER_KEY.digest])


def test_a_refused_read_is_a_miss_with_one_warning_not_an_outage(s3_url, s3_env, caplog):
    """S3 answers 403, not 404, for a missing object to keys without s3:ListBucket.

    moto answers 404 there, so these keys may read one object only: every other
    read is refused (403) as real S3 refuses a missing one.
    """
    bucket, prefix = bucket_and_prefix(s3_url)
    patient(s3_url).put(OTHER_KEY, encoded(key=OTHER_KEY))
    one_object = f"arn:aws:s3:::{bucket}/{prefix}/{OTHER_KEY.digest}.safetensors"
    keys = s3_env.user(bucket, ["s3:GetObject"], [one_object])
    s3_env.enforce_credentials(enforce=True)
    try:
        tier = patient(s3_url, options=keys.options(), read_only=True)
        with caplog.at_level(logging.WARNING, logger="cached_tts"):
            assert tier.get(KEY) is None
            assert tier.get(KEY) is None
        # No back-off: the next lookup is served.
        assert tier.get(OTHER_KEY)[1] == encoded(key=OTHER_KEY)
        assert tier.stats().errors == 0
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 1
        assert "s3:ListBucket" in warnings[0]
    finally:
        s3_env.enforce_credentials(enforce=False)


def test_a_lookup_is_one_request_hit_or_miss(s3_url, monkeypatch):
    patient(s3_url).put(KEY, encoded())
    tier = patient(s3_url)
    fs = tier._filesystem()
    requests = []
    call_s3 = fs._call_s3

    async def counted(method, *args, **kwargs):
        requests.append(method)
        return await call_s3(method, *args, **kwargs)

    monkeypatch.setattr(fs, "_call_s3", counted)
    assert tier.get(KEY) is not None
    assert tier.get(OTHER_KEY) is None
    assert requests == ["get_object", "get_object"]


def test_an_oversized_object_costs_one_ranged_get_and_the_good_entry_replaces_it(
    s3_url, s3_env, monkeypatch, caplog
):
    put_raw(s3_env, s3_url, KEY, oversized())
    tier = open_object_store(
        s3_url, TierSettings(connect_timeout=5.0, read_timeout=30.0, max_value_bytes=LIMIT)
    )
    fs = tier._filesystem()
    requests, lengths = [], []
    call_s3 = fs._call_s3

    async def counted(method, *args, **kwargs):
        requests.append((method, kwargs.get("Range")))
        response = await call_s3(method, *args, **kwargs)
        if method == "get_object":
            lengths.append(response["ContentLength"])
        return response

    monkeypatch.setattr(fs, "_call_s3", counted)
    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        assert tier.get(KEY) is None
    # One request, no HEAD first, and the server sent no more than the limit and a byte.
    assert requests[0] == ("get_object", f"bytes=0-{LIMIT}")
    assert lengths == [LIMIT + 1]
    assert "over max_value_bytes" in caplog.text
    assert tier.stats().errors == 0
    # Removed (the tier may write), so the conditional create of the good entry succeeds.
    assert object_of(s3_env, s3_url, KEY) is None
    tier.put(KEY, encoded())
    assert object_of(s3_env, s3_url, KEY) == encoded()
    assert tier.get(KEY)[1] == encoded()


def test_an_empty_object_is_damage_not_an_outage(s3_url, s3_env, caplog):
    """S3 answers a ranged read of an empty object with 416, not with its no bytes."""
    put_raw(s3_env, s3_url, KEY, b"")
    tier = patient(s3_url)
    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        assert tier.get(KEY) is None
    assert "Removing damaged entry" in caplog.text
    assert (tier.stats().errors, tier.available()) == (0, True)
    assert object_of(s3_env, s3_url, KEY) is None
    put_raw(s3_env, s3_url, KEY, b"")
    assert patient(s3_url).read(KEY.digest) == b""  # which verify calls damage
