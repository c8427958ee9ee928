"""What makes two preparations the same: keys, weight hashes, fingerprints."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given
from strategies import entry_keys

from cached_tts._keys.fingerprint import (
    MODEL_ID_ATTR,
    checkpoint_fingerprint,
    model_fingerprint,
    preparation_modules,
    weights_digest,
)
from cached_tts._keys.hashing import FileHasher
from cached_tts._keys.key import (
    _IDENTITY_PARTS,
    SCHEMA_VERSION,
    EntryKey,
    preparation_settings,
    settings_state,
)
from cached_tts._keys.versions import chatterbox_version


class FakeModel:
    """Shaped like a Chatterbox model as far as fingerprints look."""

    def __init__(self, seed: int = 0, *, with_ve: bool = True) -> None:
        torch.manual_seed(seed)
        self.ve = torch.nn.Linear(3, 2) if with_ve else None
        self.s3gen = SimpleNamespace(
            tokenizer=torch.nn.Linear(2, 2),
            speaker_encoder=torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3)),
            flow=torch.nn.Linear(2, 2),
        )
        self.device = torch.device("cpu")


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
    assert key.schema == SCHEMA_VERSION == 3
    assert key.canonical == (
        '{"content":"' + "ab" * 32 + '","schema":3,"settings":{"device":"cpu"},"weights":"w"}'
    )
    assert key.digest == "4a09c4704ef5a41392c21377024c5c8411ef8353243790890f07c8cbf528e007"


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


# -- checkpoint_fingerprint ------------------------------------------------


def test_a_checkpoint_folder_is_fingerprinted_by_its_files(checkpoint):
    fingerprint = checkpoint_fingerprint(checkpoint, FileHasher())
    assert fingerprint.startswith("ckpt:")
    lines = "".join(
        f"{name}:{hashlib.sha256((checkpoint / name).read_bytes()).hexdigest()}\n"
        for name in ("ve.safetensors", "s3gen.safetensors")
    )
    # The text earlier releases hashed: the fingerprint is stable (entries move with the schema).
    assert fingerprint == "ckpt:" + hashlib.sha256(lines.encode()).hexdigest()
    assert checkpoint_fingerprint(str(checkpoint), FileHasher()) == fingerprint


def test_a_checkpoint_fingerprint_reads_only_the_preparation_weight_files(checkpoint):
    before = checkpoint_fingerprint(checkpoint, FileHasher())
    (checkpoint / "t3_cfg.safetensors").write_bytes(b"other text-to-speech weights")
    (checkpoint / "tokenizer.json").write_text("{}")
    assert checkpoint_fingerprint(checkpoint, FileHasher()) == before


def test_a_folder_without_preparation_weights_has_no_checkpoint_fingerprint(tmp_path):
    (tmp_path / "t3_cfg.safetensors").write_bytes(b"text-to-speech weights only")
    with pytest.raises(FileNotFoundError, match=r"ve\.safetensors"):
        checkpoint_fingerprint(tmp_path, FileHasher())


@pytest.mark.usefixtures("clock_ahead")
def test_a_checkpoint_fingerprint_changes_with_a_files_content_and_hashes_once(checkpoint):
    hasher = FileHasher()

    first = checkpoint_fingerprint(checkpoint, hasher)
    assert hasher.hashes_computed == 2  # ve.safetensors and s3gen.safetensors
    assert checkpoint_fingerprint(checkpoint, hasher) == first
    assert hasher.hashes_computed == 2  # unchanged files cost no rehash

    ve = checkpoint / "ve.safetensors"
    before = ve.stat()
    while ve.stat().st_ctime_ns == before.st_ctime_ns:  # until the kernel clock ticks
        time.sleep(0.005)
        ve.write_bytes(b"fine-tuned encoder!!!")  # same size, same mtime
        os.utime(ve, ns=(before.st_atime_ns, before.st_mtime_ns))
    changed = checkpoint_fingerprint(checkpoint, hasher)
    assert changed != first
    assert hasher.hashes_computed == 3  # only the changed file


# -- model_fingerprint -----------------------------------------------------


def test_a_model_id_overrides_every_other_fingerprint():
    model = FakeModel()
    setattr(model, MODEL_ID_ATTR, "my-finetune-v3")
    assert model_fingerprint(model) == "id:my-finetune-v3"


def test_without_id_or_checkpoint_the_weights_themselves_are_fingerprinted():
    one, same, other = FakeModel(seed=1), FakeModel(seed=1), FakeModel(seed=2)
    assert model_fingerprint(one) == model_fingerprint(same)
    assert model_fingerprint(one) != model_fingerprint(other)
    assert model_fingerprint(one) == "weights:" + weights_digest(preparation_modules(one))


def test_a_model_without_a_voice_encoder_is_fingerprinted_by_its_s3gen():
    with_ve, without_ve = FakeModel(seed=1), FakeModel(seed=1, with_ve=False)
    assert [name for name, _ in preparation_modules(without_ve)] == [
        "s3gen.tokenizer",
        "s3gen.speaker_encoder",
    ]
    assert model_fingerprint(without_ve) != model_fingerprint(with_ve)


def test_swapping_a_preparation_module_changes_the_fingerprint():
    model = FakeModel(seed=1)
    before = model_fingerprint(model)
    old_ve = model.ve  # kept alive, so its id cannot be reused
    torch.manual_seed(9)
    model.ve = torch.nn.Linear(3, 2)
    assert model_fingerprint(model) != before
    assert old_ve is not model.ve


# -- preparation_settings ----------------------------------------------------


def test_the_settings_name_the_dtype_of_s3gens_flow():
    # S3Gen.dtype is its flow's dtype; embed_ref casts the clip and the mels to it.
    model = FakeModel()
    before = dict(preparation_settings(model, "prepare", {}))
    assert "s3gen.flow=torch.float32" in before["dtype"]
    model.s3gen.flow.half()
    after = dict(preparation_settings(model, "prepare", {}))
    assert "s3gen.flow=torch.float16" in after["dtype"]
    assert after["dtype"] != before["dtype"]


def test_converting_t3_changes_the_key_and_the_state_the_remembered_calls_compare():
    # Forks build emotion_adv (or their whole T3Cond) in T3's dtype: an entry
    # made while T3 was float32 must not be served once it is bfloat16.
    model = FakeModel()
    model.t3 = torch.nn.Linear(2, 2)  # type: ignore[attr-defined]
    model.t3.hp = SimpleNamespace(speech_cond_prompt_len=150)  # type: ignore[attr-defined]
    state = settings_state(model)
    before = dict(preparation_settings(model, "prepare", {}, state))
    assert before["dtype"].endswith(",t3=torch.float32")
    model.t3.to(torch.bfloat16)  # type: ignore[attr-defined]
    assert settings_state(model) != state
    after = dict(preparation_settings(model, "prepare", {}))
    assert after["dtype"].endswith(",t3=torch.bfloat16")


# Another value for each value of a settings state, in the state's order.
OTHER_VALUES = (
    ("ve", "s3gen.tokenizer", "s3gen.speaker_encoder", "s3gen.other"),
    (torch.float64,) * 4,
    "another structure",
    150,
    300,
    375,
    "cuda:0",
    ((("cpu", torch.bfloat16),), "high", True, False, False, False, torch.float64),
)


def test_every_value_of_the_settings_state_reaches_the_key():
    # The remembered-call fast path compares whole states and the key is
    # rendered from one: a value in the state that the key left out would let
    # the two paths disagree.
    model = FakeModel()
    state = settings_state(model)
    settings = preparation_settings(model, "prepare", {}, state)
    assert preparation_settings(model, "prepare", {}) == settings
    assert len(state) - _IDENTITY_PARTS == len(OTHER_VALUES), "a new value needs an entry here"
    for index, other in enumerate(OTHER_VALUES, start=_IDENTITY_PARTS):
        changed = (*state[:index], other, *state[index + 1 :])
        assert preparation_settings(model, "prepare", {}, changed) != settings, index


def test_a_state_value_the_key_does_not_render_fails_every_lookup():
    model = FakeModel()
    state = settings_state(model)
    with pytest.raises(ValueError, match="too many values"):
        preparation_settings(model, "prepare", {}, (*state, "a value nobody renders"))


@pytest.mark.parametrize(
    "library", ["soundfile", "soxr", "numpy", "pyloudnorm", "librosa", "torch", "torchaudio"]
)
def test_the_settings_name_the_version_of_what_decodes_and_resamples(library):
    import importlib.metadata

    settings = dict(preparation_settings(FakeModel(), "prepare", {}))
    assert settings[f"version:{library}"] == importlib.metadata.version(library)


def test_the_settings_name_the_chatterbox_code_and_libsndfile():
    import importlib.metadata

    import soundfile

    settings = dict(preparation_settings(FakeModel(), "prepare", {}))
    # The suite runs on a release from the index: its version says it all.
    assert settings["version:chatterbox"] == (
        f"chatterbox-tts {importlib.metadata.version('chatterbox-tts')}"
    )
    assert settings["version:libsndfile"] == soundfile.__libsndfile_version__


# -- which chatterbox ----------------------------------------------------------


def install_fake_chatterbox(site, monkeypatch, *, dist=None, version="0.1.7", direct_url=None):
    """A ``chatterbox`` package in ``site``, shipped by ``dist`` (or by no distribution)."""
    package = site / "chatterbox"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("VOICE = 1\n")
    (package / "tts.py").write_text("def prepare(): return 1\n")
    if dist is not None:
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "RECORD").write_text(
            "chatterbox/__init__.py,,\nchatterbox/tts.py,,\n"
            f"{info.name}/METADATA,,\n{info.name}/RECORD,,\n"
        )
        if direct_url is not None:
            (info / "direct_url.json").write_text(json.dumps(direct_url))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "chatterbox", raising=False)
    importlib.invalidate_caches()
    return package


def test_a_fork_is_named_by_the_distribution_that_ships_chatterbox(tmp_path, monkeypatch):
    # chatterbox-streaming ships the chatterbox module; there is no chatterbox-tts.
    install_fake_chatterbox(tmp_path, monkeypatch, dist="chatterbox-streaming", version="0.1.2")
    assert chatterbox_version() == "chatterbox-streaming 0.1.2"


@pytest.mark.parametrize(
    "direct_url",
    [
        {"url": "https://github.com/someone/chatterbox.git", "vcs_info": {"vcs": "git"}},
        {"url": "file:///home/me/chatterbox", "dir_info": {"editable": True}},
        {"url": "file:///home/me/chatterbox", "dir_info": {}},
    ],
    ids=["git", "editable", "local-folder"],
)
def test_a_git_or_local_install_is_named_by_its_source_too(tmp_path, monkeypatch, direct_url):
    # Same name and version as the release, other code: only the source tells.
    package = install_fake_chatterbox(
        tmp_path, monkeypatch, dist="chatterbox-tts", direct_url=direct_url
    )
    before = chatterbox_version()
    assert before.startswith("chatterbox-tts 0.1.7 src:")
    (package / "tts.py").write_text("def prepare(): return 2\n")
    assert chatterbox_version() != before


def test_chatterbox_without_a_distribution_is_named_by_its_source(tmp_path, monkeypatch):
    package = install_fake_chatterbox(tmp_path, monkeypatch)
    before = chatterbox_version()
    assert before.startswith("no-distribution src:")
    (package / "models").mkdir()
    (package / "models" / "s3gen.py").write_text("FLOW = 1\n")
    assert chatterbox_version() != before


def test_the_key_module_imports_no_torch():
    # Commands that load no model (ls, verify, warm's lookups) must stay light.
    # The package's __init__ is bypassed: only this module's own imports count.
    code = (
        "import sys, types\n"
        "package = types.ModuleType('cached_tts')\n"
        f"package.__path__ = [{str(Path(cached_tts_package_dir()))!r}]\n"
        "sys.modules['cached_tts'] = package\n"
        "import cached_tts._keys.key\n"
        "print(sorted(m for m in ('torch', 'numpy', 'chatterbox') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"


def cached_tts_package_dir():
    import cached_tts

    return Path(cached_tts.__file__).parent
