"""What makes two preparations the same: keys, weight hashes, fingerprints."""

from __future__ import annotations

import hashlib
import os
import time
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given
from strategies import entry_keys

from cached_tts import _hashing
from cached_tts._hashing import FileHasher
from cached_tts._keys import (
    CHECKPOINT_ATTR,
    MODEL_ID_ATTR,
    SCHEMA_VERSION,
    EntryKey,
    model_fingerprint,
    preparation_modules,
    weights_digest,
)


class FakeModel:
    """Shaped like a Chatterbox model as far as fingerprints look."""

    def __init__(self, seed: int = 0, *, with_ve: bool = True) -> None:
        torch.manual_seed(seed)
        self.ve = torch.nn.Linear(3, 2) if with_ve else None
        self.s3gen = SimpleNamespace(
            tokenizer=torch.nn.Linear(2, 2),
            speaker_encoder=torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3)),
        )
        self.device = torch.device("cpu")


@pytest.fixture
def clock_ahead(monkeypatch):
    """Hash as if 10 s from now, so that files just written are not racy."""
    real_time_ns = time.time_ns
    monkeypatch.setattr(
        _hashing, "time", SimpleNamespace(time_ns=lambda: real_time_ns() + 10_000_000_000)
    )


@pytest.fixture
def checkpoint(tmp_path):
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    (folder / "ve.safetensors").write_bytes(b"voice encoder weights")
    (folder / "s3gen.safetensors").write_bytes(b"s3gen weights")
    (folder / "t3_cfg.safetensors").write_bytes(b"not read when preparing a voice")
    return folder


# -- EntryKey --------------------------------------------------------------


@given(entry_keys())
def test_a_key_survives_its_canonical_form(key):
    again = EntryKey.from_canonical(key.canonical)
    assert again == key
    assert again.digest == key.digest
    assert again.canonical == key.canonical


@given(entry_keys())
def test_a_digest_is_the_sha256_of_the_canonical_form(key):
    assert key.digest == hashlib.sha256(key.canonical.encode()).hexdigest()


@given(entry_keys(), entry_keys())
def test_different_keys_have_different_digests(a, b):
    assert (a == b) == (a.digest == b.digest)


def test_the_digest_of_a_key_is_stable_across_releases():
    # Entries on disk are found by this digest: changing how it is computed
    # silently orphans every cache folder, so it is pinned here.
    key = EntryKey(content="ab" * 32, weights="w", settings=(("device", "cpu"),))
    assert key.schema == SCHEMA_VERSION == 1
    assert key.canonical == (
        '{"content":"' + "ab" * 32 + '","schema":1,"settings":{"device":"cpu"},"weights":"w"}'
    )
    assert key.digest == "247af869126e968d3507ab9cdd77fb297b5955ad2bb184077862068d26f0d883"


@pytest.mark.parametrize(
    "change",
    [
        {"content": "cd" * 32},
        {"weights": "other weights"},
        {"settings": (("device", "cuda"),)},
        {"settings": (("device", "cpu"), ("arg:norm_loudness", "False"))},
        {"settings": ()},
        {"schema": SCHEMA_VERSION + 1},
    ],
    ids=lambda change: next(iter(change)),
)
def test_changing_any_part_of_a_key_changes_its_digest(change):
    base = {"content": "ab" * 32, "weights": "w", "settings": (("device", "cpu"),)}
    assert EntryKey(**{**base, **change}).digest != EntryKey(**base).digest


def test_a_quote_in_one_part_cannot_forge_another_part():
    plain = EntryKey(content="a", weights="b", settings=())
    forged = EntryKey(content='a","weights":"b', weights="", settings=())
    assert forged.digest != plain.digest


# -- weights_digest --------------------------------------------------------


def test_equal_weights_in_different_modules_have_equal_digests():
    assert weights_digest(preparation_modules(FakeModel(seed=1))) == weights_digest(
        preparation_modules(FakeModel(seed=1))
    )
    assert weights_digest(preparation_modules(FakeModel(seed=1))) != weights_digest(
        preparation_modules(FakeModel(seed=2))
    )


def test_changing_any_single_weight_or_buffer_changes_the_weights_digest():
    model = FakeModel()
    modules = preparation_modules(model)
    before = weights_digest(modules)
    changed = 0
    for _, module in modules:
        for tensor in module.state_dict().values():  # parameters and buffers, shared
            flat = tensor.view(-1)
            for i in range(flat.numel()):
                old = flat[i].clone()
                flat[i] += 1
                assert weights_digest(modules) != before
                flat[i] = old
                changed += 1
    assert weights_digest(modules) == before
    assert changed > 20  # every weight, the BatchNorm statistics included


def test_the_weights_digest_depends_on_dtype_and_module_names():
    layer = torch.nn.Linear(2, 2)
    digest = weights_digest([("ve", layer)])
    assert weights_digest([("s3gen.tokenizer", layer)]) != digest
    assert weights_digest([("ve", layer.double())]) != digest


# -- model_fingerprint -----------------------------------------------------


def test_a_model_id_overrides_every_other_fingerprint(checkpoint):
    model = FakeModel()
    setattr(model, MODEL_ID_ATTR, "my-finetune-v3")
    setattr(model, CHECKPOINT_ATTR, checkpoint)
    hasher = FileHasher()
    assert model_fingerprint(model, hasher) == "id:my-finetune-v3"
    assert hasher.hashes_computed == 0


def test_a_checkpoint_folder_is_fingerprinted_by_its_files_not_the_modules(checkpoint):
    hasher = FileHasher()
    model = FakeModel(seed=1)
    setattr(model, CHECKPOINT_ATTR, checkpoint)
    other = FakeModel(seed=2)
    setattr(other, CHECKPOINT_ATTR, str(checkpoint))
    fingerprint = model_fingerprint(model, hasher)
    assert fingerprint.startswith("ckpt:")
    assert model_fingerprint(other, hasher) == fingerprint


def test_a_checkpoint_fingerprint_reads_only_the_preparation_weight_files(checkpoint):
    model = FakeModel()
    setattr(model, CHECKPOINT_ATTR, checkpoint)
    before = model_fingerprint(model, FileHasher())
    (checkpoint / "t3_cfg.safetensors").write_bytes(b"other text-to-speech weights")
    (checkpoint / "tokenizer.json").write_text("{}")
    assert model_fingerprint(model, FileHasher()) == before


def test_a_checkpoint_without_preparation_files_falls_back_to_the_weights(tmp_path):
    model = FakeModel()
    setattr(model, CHECKPOINT_ATTR, tmp_path)
    expected = "weights:" + weights_digest(preparation_modules(model))
    assert model_fingerprint(model, FileHasher()) == expected


def test_without_id_or_checkpoint_the_weights_themselves_are_fingerprinted():
    hasher = FileHasher()
    one, same, other = FakeModel(seed=1), FakeModel(seed=1), FakeModel(seed=2)
    assert model_fingerprint(one, hasher) == model_fingerprint(same, hasher)
    assert model_fingerprint(one, hasher) != model_fingerprint(other, hasher)
    assert model_fingerprint(one, hasher) == "weights:" + weights_digest(preparation_modules(one))


def test_a_model_without_a_voice_encoder_is_fingerprinted_by_its_s3gen():
    with_ve, without_ve = FakeModel(seed=1), FakeModel(seed=1, with_ve=False)
    assert [name for name, _ in preparation_modules(without_ve)] == [
        "s3gen.tokenizer",
        "s3gen.speaker_encoder",
    ]
    assert model_fingerprint(without_ve, FileHasher()) != model_fingerprint(with_ve, FileHasher())


def test_swapping_a_preparation_module_changes_the_fingerprint():
    model = FakeModel(seed=1)
    before = model_fingerprint(model, FileHasher())
    old_ve = model.ve  # kept alive, so its id cannot be reused
    torch.manual_seed(9)
    model.ve = torch.nn.Linear(3, 2)
    assert model_fingerprint(model, FileHasher()) != before
    assert old_ve is not model.ve


@pytest.mark.usefixtures("clock_ahead")
def test_a_checkpoint_fingerprint_changes_with_a_files_content_and_hashes_once(checkpoint):
    model = FakeModel()
    setattr(model, CHECKPOINT_ATTR, checkpoint)
    hasher = FileHasher()

    first = model_fingerprint(model, hasher)
    assert hasher.hashes_computed == 2  # ve.safetensors and s3gen.safetensors
    assert model_fingerprint(model, hasher) == first
    assert hasher.hashes_computed == 2  # unchanged files cost no rehash

    ve = checkpoint / "ve.safetensors"
    before = ve.stat()
    while ve.stat().st_ctime_ns == before.st_ctime_ns:  # until the kernel clock ticks
        time.sleep(0.005)
        ve.write_bytes(b"fine-tuned encoder!!!")  # same size, same mtime
        os.utime(ve, ns=(before.st_atime_ns, before.st_mtime_ns))
    changed = model_fingerprint(model, hasher)
    assert changed != first
    assert hasher.hashes_computed == 3  # only the changed file
