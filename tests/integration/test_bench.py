"""benchmarks/bench.py, the side-by-side benchmark, run from the checkout as `make bench` does."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# The benchmark is a tool for working on cached-tts, not a promise to users: CI keeps it
# running (.ci/run), make test leaves it out.
pytestmark = [pytest.mark.slow, pytest.mark.ci_only]

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"
BENCH = BENCHMARKS / "bench.py"
HIT_PARTS = BENCHMARKS / "hit_parts.py"

CASES = {
    "first_call_plain",
    "plain_prepare",
    "miss",
    "memory_hit",
    "disk_hit_hash_remembered",
    "disk_hit_hash_computed",
    "upstream_conditionals_load",
    "first_hit_new_wrapper",
}


@pytest.fixture
def harness(monkeypatch, components):
    """benchmarks/ on sys.path, as `python benchmarks/bench.py` has it; fewer repeats.

    The run builds no models of its own: the session's (a 1-layer T3; a preparation
    never runs T3) stand in for the full architecture, so a run costs its preparations.
    """
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from harness import cases

    for name, count in (
        ("MEMORY_HIT_REPEATS", 3),
        ("DISK_HIT_REPEATS", 3),
        ("IDLE_REPEATS", 2),
        ("NEW_WRAPPER_REPEATS", 2),
    ):
        monkeypatch.setattr(cases, name, count)
    for name, module in (
        ("T3", components.t3),
        ("S3Gen", components.s3gen),
        ("VoiceEncoder", components.ve),
    ):
        monkeypatch.setattr(cases, name, lambda module=module: module)
    return cases


def test_bench_measures_every_case_and_prints_json(harness, tmp_path, capsys):
    bench = importlib.import_module("bench")  # benchmarks/bench.py
    out = tmp_path / "figures.json"

    code = bench.main(["--json", "--repeat-miss", "1", "--out", str(out)])

    assert code == 0
    figures = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text())["results"].keys() == figures["results"].keys()
    assert figures["results"].keys() >= CASES
    for case in CASES:
        timing = figures["results"][case]
        assert timing["n"] >= 1
        assert 0 < timing["min_s"] <= timing["median_s"]
    assert figures["results"]["memory_hit"]["n"] == harness.MEMORY_HIT_REPEATS
    # A hit never prepares: it is far below a miss whatever the machine's load.
    assert figures["results"]["memory_hit"]["median_s"] < figures["results"]["miss"]["median_s"]
    assert figures["sizes_bytes"]["entry_file_bytes"] > 100_000  # a 10 s clip's entry


def test_bench_refuses_a_repeat_count_below_one():
    result = subprocess.run(
        [sys.executable, str(BENCH), "--repeat-miss", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 2
    assert "--repeat-miss must be at least 1" in result.stderr


def test_bench_times_hits_of_a_checkpoint_loaded_model(harness, tmp_path):
    from harness import checkpoint, timing

    from cached_tts.testing import write_voice_clip

    clip = write_voice_clip(tmp_path / "voice.wav", seconds=harness.CLIP_SECONDS, seed=harness.SEED)
    bench = timing.Bench(torch.device("cpu"), tmp_path, clip, None, None, None, None)

    checkpoint.bench_checkpoint_loaded(bench)

    for case in (
        "memory_hit_checkpoint_loaded",
        "disk_hit_hash_remembered_checkpoint_loaded",
        "disk_hit_hash_computed_checkpoint_loaded",
    ):
        assert len(bench.results[case].seconds) == 3
    assert not (tmp_path / "checkpoint-english").exists()


def test_the_hit_breakdown_times_every_part_of_a_memory_hit(tmp_path):
    out = tmp_path / "hit_parts.json"
    result = subprocess.run(
        [sys.executable, str(HIT_PARTS), "--repeat", "3", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    timings = json.loads(out.read_text())["us"]
    assert len(timings) == 7
    assert all(value > 0 for value in timings.values())
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(timings) + 1  # the header, each part, what the parts leave
