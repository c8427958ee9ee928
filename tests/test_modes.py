"""Numeric modes and in-place changes of the modules are part of a key's settings.

The model here is a test double shaped like a Chatterbox model as far as the
settings look: a voice encoder that holds a parameter of its own before its
LSTM and projection (as upstream's ``VoiceEncoder`` does), and an S3Gen with
a tokenizer, a speaker encoder and a flow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import SimpleNamespace

import pytest
import torch
from torch.nn.utils import parametrize

import cached_tts
from cached_tts._keys.key import preparation_settings, settings_state
from cached_tts._keys.modes import Structure


class Encoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.similarity_weight = torch.nn.Parameter(torch.tensor([10.0]))
        self.lstm = torch.nn.LSTM(4, 4, batch_first=True)
        self.proj = torch.nn.Linear(4, 3)


class Model:
    def __init__(self) -> None:
        torch.manual_seed(0)
        self.ve = Encoder()
        self.s3gen = SimpleNamespace(
            tokenizer=torch.nn.Linear(2, 2),
            speaker_encoder=torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3)),
            flow=torch.nn.Linear(2, 2),
        )
        self.device = torch.device("cpu")


def settings(model: Model) -> dict[str, str]:
    return dict(preparation_settings(model, "prepare", {}))


# -- numeric modes ---------------------------------------------------------------


@contextlib.contextmanager
def switched(getter: Callable[[], object], setter: Callable[[object], None], *, value: object):
    before = getter()
    setter(value)
    try:
        yield
    finally:
        setter(before)


def attribute(
    owner: object, name: str, *, value: object
) -> contextlib.AbstractContextManager[None]:
    return switched(lambda: getattr(owner, name), lambda v: setattr(owner, name, v), value=value)


MATMUL = torch.backends.cuda.matmul
MODES: dict[str, Callable[[], contextlib.AbstractContextManager[object]]] = {
    "autocast:cpu": lambda: torch.autocast("cpu", dtype=torch.bfloat16),
    "float32_matmul_precision": lambda: switched(
        torch.get_float32_matmul_precision, torch.set_float32_matmul_precision, value="medium"
    ),
    "cuda.matmul.allow_tf32": lambda: attribute(MATMUL, "allow_tf32", value=True),
    "cudnn.allow_tf32": lambda: attribute(torch.backends.cudnn, "allow_tf32", value=False),
    "cuda.matmul.allow_fp16_reduced_precision_reduction": lambda: attribute(
        MATMUL, "allow_fp16_reduced_precision_reduction", value=False
    ),
    "cuda.matmul.allow_bf16_reduced_precision_reduction": lambda: attribute(
        MATMUL, "allow_bf16_reduced_precision_reduction", value=False
    ),
    "default_dtype": lambda: switched(
        torch.get_default_dtype, torch.set_default_dtype, value=torch.float64
    ),
}


def test_at_torchs_defaults_the_settings_name_no_mode():
    assert not [name for name in settings(Model()) if name.startswith("mode:")]


@pytest.mark.parametrize("mode", MODES)
def test_each_numeric_mode_is_named_by_the_settings_and_the_state(mode):
    model = Model()
    plain_settings, plain_state = settings(model), settings_state(model)
    with MODES[mode]():
        under = settings(model)
        state = settings_state(model)
    assert f"mode:{mode}" in under
    assert {k: v for k, v in under.items() if not k.startswith("mode:")} == plain_settings
    assert state != plain_state  # so a remembered call is not served either
    assert settings(model) == plain_settings
    assert settings_state(model) == plain_state


def test_autocast_is_named_with_its_dtype_and_only_for_the_cpu_or_the_models_device():
    model = Model()
    with torch.autocast("cpu", dtype=torch.float16):
        assert settings(model)["mode:autocast:cpu"] == "torch.float16"
    # torch.autocast("cuda") turns itself off without a GPU: set the flag itself.
    torch.set_autocast_enabled("cuda", True)  # noqa: FBT003 -- torch's signature
    try:
        # CUDA autocast changes no CPU arithmetic.
        assert not [name for name in settings(model) if name.startswith("mode:")]
        model.device = torch.device("cuda:0")
        assert settings(model)["mode:autocast:cuda"] == str(torch.get_autocast_dtype("cuda"))
    finally:
        torch.set_autocast_enabled("cuda", False)  # noqa: FBT003 -- torch's signature


def test_modes_that_only_choose_kernels_are_not_named():
    model = Model()
    before = settings(model)
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(mode=True)
    try:
        with attribute(torch.backends.cudnn, "benchmark", value=True):
            assert settings(model) == before
    finally:
        torch.use_deterministic_algorithms(mode=deterministic)


# -- in-place changes of the modules ---------------------------------------------------
#
# The changes the settings see, each on the voice encoder, whose first
# parameter (similarity_weight) every one of them leaves in place.


def quantize(model: Model) -> None:
    torch.ao.quantization.quantize_dynamic(model.ve, inplace=True)


def swap_projection(model: Model) -> None:
    model.ve.proj = torch.nn.Identity()


def parametrize_projection(model: Model) -> None:
    class Doubled(torch.nn.Module):
        def forward(self, weight: torch.Tensor) -> torch.Tensor:
            return weight * 2

    parametrize.register_parametrization(model.ve.proj, "weight", Doubled())


def half_the_lstm_then_refresh(model: Model) -> None:
    model.ve.lstm.half()  # registers nothing: seen once the model is refreshed
    cached_tts.refresh_fingerprint(model)


SEEN_CHANGES = [quantize, swap_projection, parametrize_projection, half_the_lstm_then_refresh]


@pytest.mark.parametrize("change", SEEN_CHANGES, ids=lambda change: change.__name__)
def test_an_in_place_change_that_keeps_the_first_parameter_changes_the_settings(change):
    model = Model()
    first = model.ve.similarity_weight
    before_settings, before_state = settings(model), settings_state(model)

    change(model)

    assert model.ve.similarity_weight is first
    assert settings_state(model) != before_state
    after = settings(model)
    assert after["modules"] != before_settings["modules"]
    assert after["dtype"] == before_settings["dtype"]  # the first parameters did not change


def test_the_structure_is_read_again_only_after_torch_registered_something(monkeypatch):
    model = Model()
    settings_state(model)
    walks = []
    real = cached_tts._keys.key.module_structure

    def counted(modules: list[torch.nn.Module], known: Structure | None) -> Structure:
        walks.append(1)
        return real(modules, known)

    monkeypatch.setattr(cached_tts._keys.key, "module_structure", counted)
    settings_state(model)
    settings_state(model)
    assert walks == []
    torch.nn.Linear(2, 2)  # anywhere in the process
    settings_state(model)
    assert walks == [1]


def test_a_change_that_registers_nothing_is_not_seen_until_the_model_is_refreshed():
    # The documented limit: a part of a module converted in place.
    model = Model()
    before = settings(model)
    model.ve.lstm.half()
    assert settings(model) == before
    cached_tts.refresh_fingerprint(model)
    assert settings(model)["modules"] != before["modules"]
