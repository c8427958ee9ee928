"""The memory tier: an LRU bounded in bytes."""

from __future__ import annotations

import threading

import torch

from cached_tts._entries.entry import Entry
from cached_tts._tiers.memory import MemoryTier


def entry_of(nbytes, value=0.0):
    return Entry({"ref.embedding": torch.full((nbytes // 4,), value)})


def test_a_kept_entry_is_returned_as_the_same_object():
    tier = MemoryTier(max_bytes=1024)
    entry = entry_of(100)
    assert tier.put("a", entry)
    assert tier.get("a") is entry
    assert tier.get("b") is None


def test_bytes_are_the_sum_of_tensor_sizes():
    tier = MemoryTier(max_bytes=1024)
    tier.put("a", entry_of(100))
    tier.put("b", Entry({"t3.x": torch.zeros(3, dtype=torch.int64)}, absent=("t3.y",)))
    assert tier.nbytes == 100 + 24
    assert len(tier) == 2


def test_an_entry_larger_than_the_budget_is_refused_and_evicts_nothing():
    tier = MemoryTier(max_bytes=256)
    tier.put("small", entry_of(200))
    assert not tier.put("big", entry_of(400))
    assert tier.get("big") is None
    assert tier.get("small") is not None
    assert tier.nbytes == 200


def test_a_zero_budget_keeps_nothing_but_empty_entries():
    tier = MemoryTier(max_bytes=0)
    assert not tier.put("a", entry_of(4))
    assert tier.put("empty", Entry({}, absent=("ref.x",)))
    assert len(tier) == 1


def test_the_least_recently_used_entry_is_evicted_first():
    tier = MemoryTier(max_bytes=300)
    tier.put("a", entry_of(100))
    tier.put("b", entry_of(100))
    tier.put("c", entry_of(100))
    assert tier.get("a") is not None  # now b is the least recently used

    tier.put("d", entry_of(100))

    assert tier.get("b") is None
    assert all(tier.get(k) is not None for k in "acd")
    assert tier.nbytes == 300


def test_a_big_entry_evicts_as_many_as_it_needs():
    tier = MemoryTier(max_bytes=400)
    for key in "abcd":
        tier.put(key, entry_of(100))
    tier.put("big", entry_of(300))
    assert [k for k in "abcd" if tier.get(k) is not None] == ["d"]
    assert tier.nbytes == 400


def test_replacing_an_entry_counts_its_bytes_once():
    tier = MemoryTier(max_bytes=1024)
    tier.put("a", entry_of(100, 1.0))
    tier.put("a", entry_of(200, 2.0))
    assert tier.nbytes == 200
    assert len(tier) == 1
    assert tier.get("a").tensors["ref.embedding"][0].item() == 2.0


def test_clear_forgets_everything():
    tier = MemoryTier(max_bytes=1024)
    tier.put("a", entry_of(100))
    tier.clear()
    assert tier.get("a") is None
    assert (tier.nbytes, len(tier)) == (0, 0)


def test_concurrent_use_keeps_the_byte_count_exact():
    tier = MemoryTier(max_bytes=40 * 64)
    start = threading.Barrier(8)

    def churn(worker):
        start.wait()
        for i in range(200):
            tier.put(f"{worker}-{i % 50}", entry_of(64))
            tier.get(f"{(worker + 1) % 8}-{i % 50}")

    threads = [threading.Thread(target=churn, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tier.nbytes == 64 * len(tier) <= 40 * 64


def test_an_entry_is_erased_by_its_clip_and_evicted_entries_leave_nothing_behind():
    tier = MemoryTier(max_bytes=3 * 400)
    for n in range(50):  # each 400 bytes: only the last three stay
        tier.put(f"d{n}", entry_of(400, float(n)), content=f"clip{n % 2}")

    assert len(tier) == 3
    assert len(tier._lru) == 3  # nothing per evicted key survives, whatever its clip
    assert sorted(tier.discard_made_from("clip1")) == ["d47", "d49"]
    assert "d48" in tier
    assert tier.discard_made_from("clip1") == []


def test_erasing_by_clip_does_not_mark_the_other_entries_as_used():
    tier = MemoryTier(max_bytes=2 * 400)
    tier.put("old", entry_of(400), content="a")
    tier.put("new", entry_of(400), content="b")
    tier.get("old")  # now "new" is the least recently used
    tier.discard_made_from("nobody")

    tier.put("newest", entry_of(400), content="c")  # evicts the least recently used

    assert "new" not in tier
    assert "old" in tier
