"""A fleet of machines (separate cache folders) sharing one real Redis server."""

from __future__ import annotations

import pytest
from chatterbox.tts import ChatterboxTTS
from race_worker import conditionals_digest
from racing import race

from cached_tts import CachedChatterboxTTS, ConditionalCache
from cached_tts.testing import assert_same_conditionals, random_model

pytestmark = pytest.mark.slow


def test_a_voice_prepared_on_one_machine_is_served_bitwise_to_another(
    tmp_path, components, clips, reference, redis_url
):
    first, second = (
        random_model(
            CachedChatterboxTTS,
            components=components,
            cache=ConditionalCache(tmp_path / name, remote=redis_url),
        )
        for name in ("first", "second")
    )
    first.prepare_conditionals(clips["alice"], exaggeration=0.5)
    second.prepare_conditionals(clips["alice"], exaggeration=0.7)

    assert (first.cache.stats().misses, second.cache.stats().misses) == (1, 0)
    assert second.cache.stats().remote_hits == 1
    assert_same_conditionals(second.conds, reference(clips["alice"], 0.7))
    assert isinstance(second, ChatterboxTTS)


def test_three_machines_racing_on_one_redis_prepare_once_in_total(
    warm, tmp_path, clips, reference, redis_url
):
    argvs = [[str(tmp_path / f"machine-{n}"), clips["bob"], redis_url] for n in range(3)]
    results = race(warm, tmp_path, argvs)

    assert sum(r["misses"] for r in results) == 1
    assert sum(r["remote_hits"] for r in results) == 2
    assert sum(r["disk_hits"] for r in results) == 0
    expected = conditionals_digest(reference(clips["bob"], 0.5))
    assert [r["digest"] for r in results] == [expected] * 3
