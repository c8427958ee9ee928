"""A bad $CACHED_TTS_REMOTE warns once and the cache runs without that tier; remote= raises."""

from __future__ import annotations

import logging
import sys

import pytest
from strategies import voice_entry

from cached_tts import ConditionalCache, EntryKey
from cached_tts._tiers import shared as _shared_tiers

KEY = EntryKey(content="c" * 64, weights="w", settings=(("device", "cpu"),))


@pytest.fixture(autouse=True)
def _nothing_warned_yet(monkeypatch):
    monkeypatch.setattr(_shared_tiers, "_warned", set(), raising=False)


def warnings_about(caplog, variable="CACHED_TTS_REMOTE"):
    return [r for r in caplog.records if r.levelno == logging.WARNING and variable in r.message]


@pytest.mark.parametrize(
    ("value", "cause"),
    [
        ("redis//typo", "neither a Redis URL"),  # the scheme's colon forgotten
        ("redis://cache:port/0", "Port"),  # redis-py cannot parse it
        ("s3:/voices/prod", "neither a Redis URL"),
    ],
)
def test_a_typo_in_the_environment_is_skipped_with_one_warning_and_lookups_work(
    tmp_path, monkeypatch, caplog, value, cause
):
    monkeypatch.setenv("CACHED_TTS_REMOTE", f"{value}, memory://voices/env-ok")
    caplog.set_level(logging.WARNING, logger="cached_tts")

    caches = [ConditionalCache(tmp_path / name) for name in ("a", "b")]
    entries = [cache.get_or_prepare(KEY, lambda: voice_entry(1.0)) for cache in caches]

    (warning,) = warnings_about(caplog)  # one per process, however many caches
    assert value in warning.message
    assert cause in warning.message
    assert "memory and disk still work" in warning.message
    assert "\n" not in warning.message
    # The tier that could open is used; memory and disk serve.
    assert [t.name for t in caches[0].stats().remote_tiers] == ["memory://voices/env-ok"]
    assert caches[1].stats().remote_hits == 1
    assert all(e is not None for e in entries)
    assert caches[0].stats().disk_entries == 1


def test_a_missing_extra_is_skipped_with_a_warning_that_says_what_to_install(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setitem(sys.modules, "redis", None)  # redis-py not installed
    monkeypatch.setenv("CACHED_TTS_REMOTE", "redis://127.0.0.1:6379/0")
    caplog.set_level(logging.WARNING, logger="cached_tts")

    cache = ConditionalCache(tmp_path / "a")
    cache.get_or_prepare(KEY, lambda: voice_entry(1.0))

    (warning,) = warnings_about(caplog)
    assert "pip install 'cached-tts[redis]'" in warning.message
    assert cache.stats().remote_tiers == ()
    assert cache.stats().misses == 1


def test_a_password_in_a_bad_url_is_not_logged(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setenv("CACHED_TTS_REMOTE", "rediss://tts:s3cret@cache:6380/0")
    caplog.set_level(logging.WARNING, logger="cached_tts")

    ConditionalCache(tmp_path / "a")

    (warning,) = warnings_about(caplog)
    assert "s3cret" not in warning.message
    assert "rediss://tts:***@cache:6380/0" in warning.message


def test_a_remote_given_in_code_still_raises_when_it_cannot_be_opened(tmp_path, monkeypatch):
    monkeypatch.delenv("CACHED_TTS_REMOTE", raising=False)
    with pytest.raises(ValueError, match="neither a Redis URL"):
        ConditionalCache(tmp_path / "a", remote="redis//typo")
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"pip install 'cached-tts\[redis\]'"):
        ConditionalCache(tmp_path / "a", remote="redis://127.0.0.1:6379/0")
