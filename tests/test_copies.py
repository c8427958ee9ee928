"""Fresh copies: bitwise the original, laid out like it, sharing no memory with it."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cached_tts._entries.copies import copier, fresh_copies, is_host


def _memory(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


def _check_fresh_copy(source: torch.Tensor, copied: torch.Tensor) -> None:
    assert copied.dtype == source.dtype
    assert copied.shape == source.shape
    assert copied.stride() == source.stride()
    assert torch.equal(copied, source)
    if source.numel():
        assert _memory(copied) != _memory(source)


LAYOUTS = {
    "contiguous": lambda: torch.randn(3, 4),
    "transposed": lambda: torch.randn(4, 3).t(),
    "size-1 dims, upstream's prompt_feat": lambda: torch.randn(1, 80, 500).transpose(1, 2),
    "size-1 last dim": lambda: torch.randn(5, 1),
    "one element": lambda: torch.tensor([7], dtype=torch.int64),
    "no elements": lambda: torch.empty(0, 3),
    "scalar": lambda: torch.tensor(2.5),
    "at an offset into its storage": lambda: torch.arange(20.0)[4:16].reshape(1, 3, 4),
    "bool": lambda: torch.tensor([[True, False, True]]),
    "float16": lambda: torch.randn(1, 8).half(),
    "bfloat16 (no numpy dtype)": lambda: torch.randn(1, 8).bfloat16(),
}


@pytest.mark.parametrize("make", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_a_host_copy_is_bitwise_laid_out_alike_and_fresh(make):
    source = make()
    how = copier(source)
    first = fresh_copies([("x", how)], "cpu")["x"]
    second = fresh_copies([("x", how)], "cpu")["x"]
    _check_fresh_copy(source, first)
    assert source.numel() == 0 or _memory(first) != _memory(second)


@pytest.mark.parametrize(
    "source",
    [torch.randn(4, 6)[:, ::2], torch.arange(4.0).reshape(1, 4).expand(3, 4)],
    ids=["with gaps", "overlapping itself"],
)
def test_a_tensor_that_does_not_fill_its_memory_is_copied_whole_by_torch(source):
    assert copier(source).array is None
    copied = fresh_copies([("x", copier(source))], "cpu")["x"]
    assert torch.equal(copied, source)
    assert copied.is_contiguous()
    assert _memory(copied) != _memory(source)


@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_any_permutation_of_dimensions_is_copied_with_its_strides(shape, seed):
    generator = torch.Generator().manual_seed(seed)
    source = torch.randn(*shape, generator=generator)
    order = torch.randperm(len(shape), generator=generator).tolist()
    source = source.permute(order)
    _check_fresh_copy(source, fresh_copies([("x", copier(source))], "cpu")["x"])


def test_writing_to_a_copy_leaves_the_original_and_later_copies_alone():
    source = torch.randn(1, 80, 500).transpose(1, 2)
    kept = source.clone()
    how = copier(source)
    fresh_copies([("x", how)], "cpu")["x"].fill_(0)
    assert torch.equal(source, kept)
    assert torch.equal(fresh_copies([("x", how)], "cpu")["x"], kept)


def test_absent_fields_stay_absent_in_order():
    out = fresh_copies([("a", None), ("b", copier(torch.zeros(1))), ("c", None)], "cpu")
    assert list(out) == ["a", "b", "c"]
    assert out["a"] is None
    assert out["c"] is None


def test_a_copy_for_another_device_goes_there():
    source = torch.randn(2, 3).t()
    copied = fresh_copies([("x", copier(source))], "meta")["x"]
    assert copied.device.type == "meta"
    assert copied.shape == source.shape


def test_a_tensor_that_needs_grad_is_copied_by_torch():
    source = torch.randn(3, requires_grad=True)
    assert copier(source).array is None


@pytest.mark.parametrize(
    ("device", "host"),
    [
        ("cpu", True),
        (torch.device("cpu"), True),
        ("cuda", False),
        ("cuda:1", False),
        ("mps", False),
    ],
)
def test_is_host(device, host):
    assert is_host(device) is host
