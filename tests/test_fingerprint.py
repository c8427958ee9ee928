"""A loaded model's fingerprint: taken once from the files its loader read.

The model class here is a test double shaped like a Chatterbox class (its
``from_local`` reads ``ve.safetensors`` and ``s3gen.safetensors`` and builds
modules from their bytes), patched by the same ``install`` as the real ones.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import cached_tts
from cached_tts import ConditionalCache
from cached_tts._keys import fingerprint as _fingerprint
from cached_tts._keys.fingerprint import checkpoint_fingerprint, preparation_modules, weights_digest
from cached_tts._keys.hashing import FileHasher
from cached_tts._wrapping.wrappers import install

# Files the tests write are old enough for their hashes to be kept.
pytestmark = pytest.mark.usefixtures("clock_ahead")


def module_from(path: Path) -> torch.nn.Linear:
    """A small module whose weights are fixed by the file's bytes."""
    seed = int.from_bytes(hashlib.sha256(path.read_bytes()).digest()[:4], "little")
    generator = torch.Generator().manual_seed(seed)
    module = torch.nn.Linear(2, 2)
    with torch.no_grad():
        module.weight.copy_(torch.randn(2, 2, generator=generator))
    return module


class FakeTTS:
    """Shaped like ChatterboxTTS as far as loading and fingerprints look."""

    hub_folder: Path
    # Called between reading ve.safetensors and s3gen.safetensors.
    between_reads: staticmethod = staticmethod(lambda _folder: None)

    def __init__(self, ve: torch.nn.Module, s3gen: SimpleNamespace, device: str) -> None:
        self.ve = ve
        self.s3gen = s3gen
        self.device = torch.device(device)
        self.conds = None

    @classmethod
    def from_local(cls, ckpt_dir: str | os.PathLike[str], device: str) -> FakeTTS:
        folder = Path(ckpt_dir)
        ve = module_from(folder / "ve.safetensors")
        cls.between_reads(folder)
        tokenizer = module_from(folder / "s3gen.safetensors")
        s3gen = SimpleNamespace(
            tokenizer=tokenizer, speaker_encoder=torch.nn.Linear(2, 2), flow=torch.nn.Linear(2, 2)
        )
        return cls(ve, s3gen, device)

    @classmethod
    def from_pretrained(cls, device: str) -> FakeTTS:
        # As upstream does: download, then from_local.
        return cls.from_local(cls.hub_folder, device)

    def prepare_conditionals(self, _wav_fpath: str, _exaggeration: float = 0.5) -> None:
        raise AssertionError("no test here prepares a voice")


@pytest.fixture
def model_class(tmp_path):
    cls = type("FakeTTS", (FakeTTS,), {"hub_folder": tmp_path / "hub"})
    install(cls)
    return cls


def write_checkpoint(folder: Path, version: bytes = b"v1") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ve.safetensors").write_bytes(b"voice encoder " + version)
    (folder / "s3gen.safetensors").write_bytes(b"s3gen " + version)
    (folder / "t3_cfg.safetensors").write_bytes(b"text-to-speech " + version)
    return folder


@pytest.fixture
def checkpoint(tmp_path):
    return write_checkpoint(tmp_path / "checkpoint")


@pytest.fixture
def cache(tmp_path):
    return ConditionalCache(tmp_path / "cache")


def test_from_local_fingerprints_the_weight_files_it_read_once(model_class, checkpoint, cache):
    model = model_class.from_local(checkpoint, "cpu", cache=cache)
    assert cache._hasher.hashes_computed == 2  # ve and s3gen, not t3_cfg
    assert cache.model_fingerprint(model) == checkpoint_fingerprint(checkpoint, FileHasher())
    assert cache._hasher.hashes_computed == 2

    # The hashes are remembered in the cache's folder: the next process hashes nothing.
    again = ConditionalCache(cache.directory)
    other = model_class.from_local(checkpoint, "cpu", cache=again)
    assert again._hasher.hashes_computed == 0
    assert again.model_fingerprint(other) == cache.model_fingerprint(model)


def test_from_pretrained_fingerprints_once_with_the_cache_it_was_given(model_class, cache):
    write_checkpoint(model_class.hub_folder)
    model = model_class.from_pretrained("cpu", cache=cache)
    assert model.cache is cache
    assert cache._hasher.hashes_computed == 2
    assert len(list((cache.directory / "hashes").glob("*.json"))) == 2
    assert cache.model_fingerprint(model) == checkpoint_fingerprint(
        model_class.hub_folder, FileHasher()
    )


def test_a_model_id_given_to_a_loader_skips_hashing(model_class, checkpoint, cache):
    write_checkpoint(model_class.hub_folder)
    model = model_class.from_pretrained("cpu", cache=cache, model_id="narrator-v1")
    assert cache.model_fingerprint(model) == "id:narrator-v1"
    model = model_class.from_local(checkpoint, "cpu", cache=cache, model_id="narrator-v1")
    assert cache._hasher.hashes_computed == 0


def test_files_copied_in_after_loading_do_not_change_the_fingerprint(
    model_class, checkpoint, cache
):
    model = model_class.from_local(checkpoint, "cpu", cache=cache)
    loaded = cache.model_fingerprint(model)

    # A new checkpoint lands in the folder while this process runs the old weights.
    write_checkpoint(checkpoint, b"v2")
    assert checkpoint_fingerprint(checkpoint, FileHasher()) != loaded
    assert cache.model_fingerprint(model) == loaded


def test_a_lookup_never_touches_the_checkpoint_folder(model_class, checkpoint, cache, monkeypatch):
    model = model_class.from_local(checkpoint, "cpu", cache=cache)
    loaded = cache.model_fingerprint(model)

    folder = str(checkpoint)
    touched = []
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        if os.fspath(path).startswith(folder):
            touched.append(path)
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    assert cache.model_fingerprint(model) == loaded  # an unreadable folder
    monkeypatch.undo()
    shutil.rmtree(checkpoint)
    assert cache.model_fingerprint(model) == loaded  # a folder that is gone
    assert touched == []


def test_weights_replaced_while_upstream_reads_them_are_hashed_from_memory(
    model_class, checkpoint, cache
):
    def replace_s3gen(folder):
        (folder / "s3gen.safetensors").write_bytes(b"s3gen v2, other weights")

    model_class.between_reads = staticmethod(replace_s3gen)
    model = model_class.from_local(checkpoint, "cpu", cache=cache)

    # ve came from v1 and s3gen from v2: neither folder's fingerprint is right.
    fingerprint = cache.model_fingerprint(model)
    assert fingerprint == "weights:" + weights_digest(preparation_modules(model))
    assert fingerprint != checkpoint_fingerprint(checkpoint, FileHasher())


def test_a_folder_link_repointed_while_upstream_reads_is_hashed_from_memory(
    model_class, tmp_path, cache
):
    # Deployments switch checkpoints by repointing a "current" link.
    old, new = write_checkpoint(tmp_path / "v1"), write_checkpoint(tmp_path / "v2", b"v2")
    current = tmp_path / "current"
    current.symlink_to(old)

    def repoint(_folder):
        (tmp_path / "next").symlink_to(new)
        (tmp_path / "next").replace(current)

    model_class.between_reads = staticmethod(repoint)
    model = model_class.from_local(current, "cpu", cache=cache)

    # ve came from v1 and s3gen from v2.
    fingerprint = cache.model_fingerprint(model)
    assert fingerprint == "weights:" + weights_digest(preparation_modules(model))
    assert fingerprint not in {
        checkpoint_fingerprint(old, FileHasher()),
        checkpoint_fingerprint(new, FileHasher()),
    }


def test_weights_replaced_while_they_are_hashed_are_hashed_from_memory(
    model_class, checkpoint, cache, monkeypatch
):
    real_hash = FileHasher.hash

    def hash_then_replace(self, path):
        digest = real_hash(self, path)
        (checkpoint / "s3gen.safetensors").write_bytes(b"s3gen v2, other weights")
        return digest

    monkeypatch.setattr(FileHasher, "hash", hash_then_replace)
    model = model_class.from_local(checkpoint, "cpu", cache=cache)
    monkeypatch.undo()
    assert cache.model_fingerprint(model) == "weights:" + weights_digest(preparation_modules(model))


def test_a_module_swapped_after_loading_is_hashed_from_memory(model_class, checkpoint, cache):
    model = model_class.from_local(checkpoint, "cpu", cache=cache)
    loaded = cache.model_fingerprint(model)
    model.ve = torch.nn.Linear(2, 2)
    assert cache.model_fingerprint(model) == "weights:" + weights_digest(preparation_modules(model))
    assert cache.model_fingerprint(model) != loaded


def test_refresh_fingerprint_after_weights_change_in_place(model_class, checkpoint, cache):
    model = model_class.from_local(checkpoint, "cpu", cache=cache, model_id="narrator-v1")
    with torch.no_grad():
        model.ve.weight.add_(1.0)
    # Unseen until refreshed: that is what refresh_fingerprint is for.
    assert cache.model_fingerprint(model) == "id:narrator-v1"

    refreshed = cached_tts.refresh_fingerprint(model)
    assert refreshed == "weights:" + weights_digest(preparation_modules(model))
    assert cache.model_fingerprint(model) == refreshed

    with torch.no_grad():
        model.s3gen.tokenizer.bias.zero_()
    assert cache.model_fingerprint(model) == refreshed  # the memo holds until refreshed
    again = cached_tts.refresh_fingerprint(model)
    assert again != refreshed
    assert cache.model_fingerprint(model) == again

    assert cached_tts.refresh_fingerprint(model, model_id="narrator-v2") == "id:narrator-v2"
    assert cache.model_fingerprint(model) == "id:narrator-v2"
    with pytest.raises(TypeError, match="non-empty string"):
        cached_tts.refresh_fingerprint(model, model_id="")


def test_a_checkpoint_model_is_refreshed_from_its_weights(model_class, checkpoint, cache):
    model = model_class.from_local(checkpoint, "cpu", cache=cache)
    loaded = cache.model_fingerprint(model)
    with torch.no_grad():
        model.ve.weight.mul_(2.0)
    refreshed = cached_tts.refresh_fingerprint(model)
    assert refreshed != loaded
    assert cache.model_fingerprint(model) == refreshed


# -- one lock per model ------------------------------------------------------------


class HandBuilt:
    def __init__(self, seed: int) -> None:
        torch.manual_seed(seed)
        self.ve = torch.nn.Linear(2, 2)
        self.s3gen = SimpleNamespace(
            tokenizer=torch.nn.Linear(2, 2), speaker_encoder=torch.nn.Linear(2, 2)
        )
        self.device = torch.device("cpu")


def in_thread(function, *args):
    result = []
    thread = threading.Thread(target=lambda: result.append(function(*args)), daemon=True)
    thread.start()
    return thread, result


def test_hashing_one_models_weights_holds_up_no_other_model(monkeypatch):
    cache = ConditionalCache(None)
    slow, known, new = HandBuilt(1), HandBuilt(2), HandBuilt(3)
    known_fingerprint = cache.model_fingerprint(known)

    started, release = threading.Event(), threading.Event()
    real_digest = weights_digest
    slow_modules = {id(module) for _, module in preparation_modules(slow)}

    slow_hashes = []

    def digest(modules):
        modules = list(modules)
        if {id(module) for _, module in modules} == slow_modules:
            slow_hashes.append(1)
            started.set()
            release.wait(30)  # parked mid-hash, as a 0.4 s hash of real weights is
        return real_digest(modules)

    monkeypatch.setattr(_fingerprint, "weights_digest", digest)
    slow_thread, slow_result = in_thread(cache.model_fingerprint, slow)
    try:
        assert started.wait(10)
        for model, expected in ((known, known_fingerprint), (new, None)):
            thread, result = in_thread(cache.model_fingerprint, model)
            thread.join(10)
            assert not thread.is_alive(), "another model's fingerprint waited for this hash"
            assert expected is None or result == [expected]
        # The same model, asked meanwhile, waits for that hash rather than hashing again.
        same_thread, same_result = in_thread(cache.model_fingerprint, slow)
    finally:
        release.set()
    slow_thread.join(10)
    same_thread.join(10)
    assert slow_result == same_result == ["weights:" + real_digest(preparation_modules(slow))]
    assert len(slow_hashes) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_child_forked_mid_hash_fingerprints_that_model_itself(monkeypatch):
    # gunicorn --preload forks while a thread may be hashing a model's weights:
    # that thread does not exist in the child, so neither may its lock.
    cache = ConditionalCache(None)
    model = HandBuilt(1)
    parent = os.getpid()
    started, release = threading.Event(), threading.Event()
    real_digest = weights_digest

    def digest(modules):
        if os.getpid() == parent:
            started.set()
            release.wait(30)
        return real_digest(modules)

    monkeypatch.setattr(_fingerprint, "weights_digest", digest)
    thread, _ = in_thread(cache.model_fingerprint, model)
    try:
        assert started.wait(10)
        pid = os.fork()
        if pid == 0:  # the child: report by exit status, never return into pytest
            expected = "weights:" + real_digest(preparation_modules(model))
            os._exit(0 if cache.model_fingerprint(model) == expected else 1)
        deadline = time.monotonic() + 60
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if done[0] == 0:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        assert done[0] == pid, "the child hung on a lock its parent's thread held"
        assert os.waitstatus_to_exitcode(done[1]) == 0
    finally:
        release.set()
        thread.join(10)


def test_a_folder_without_known_weight_files_leaves_the_weights_to_be_hashed(tmp_path):
    # A fork that names its files otherwise: nothing to pin, the weights decide.
    model = HandBuilt(1)
    model.__dict__[_fingerprint.CHECKPOINT_ATTR] = _fingerprint.CheckpointRead(tmp_path, ())
    assert _fingerprint.remember_checkpoint_fingerprint(model, FileHasher()) is None
    assert ConditionalCache(None).model_fingerprint(model) == "weights:" + weights_digest(
        preparation_modules(model)
    )


# -- which files a loader opens ------------------------------------------------------


@pytest.mark.parametrize("kind", ["english", "multilingual", "turbo", "vc"])
def test_each_upstream_loader_hashes_the_weight_files_it_opens_and_no_others(kind):
    from chatterbox.mtl_tts import ChatterboxMultilingualTTS
    from chatterbox.tts import ChatterboxTTS
    from chatterbox.tts_turbo import ChatterboxTurboTTS
    from chatterbox.vc import ChatterboxVC

    from cached_tts._wrapping import models as _models
    from cached_tts.testing import checkpoints as _checkpoint_writer

    classes = {
        "english": (ChatterboxTTS, _models.CachedChatterboxTTS),
        "multilingual": (ChatterboxMultilingualTTS, _models.CachedChatterboxMultilingualTTS),
        "turbo": (ChatterboxTurboTTS, _models.CachedChatterboxTurboTTS),
        "vc": (ChatterboxVC, _models.CachedChatterboxVC),
    }
    # The checkpoint writer's layouts are what upstream's loaders load (tests/integration).
    layout = _checkpoint_writer._LAYOUTS["english" if kind == "vc" else kind]
    expected = (layout.s3gen,) if kind == "vc" else (layout.ve, layout.s3gen)
    for cls in classes[kind]:
        assert _fingerprint.loader_weight_files(cls.from_local) == expected, cls


def test_a_loader_that_no_longer_names_its_listed_files_hashes_every_weight_file():
    def from_local(ckpt_dir: Path, device: str) -> None:
        """An upstream release whose English loader reads other files."""
        _ = (ckpt_dir / "ve.pt", device)

    from_local.__module__ = "chatterbox.tts"
    from_local.__qualname__ = "ChatterboxTTS.from_local"
    assert _fingerprint.loader_weight_files(from_local) == _fingerprint.PREPARATION_WEIGHT_FILES


def test_files_of_another_model_in_the_folder_leave_a_loaders_fingerprint_alone(tmp_path):
    folder = write_checkpoint(tmp_path / "snapshot")
    english = _fingerprint.LOADER_WEIGHT_FILES["chatterbox.tts.ChatterboxTTS.from_local"]
    before = checkpoint_fingerprint(folder, FileHasher(), english)
    # The English-only fingerprint is what earlier releases computed for this folder.
    assert before == checkpoint_fingerprint(folder, FileHasher())
    (folder / "ve.pt").write_bytes(b"multilingual voice encoder")
    (folder / "s3gen.pt").write_bytes(b"multilingual s3gen")
    assert checkpoint_fingerprint(folder, FileHasher(), english) == before
    assert checkpoint_fingerprint(folder, FileHasher()) != before
