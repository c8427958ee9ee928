"""A repeated call is served by the key it came to before, and only while that key holds."""

from __future__ import annotations

import copy
import os
import shutil

import pytest
import torch

import cached_tts
from cached_tts._wrapping import voice as _voice
from cached_tts.testing import assert_same_conditionals, random_model

pytestmark = pytest.mark.slow


@pytest.fixture
def alice(clips, tmp_path, request):
    """A copy of Alice's clip, old enough for its hash to be kept."""
    request.getfixturevalue("clock_ahead")
    clip = tmp_path / "alice.wav"
    shutil.copyfile(clips["alice"], clip)
    return str(clip)


class StopError(Exception):
    """Raised instead of preparing: the test only looks at the key a call came to."""


@pytest.fixture
def model(components, cache):
    return random_model(components=components, cache=cache)


def record_keys(model, monkeypatch):
    """Keys the model's cache is asked for; a call that would prepare raises :class:`StopError`."""
    keys = []
    real_from_memory = model.cache.from_memory

    def from_memory(key):
        keys.append(key)
        return real_from_memory(key)

    def get_or_prepare(key, _prepare, **_kwargs):
        keys.append(key)
        raise StopError

    monkeypatch.setattr(model.cache, "from_memory", from_memory)
    monkeypatch.setattr(model.cache, "get_or_prepare", get_or_prepare)
    return keys


def known(model):
    return model.__dict__.get(_voice._KNOWN_ATTR, {})


def test_a_repeated_call_hashes_nothing_and_hands_out_fresh_copies(
    model, alice, clips, reference, monkeypatch
):
    model.prepare_conditionals(alice)
    assert known(model), "a clip whose hash the hasher keeps is remembered"

    def fail(*_args, **_kwargs):
        raise AssertionError("a repeated call hashed or rebuilt its key")

    monkeypatch.setattr(model.cache, "hash_clip", fail)
    monkeypatch.setattr(_voice, "preparation_settings", fail)
    model.prepare_conditionals(alice, exaggeration=0.7)
    first = model.conds
    model.prepare_conditionals(alice, exaggeration=0.7)
    second = model.conds

    assert_same_conditionals(second, reference(clips["alice"], 0.7))
    for name, tensor in vars(first.t3).items():
        if isinstance(tensor, torch.Tensor):
            assert tensor.data_ptr() != getattr(second.t3, name).data_ptr(), name
    first.gen["prompt_feat"].add_(1.0)
    model.prepare_conditionals(alice, exaggeration=0.7)
    assert_same_conditionals(model.conds, reference(clips["alice"], 0.7))
    assert model.cache.stats().memory_hits == 3


@pytest.mark.usefixtures("clock_ahead")
def test_a_clip_rewritten_in_place_is_never_served_by_its_old_key(
    model, clips, reference, tmp_path
):
    clip = tmp_path / "voice.wav"
    shutil.copyfile(clips["alice"], clip)
    model.prepare_conditionals(str(clip))
    assert known(model)
    before = os.stat(clip)

    # Bob's clip has the same length; the times are put back as they were.
    shutil.copyfile(clips["bob"], clip)
    os.utime(clip, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(clip).st_size == before.st_size

    model.prepare_conditionals(str(clip))
    assert_same_conditionals(model.conds, reference(clips["bob"]))


def test_a_racy_clip_is_not_remembered(model, clips, tmp_path):
    clip = tmp_path / "just_written.wav"
    shutil.copyfile(clips["alice"], clip)  # written now: its hash is not kept

    model.prepare_conditionals(str(clip))

    assert not [call for call in known(model) if call[0] == str(clip)]


def half_into_new_parameters(module):
    overwrite = torch.__future__.get_overwrite_module_params_on_conversion()
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    try:
        module.half()
    finally:
        torch.__future__.set_overwrite_module_params_on_conversion(overwrite)


@pytest.mark.parametrize(
    "convert",
    [
        lambda module: module.half(),
        lambda module: module.to(torch.float64),
        half_into_new_parameters,
    ],
    ids=["half", "to-float64", "half-into-new-parameters"],
)
def test_a_dtype_change_of_a_preparation_module_takes_a_new_key(model, alice, monkeypatch, convert):
    model.ve = copy.deepcopy(model.ve)  # the session's modules stay as they are
    model.prepare_conditionals(alice)
    keys = record_keys(model, monkeypatch)
    model.prepare_conditionals(alice)
    assert len(keys) == 1

    convert(model.ve)
    with pytest.raises(StopError):
        model.prepare_conditionals(alice)

    assert keys[-1].settings != keys[0].settings
    dtype = dict(keys[-1].settings)["dtype"]
    assert f"ve={next(model.ve.parameters()).dtype}" in dtype


def test_a_new_fingerprint_takes_a_new_key(model, alice, monkeypatch):
    model.prepare_conditionals(alice)
    keys = record_keys(model, monkeypatch)
    model.prepare_conditionals(alice)

    cached_tts.refresh_fingerprint(model, model_id="narrator-v2")
    with pytest.raises(StopError):
        model.prepare_conditionals(alice)

    assert keys[0].weights.startswith("weights:")
    assert keys[-1].weights == "id:narrator-v2"
    assert keys[-1].content == keys[0].content


@pytest.mark.usefixtures("clock_ahead")
def test_a_relative_path_is_served_by_the_file_it_names_now(
    model, clips, reference, tmp_path, monkeypatch
):
    # The same relative name in two folders: Alice's voice in one, Bob's in the other.
    for folder, speaker in (("a", "alice"), ("b", "bob")):
        (tmp_path / folder).mkdir()
        shutil.copyfile(clips[speaker], tmp_path / folder / "voice.wav")
    monkeypatch.chdir(tmp_path / "a")
    model.prepare_conditionals("voice.wav")
    model.prepare_conditionals("voice.wav")
    assert model.cache.stats().memory_hits == 1, "served by the key it came to"
    assert_same_conditionals(model.conds, reference(clips["alice"]))

    monkeypatch.chdir(tmp_path / "b")
    model.prepare_conditionals("voice.wav")

    assert_same_conditionals(model.conds, reference(clips["bob"]))


def test_a_repeated_call_under_autocast_takes_the_modes_key(model, alice, monkeypatch):
    model.prepare_conditionals(alice)
    keys = record_keys(model, monkeypatch)
    model.prepare_conditionals(alice)
    assert len(keys) == 1, "served by the key it came to"

    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(StopError):
        model.prepare_conditionals(alice)

    assert dict(keys[-1].settings)["mode:autocast:cpu"] == "torch.bfloat16"
    assert "mode:autocast:cpu" not in dict(keys[0].settings)


def test_a_voice_encoder_quantized_in_place_takes_a_new_key(model, alice, monkeypatch):
    model.ve = copy.deepcopy(model.ve)  # the session's modules stay as they are
    model.prepare_conditionals(alice)
    keys = record_keys(model, monkeypatch)
    model.prepare_conditionals(alice)
    first = next(model.ve.parameters())

    torch.ao.quantization.quantize_dynamic(model.ve, inplace=True)
    with pytest.raises(StopError):
        model.prepare_conditionals(alice)

    assert next(model.ve.parameters()) is first  # what the settings used to read
    assert dict(keys[-1].settings)["modules"] != dict(keys[0].settings)["modules"]
