"""A fleet of machines (separate cache folders) sharing one bucket on a real S3 API (moto)."""

from __future__ import annotations

import pytest
from chatterbox.tts import ChatterboxTTS
from race_worker import conditionals_digest
from racing import race

from cached_tts import CachedChatterboxTTS, ConditionalCache
from cached_tts._entries.format import check
from cached_tts._tiers.base import TierSettings
from cached_tts._tiers.objectstore.opening import open_object_store
from cached_tts.testing import assert_same_conditionals, random_model

pytestmark = pytest.mark.slow


def test_a_new_machine_with_an_empty_folder_is_served_bitwise_from_the_bucket(
    tmp_path, components, clips, reference, s3_url
):
    first, second = (
        random_model(
            CachedChatterboxTTS,
            components=components,
            cache=ConditionalCache(tmp_path / name, remote=s3_url),
        )
        for name in ("first", "second")
    )
    first.prepare_conditionals(clips["alice"], exaggeration=0.5)
    second.prepare_conditionals(clips["alice"], exaggeration=0.7)

    assert (first.cache.stats().misses, second.cache.stats().misses) == (1, 0)
    assert second.cache.stats().remote_hits == 1
    assert [t.hits for t in second.cache.stats().remote_tiers] == [1]
    assert_same_conditionals(second.conds, reference(clips["alice"], 0.7))
    assert isinstance(second, ChatterboxTTS)


def test_three_machines_racing_on_one_bucket_each_prepare_at_most_once(
    warm, tmp_path, clips, reference, s3_url
):
    """Without a lease, racing workers may each prepare; every result is still exact.

    What holds whatever the timing: each worker does one lookup (a hit or one
    preparation), every one holds the plain model's voice bitwise, and the
    bucket holds one verified object for the voice. (moto's conditional create
    is check-then-put, so how many workers prepared is the timing's business;
    real S3 keeps the first object written.)
    """
    argvs = [[str(tmp_path / f"machine-{n}"), clips["bob"], s3_url] for n in range(3)]
    results = race(warm, tmp_path, argvs)

    assert all(r["misses"] + r["remote_hits"] == 1 for r in results)
    assert all(r["disk_hits"] == 0 for r in results)
    assert sum(r["misses"] for r in results) >= 1
    expected = conditionals_digest(reference(clips["bob"], 0.5))
    assert [r["digest"] for r in results] == [expected] * 3

    bucket = open_object_store(s3_url, TierSettings(connect_timeout=5.0, read_timeout=30.0))
    stored = list(bucket.scan())
    assert len(stored) == 1
    info, damage = check(bucket.read(stored[0].digest), stored[0].digest)
    assert damage is None
    assert info is not None
    assert info.source.endswith("bob.wav")
