"""Fresh copies of an entry's tensors, made as fast as a hit needs them.

Every hit hands each caller tensors of its own (isolation), seven of them for
a TTS voice, so how a copy is made is most of what a memory hit costs:

* a host tensor that numpy can hold is copied by numpy and wrapped with
  ``torch.from_numpy``: about 1.2 µs for a small one against 2.5 µs for
  ``Tensor.clone``, which is mostly dispatch; and in the calling thread
  whatever its size, where torch copies tensors above 32,768 elements on its
  thread pool (milliseconds on a busy 2-core machine);
* the layout is kept: numpy's ``order="K"`` copy keeps the memory order;
  where it would normalize the strides of size-1 dimensions, the tensor's
  memory is copied flat and viewed with the original's strides (worked out
  once, when the copier is made; cheaper than ``Tensor.as_strided``);
* anything else (bfloat16, a tensor with gaps, another device) is copied by
  torch, to the device asked for.

>>> import torch
>>> source = torch.arange(6.0).reshape(1, 2, 3).transpose(1, 2)
>>> (copied,) = fresh_copies([("x", copier(source))], "cpu").values()
>>> torch.equal(copied, source), copied.stride() == source.stride() == (6, 1, 3)
(True, True)
>>> copied.untyped_storage().data_ptr() != source.untyped_storage().data_ptr()
True
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["Copier", "copier", "fresh_copies", "is_host"]

#: Where entries live: host memory, whatever device a model prepares on.
HOST = "cpu"


#: A shape, a numpy dtype and strides in bytes: how to view a flat copy.
Layout = tuple[tuple[int, ...], Any, tuple[int, ...]]


class Copier(NamedTuple):
    """How to copy one tensor: the tensor, and its memory seen by numpy if numpy copies it."""

    tensor: torch.Tensor
    #: The tensor seen by numpy (flat, if ``layout``); ``None`` when torch copies it.
    array: np.ndarray[Any, Any] | None = None
    #: How to view a copy of the flat ``array``; ``None`` when ``order="K"`` keeps the strides.
    layout: Layout | None = None


def copier(tensor: torch.Tensor) -> Copier:
    """Work out once how ``tensor`` is copied on every hit (a few µs: every decode makes some)."""
    import torch

    if type(tensor) is not torch.Tensor or tensor.requires_grad:
        return Copier(tensor)
    try:
        array = tensor.numpy()
    except (TypeError, RuntimeError):  # another device, or a dtype numpy lacks
        return Copier(tensor)
    if not array.size:
        return Copier(tensor)  # numpy gives empty arrays strides of its own
    if array.strides == _row_major_strides(array.shape, array.itemsize):
        # numpy's copy of a C-ordered array is C-ordered, with these very strides.
        return Copier(tensor, array)
    if not _is_dense(array.shape, array.strides, array.itemsize):
        return Copier(tensor)
    # Dense: its elements, in the order they lie in memory, viewed flat.
    flat = array.ravel(order="K")
    return Copier(tensor, flat, (array.shape, array.dtype, array.strides))


def fresh_copies(
    fields: Iterable[tuple[str, Copier | None]], device: Any
) -> dict[str, torch.Tensor | None]:
    """A fresh copy of each tensor on ``device`` (``None`` stays ``None``), by field name."""
    import torch

    if not is_host(device):
        return {
            name: None if how is None else how.tensor.to(device=device, copy=True)
            for name, how in fields
        }
    import numpy as np

    from_numpy = torch.from_numpy
    out: dict[str, torch.Tensor | None] = {}
    for name, how in fields:
        if how is None:
            out[name] = None
        elif how.array is None:
            out[name] = how.tensor.to(device=HOST, copy=True)
        elif how.layout is None:
            out[name] = from_numpy(how.array.copy(order="K"))
        else:
            shape, dtype, strides = how.layout
            out[name] = from_numpy(np.ndarray(shape, dtype, how.array.copy(), 0, strides))
    return out


def is_host(device: Any) -> bool:
    """Whether ``device`` (a ``torch.device`` or its name) is host memory.

    >>> is_host("cpu"), is_host("cuda:0")
    (True, False)
    """
    if device == HOST:
        return True
    return _is_host_device(str(device))


@functools.lru_cache(maxsize=64)
def _is_host_device(name: str) -> bool:
    import torch

    return torch.device(name).type == HOST


@functools.lru_cache(maxsize=256)
def _row_major_strides(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """The strides, in bytes, of a C-ordered array of ``shape``, as numpy lays it out.

    >>> _row_major_strides((1, 500, 80), 4)
    (160000, 320, 4)
    """
    strides = []
    step = itemsize
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def _is_dense(shape: tuple[int, ...], strides: tuple[int, ...], itemsize: int) -> bool:
    """Whether the elements fill their memory exactly, in some order of the dimensions.

    >>> _is_dense((1, 500, 80), (160000, 4, 2000), 4), _is_dense((4, 3), (24, 8), 4)
    (True, False)
    """
    step = itemsize
    for size, stride in sorted(zip(shape, strides, strict=True), key=lambda d: d[1]):
        if size == 1:
            continue  # a size-1 dimension's stride says nothing
        if stride != step:
            return False
        step *= size
    return True
