"""A real ``from_local`` model keeps the fingerprint of the weights it loaded."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import save_file

from cached_tts import CachedChatterboxVC, ConditionalCache
from cached_tts._keys.fingerprint import checkpoint_fingerprint, loader_weight_files
from cached_tts._keys.hashing import FileHasher

pytestmark = pytest.mark.slow


def write_s3gen(folder, value):
    # VC loads s3gen.safetensors with strict=False: a small file is a checkpoint
    # it accepts, and S3Gen keeps its random weights (no 1 GB file per test).
    save_file({"checkpoint.marker": torch.full((4,), float(value))}, folder / "s3gen.safetensors")


def test_a_checkpoint_model_serves_its_own_voices_whatever_the_folder_does(
    tmp_path, clips, monkeypatch
):
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    write_s3gen(folder, 1)
    cache = ConditionalCache(tmp_path / "cache")
    model = CachedChatterboxVC.from_local(folder, "cpu", cache=cache)
    loaded = checkpoint_fingerprint(folder, FileHasher())
    assert cache.model_fingerprint(model) == loaded

    model.set_target_voice(clips["alice"])  # the miss

    # New weights are copied in while this process still runs the old ones.
    write_s3gen(folder, 2)
    assert checkpoint_fingerprint(folder, FileHasher()) != loaded
    model.set_target_voice(clips["alice"])

    # The folder becomes unreadable, then goes away: plain chatterbox runs on.
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        if os.fspath(path).startswith(str(folder)):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    model.set_target_voice(clips["alice"])
    monkeypatch.undo()
    shutil.rmtree(folder)
    model.set_target_voice(clips["alice"])

    stats = cache.stats()
    assert (stats.misses, stats.memory_hits) == (1, 3)
    stored = cache._store.scan()
    assert [entry.info.key.weights for entry in stored] == [loaded]


SECOND_PROCESS = """
import json, sys
from cached_tts import CachedChatterboxVC, ConditionalCache
folder, cache_dir, clip = sys.argv[1:]
cache = ConditionalCache(cache_dir)
model = CachedChatterboxVC.from_local(folder, "cpu", cache=cache)
model.set_target_voice(clip)
stats = cache.stats()
print(json.dumps({"misses": stats.misses, "disk_hits": stats.disk_hits,
                  "weights": cache.model_fingerprint(model)}))
"""


def test_another_models_files_landing_in_the_folder_keep_its_voices(warm, tmp_path, clips):
    # One hub snapshot holds the English and the multilingual checkpoints; VC
    # reads s3gen.safetensors alone.
    folder = tmp_path / "snapshot"
    folder.mkdir()
    write_s3gen(folder, 1)
    cache = ConditionalCache(tmp_path / "cache")
    model = CachedChatterboxVC.from_local(folder, "cpu", cache=cache)
    model.set_target_voice(clips["alice"])
    assert cache.stats().misses == 1
    assert loader_weight_files(CachedChatterboxVC.from_local) == ("s3gen.safetensors",)

    for name in ("ve.safetensors", "ve.pt", "s3gen.pt", "t3_mtl23ls_v2.safetensors"):
        (folder / name).write_bytes(b"the other model's weights " + name.encode())

    # A new process (forked from the warm server, warm.py) that never met the folder.
    result = warm.run(SECOND_PROCESS, str(folder), str(cache.directory), clips["alice"])
    assert result.returncode == 0, result.stderr
    second = json.loads(result.stdout.strip().splitlines()[-1])
    assert (second["misses"], second["disk_hits"]) == (0, 1)
    assert second["weights"] == cache.model_fingerprint(model)
