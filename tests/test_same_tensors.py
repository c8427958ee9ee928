"""The bitwise comparison that the integration tests trust: layouts count, size-1 strides don't."""

from __future__ import annotations

import pytest
import torch

from cached_tts.testing import assert_same_tensors


def test_a_transposed_copy_with_equal_values_is_not_the_same_tensor():
    stored = torch.arange(24.0).reshape(1, 4, 6).transpose(1, 2)  # as prompt_feat is
    contiguous = stored.contiguous()
    assert torch.equal(stored, contiguous)
    with pytest.raises(AssertionError, match="prompt_feat: layouts differ"):
        assert_same_tensors(contiguous, stored, where="prompt_feat")


def test_the_stride_of_a_size_one_dimension_does_not_count():
    expected = torch.arange(6.0).reshape(1, 6)
    # The same bytes in the same order, but the size-1 dimension claims the smallest stride.
    actual = torch.as_strided(expected.clone(), (1, 6), (0, 1))
    assert actual.stride() != expected.stride()
    assert_same_tensors(actual, expected, where="speaker_emb")
