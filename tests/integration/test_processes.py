"""Several processes sharing one cache folder."""

from __future__ import annotations

import pytest
from race_worker import conditionals_digest
from racing import race

pytestmark = pytest.mark.slow


def test_three_processes_racing_on_one_folder_prepare_once_and_agree(
    warm, tmp_path, clips, reference
):
    folder = str(tmp_path / "cache")
    results = race(warm, tmp_path, [[folder, clips["alice"]]] * 3)

    assert sum(r["misses"] for r in results) == 1
    assert sum(r["disk_hits"] for r in results) == 2
    expected = conditionals_digest(reference(clips["alice"], 0.5))
    assert [r["digest"] for r in results] == [expected] * 3
