"""Settings are checked when they are built: a wrong field raises there, naming what it accepts."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from fractions import Fraction

import pytest
import redis
from strategies import voice_entry

from cached_tts import Backoff, ConditionalCache, EntryKey, RemoteSettings, TierSettings

KEY = EntryKey(content="c" * 64, weights="w", settings=(("device", "cpu"),))

# Every duration field of TierSettings (and so of RemoteSettings).
TIMES = ["connect_timeout", "read_timeout", "open_timeout", "lease_seconds", "poll_interval"]

# (value, the exception it raises): the wrong types and the values out of range.
BAD_SECONDS = [
    (0, ValueError),
    (-1.0, ValueError),
    (float("inf"), ValueError),
    (float("nan"), ValueError),
    ("1.0", TypeError),
    (None, TypeError),
    (True, TypeError),
]


@pytest.mark.parametrize("settings_class", [TierSettings, RemoteSettings])
@pytest.mark.parametrize("name", TIMES)
@pytest.mark.parametrize(("value", "error"), BAD_SECONDS)
def test_every_time_of_tier_settings_must_be_a_finite_number_of_seconds_over_0(
    settings_class, name, value, error
):
    with pytest.raises(error, match=rf"{settings_class.__name__}\.{name} must be a finite number"):
        settings_class(**{name: value})


@pytest.mark.parametrize("name", TIMES)
@pytest.mark.parametrize("value", [2, 0.25, Fraction(1, 2)])
def test_a_time_may_be_any_real_number_of_seconds_and_is_kept_as_a_float(name, value):
    kept = getattr(TierSettings(**{name: value}), name)
    assert (kept, type(kept)) == (float(value), float)


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-5, ValueError), (1.5, TypeError), (2.0**20, TypeError), (True, TypeError)],
)
def test_max_value_bytes_must_be_a_whole_number_of_bytes_of_at_least_1(value, error):
    with pytest.raises(error, match=r"max_value_bytes must be a whole number of bytes >= 1"):
        TierSettings(max_value_bytes=value)


@pytest.mark.parametrize("value", [None, 5.0, {"initial": 1.0}])
def test_backoff_must_be_a_backoff(value):
    with pytest.raises(TypeError, match=r"TierSettings\.backoff must be a cached_tts\.Backoff"):
        TierSettings(backoff=value)


@pytest.mark.parametrize("name", ["initial", "maximum"])
@pytest.mark.parametrize(("value", "error"), BAD_SECONDS)
def test_the_times_of_a_backoff_must_be_finite_numbers_of_seconds_over_0(name, value, error):
    with pytest.raises(error, match=rf"Backoff\.{name} must be a finite number of seconds > 0"):
        Backoff(**{name: value})


def test_a_backoff_never_grows_shorter_than_it_starts():
    with pytest.raises(ValueError, match=r"Backoff\.maximum \(10\.0\) must be >= initial"):
        Backoff(initial=30.0, maximum=10.0)
    assert Backoff(initial=60.0).maximum == 60.0  # the default maximum


@pytest.mark.parametrize(
    ("value", "error"), [(0, ValueError), (-1, ValueError), (1.0, TypeError), ("3", TypeError)]
)
def test_backoff_failures_must_be_a_whole_number_of_at_least_1(value, error):
    with pytest.raises(error, match=r"Backoff\.failures must be a whole number >= 1"):
        Backoff(failures=value)


# -- RemoteSettings: the ttl Redis takes, and the key prefix --------------------


@pytest.mark.parametrize(
    ("value", "error"),
    [
        # A float made every write raise (redis-py refuses it), so the tier backed off forever.
        (86400.0, TypeError),
        (0.5, TypeError),
        # 0 made every read's EXPIRE delete the key it had just found.
        (0, ValueError),
        (-1, ValueError),
        (timedelta(0), ValueError),
        (timedelta(milliseconds=500), ValueError),
        (timedelta(seconds=1, milliseconds=500), ValueError),
        (timedelta(seconds=-5), ValueError),
        ("86400", TypeError),
        (True, TypeError),
    ],
)
def test_a_ttl_that_redis_would_refuse_or_that_deletes_keys_is_refused_when_built(value, error):
    with pytest.raises(error, match=r"RemoteSettings\.ttl must be a whole number of seconds >= 1"):
        RemoteSettings(ttl=value)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        (1, 1),
        (86400, 86400),
        (timedelta(days=7), 604800),
        (timedelta(hours=1.5), 5400),
    ],
)
def test_a_ttl_is_whole_seconds_or_a_timedelta_kept_as_its_seconds(value, seconds):
    settings = RemoteSettings(ttl=value)
    assert (settings.ttl, settings.ttl_seconds) == (seconds, seconds)
    # Checked once: replacing another field keeps the ttl as it is.
    assert dataclasses.replace(settings, read_timeout=2.0).ttl == seconds


@pytest.mark.parametrize("value", [None, b"cached-tts:", 7])
def test_the_key_prefix_must_be_a_string(value):
    with pytest.raises(TypeError, match=r"RemoteSettings\.prefix must be a string"):
        RemoteSettings(prefix=value)


def test_an_entry_stored_with_a_timedelta_ttl_lands_and_expires_in_redis(tmp_path, redis_url):
    settings = RemoteSettings(ttl=timedelta(minutes=5))
    cache = ConditionalCache(tmp_path / "a", remote=redis_url, remote_settings=settings)
    cache.get_or_prepare(KEY, lambda: voice_entry(1.0))
    client = redis.Redis.from_url(redis_url)
    assert 0 < client.ttl(f"cached-tts:entry:{KEY.digest}") <= 300
    assert cache.stats().remote_errors == 0
