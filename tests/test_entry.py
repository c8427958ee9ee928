"""One cached preparation: captured in host memory, restored bitwise, in upstream's order."""

from __future__ import annotations

import math
import struct
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from chatterbox.models.t3.modules.cond_enc import T3Cond
from chatterbox.tts import Conditionals
from strategies import voice_entry

from cached_tts._entries.entry import (
    Entry,
    UncacheableError,
    conditionals_from_entry,
    entry_from_conditionals,
    entry_from_ref_dict,
    ref_dict_from_entry,
)


def upstream_conditionals(exaggeration=0.5, *, tensor=torch.tensor):
    """A ``Conditionals`` built as ``prepare_conditionals`` builds one (gen as embed_ref's)."""
    t3 = T3Cond(
        speaker_emb=tensor([[0.25, -1.5, 3.0]]),
        cond_prompt_speech_tokens=tensor([[7, 8, 9]]),
        emotion_adv=exaggeration * torch.ones(1, 1, 1),
    ).to(device="cpu")
    gen = {
        "prompt_token": tensor([[1, 2, 3, 4]]),
        "prompt_token_len": tensor([4]),
        "prompt_feat": tensor([[[0.5] * 8] * 3]).transpose(1, 2),
        "prompt_feat_len": None,
        "embedding": tensor([[1.0, 2.0]]),
    }
    return Conditionals(t3, gen)


def bits(tensor):
    return tensor.contiguous().reshape(-1).view(torch.uint8).tolist()


def assert_same_bits(actual, expected):
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    assert actual.device == expected.device
    assert bits(actual) == bits(expected)


# -- the exaggeration ---------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "then"),
    [
        (0.0, -0.0),
        (-0.0, 0.0),
        (1, 1.0),
        (1.0, True),
        (0.5, np.float64(0.5)),
        (0.5, np.float32(0.5)),
        (0.5, torch.tensor(0.5, dtype=torch.float64)),
        (float("nan"), float("nan")),
        (2**53 + 1, float(2**53 + 1)),
    ],
)
def test_the_exaggeration_tensor_is_bitwise_upstreams_whatever_came_before(first, then):
    entry = entry_from_conditionals(upstream_conditionals())
    conditionals_from_entry(entry, first, "cpu", Conditionals)  # memoizes a template

    restored = conditionals_from_entry(entry, then, "cpu", Conditionals)

    assert_same_bits(restored.t3.emotion_adv, upstream_conditionals(then).t3.emotion_adv)


def test_minus_zero_comes_back_as_minus_zero():
    entry = entry_from_conditionals(upstream_conditionals())
    conditionals_from_entry(entry, 0.0, "cpu", Conditionals)
    value = conditionals_from_entry(entry, -0.0, "cpu", Conditionals).t3.emotion_adv.item()
    assert math.copysign(1.0, value) == -1.0
    assert struct.pack("<d", value) == struct.pack("<d", -0.0)


def test_each_restore_gets_its_own_exaggeration_tensor():
    entry = entry_from_conditionals(upstream_conditionals())
    first = conditionals_from_entry(entry, 0.5, "cpu", Conditionals)
    first.t3.emotion_adv.fill_(9.0)
    assert conditionals_from_entry(entry, 0.5, "cpu", Conditionals).t3.emotion_adv.item() == 0.5


# -- field order ------------------------------------------------------------------


def test_a_restored_conditionals_has_upstreams_field_and_key_order():
    upstream = upstream_conditionals()
    restored = conditionals_from_entry(entry_from_conditionals(upstream), 0.5, "cpu", Conditionals)

    # prompt_feat_len (None) stays between prompt_feat and embedding.
    assert list(restored.gen) == list(upstream.gen)
    assert list(vars(restored.t3)) == list(vars(upstream.t3))
    for name, value in upstream.gen.items():
        if value is None:
            assert restored.gen[name] is None
        else:
            assert_same_bits(restored.gen[name], value)
            assert restored.gen[name].stride() == value.stride()


def test_a_restored_ref_dict_has_upstreams_key_order():
    upstream = upstream_conditionals().gen
    restored = ref_dict_from_entry(entry_from_ref_dict(upstream), "cpu")
    assert list(restored) == list(upstream)


def test_an_entry_refuses_an_order_that_does_not_list_its_fields():
    with pytest.raises(ValueError, match="exactly once"):
        Entry({"ref.a": torch.zeros(1)}, ("ref.b",), order=("ref.a", "ref.a"))


# -- what can be captured ---------------------------------------------------------


def test_a_conditionals_with_a_field_upstream_lacks_is_uncacheable():
    conds = upstream_conditionals()
    conds.gen["extra"] = torch.zeros(1)
    with pytest.raises(UncacheableError, match="neither"):
        entry_from_conditionals(conds)


def test_a_conditionals_with_a_tensor_of_the_wrong_kind_is_uncacheable():
    conds = upstream_conditionals()
    conds.gen["embedding"] = torch.zeros(1, 2, dtype=torch.complex64)
    with pytest.raises(UncacheableError, match="cannot hold"):
        entry_from_conditionals(conds)


# -- device memory --------------------------------------------------------------


class OnAccelerator(torch.Tensor):
    """A tensor that says it lives on a GPU; ``.to(device="cpu")`` gives a real CPU copy.

    There is no GPU here: this double shows where capture puts a GPU model's tensors.
    """

    @property
    def device(self):
        return torch.device("cuda", 0)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        with torch._C.DisableTorchFunctionSubclass():
            result = func(*args, **(kwargs or {}))
        if func is torch.Tensor.to and result is not args[0]:
            return result  # a copy made elsewhere: a plain tensor on the CPU
        return torch._tensor._convert(result, cls)


def on_accelerator(tensor):
    return tensor.as_subclass(OnAccelerator)


def test_an_entry_captured_from_a_gpu_model_lives_in_host_memory():
    conds = upstream_conditionals(tensor=lambda v: on_accelerator(torch.tensor(v)))
    assert conds.gen["prompt_token"].device.type == "cuda"  # the double works

    entry = entry_from_conditionals(conds)

    for name, tensor in entry.tensors.items():
        assert type(tensor) is torch.Tensor, name
        assert tensor.device.type == "cpu", name
    assert entry.tensors["gen.prompt_feat"].stride() == conds.gen["prompt_feat"].stride()


def test_a_vc_ref_dict_captured_from_a_gpu_model_lives_in_host_memory():
    ref_dict = upstream_conditionals(tensor=lambda v: on_accelerator(torch.tensor(v))).gen
    entry = entry_from_ref_dict(ref_dict)
    assert {t.device.type for t in entry.tensors.values()} == {"cpu"}
    assert all(type(t) is torch.Tensor for t in entry.tensors.values())


def test_a_restore_copies_to_the_models_device_and_leaves_the_entry_in_host_memory():
    # The meta device stands in for a GPU: tensors there have shapes but no data.
    entry = voice_entry()

    conds = conditionals_from_entry(entry, 0.5, "meta", Conditionals)

    for name, tensor in [*vars(conds.t3).items(), *conds.gen.items()]:
        if tensor is not None:
            assert tensor.device.type == "meta", name
    assert conds.gen["prompt_feat"].stride() == entry.tensors["gen.prompt_feat"].stride()
    assert {t.device.type for t in entry.tensors.values()} == {"cpu"}
    ref_dict = ref_dict_from_entry(voice_entry(vc=True), "meta")
    assert {t.device.type for t in ref_dict.values() if t is not None} == {"meta"}


def test_every_restore_is_a_copy_that_shares_nothing_with_the_entry():
    big = SimpleNamespace(t3=upstream_conditionals().t3, gen=upstream_conditionals().gen)
    big.gen["prompt_feat"] = torch.randn(1, 80, 500).transpose(1, 2)  # the numpy copy path
    entry = entry_from_conditionals(big)
    kept = {name: tensor.clone() for name, tensor in entry.tensors.items()}

    first = conditionals_from_entry(entry, 0.5, "cpu", Conditionals)
    for tensor in [*vars(first.t3).values(), *first.gen.values()]:
        if tensor is not None:
            tensor.fill_(0)

    for name, tensor in entry.tensors.items():
        assert bits(tensor) == bits(kept[name]), name
    second = conditionals_from_entry(entry, 0.5, "cpu", Conditionals)
    assert_same_bits(second.gen["prompt_feat"], big.gen["prompt_feat"])
    assert second.gen["prompt_feat"].stride() == big.gen["prompt_feat"].stride()


def test_a_large_tensor_that_overlaps_itself_is_restored_with_its_values():
    expanded = torch.arange(5000.0).reshape(1, 5000).expand(3, 5000)  # stride 0: overlapping
    entry = Entry({"ref.prompt_feat": expanded})
    assert torch.equal(entry.copies("ref", "cpu")["prompt_feat"], expanded)
