"""One cached preparation, and how it maps to and from Chatterbox's objects.

An :class:`Entry` holds the exaggeration-free parts of a preparation as a flat,
ordered mapping of names to tensors:

* ``t3.<field>`` for the fields of ``T3Cond`` except ``emotion_adv``;
* ``gen.<key>`` for the S3Gen reference dict of ``Conditionals.gen``;
* ``ref.<key>`` for ``ChatterboxVC.ref_dict``.

Fields that are ``None`` (``clap_emb``, ``prompt_feat_len``...) are listed in
``absent``. An entry is never handed out: every reader gets fresh copies, so
nothing a model or a user does to its tensors can reach the cache.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "Entry",
    "UncacheableError",
    "conditionals_from_entry",
    "entry_from_conditionals",
    "entry_from_ref_dict",
    "ref_dict_from_entry",
]

_EXAGGERATION_FIELD = "emotion_adv"


class UncacheableError(TypeError):
    """A preparation holds something other than tensors and ``None``."""


@dataclass(frozen=True)
class Entry:
    """The exaggeration-free result of one voice preparation.

    >>> entry = Entry({"gen.embedding": torch.zeros(1, 192)}, absent=("gen.prompt_feat_len",))
    >>> entry.nbytes
    768
    >>> entry.fields
    ('gen.embedding', 'gen.prompt_feat_len')
    """

    tensors: Mapping[str, torch.Tensor]
    absent: tuple[str, ...] = ()
    prepare_seconds: float = 0.0
    nbytes: int = field(init=False, repr=False, compare=False)

    # prefix -> [(key, tensor or None, copy through numpy)], worked out once:
    # copies() runs on every hit.
    _groups: dict[str, list[tuple[str, torch.Tensor | None, bool]]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        total = sum(t.numel() * t.element_size() for t in self.tensors.values())
        object.__setattr__(self, "nbytes", total)
        groups: dict[str, list[tuple[str, torch.Tensor | None, bool]]] = {}
        for name in self.fields:
            prefix, _, key = name.partition(".")
            tensor = self.tensors.get(name)
            groups.setdefault(prefix, []).append((key, tensor, _copies_via_numpy(tensor)))
        object.__setattr__(self, "_groups", groups)

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field name, tensors first, in the order they were captured."""
        return (*self.tensors, *self.absent)

    def copies(self, prefix: str, device: torch.device | str) -> dict[str, Any]:
        """Fresh copies of the fields under ``prefix``, on ``device``."""
        device = torch.device(device)
        out: dict[str, Any] = {}
        for key, tensor, via_numpy in self._groups.get(prefix, ()):
            if tensor is None:
                out[key] = None
            elif tensor.device != device:
                out[key] = tensor.to(device=device, copy=True)
            elif via_numpy:
                out[key] = torch.from_numpy(tensor.numpy().copy(order="K"))
            else:
                out[key] = tensor.clone()
        return out


# torch copies CPU tensors above 32,768 elements on its thread pool; on a busy
# or idle 2-core machine that one clone can take milliseconds. numpy copies in
# the calling thread, in microseconds, keeping the memory order.
_NUMPY_COPY_MIN_ELEMENTS = 4096
_NUMPY_DTYPES = frozenset(
    {
        torch.float32,
        torch.float64,
        torch.float16,
        torch.int64,
        torch.int32,
        torch.int16,
        torch.int8,
        torch.uint8,
        torch.bool,
    }
)


def _copies_via_numpy(tensor: torch.Tensor | None) -> bool:
    return (
        tensor is not None
        and tensor.device.type == "cpu"
        and tensor.numel() >= _NUMPY_COPY_MIN_ELEMENTS
        and tensor.dtype in _NUMPY_DTYPES
    )


def _capture(
    prefix: str, values: Mapping[str, Any], skip: str | None = None
) -> tuple[dict[str, torch.Tensor], list[str]]:
    tensors: dict[str, torch.Tensor] = {}
    absent: list[str] = []
    for key, value in values.items():
        if key == skip:
            continue
        if value is None:
            absent.append(f"{prefix}.{key}")
        elif torch.is_tensor(value):
            # clone() outside inference mode gives a plain tensor with no
            # autograd history, whatever the original was.
            tensors[f"{prefix}.{key}"] = value.detach().clone()
        else:
            raise UncacheableError(
                f"{prefix}.{key} is a {type(value).__name__}, not a tensor or None"
            )
    return tensors, absent


def entry_from_conditionals(conds: Any, prepare_seconds: float = 0.0) -> Entry:
    """Capture a ``Conditionals`` (``t3`` + ``gen``) without its exaggeration."""
    t3_tensors, t3_absent = _capture("t3", vars(conds.t3), skip=_EXAGGERATION_FIELD)
    gen_tensors, gen_absent = _capture("gen", conds.gen)
    return Entry({**t3_tensors, **gen_tensors}, (*t3_absent, *gen_absent), prepare_seconds)


def entry_from_ref_dict(ref_dict: Mapping[str, Any], prepare_seconds: float = 0.0) -> Entry:
    """Capture ``ChatterboxVC.ref_dict``."""
    tensors, absent = _capture("ref", ref_dict)
    return Entry(tensors, tuple(absent), prepare_seconds)


def conditionals_from_entry(
    entry: Entry,
    exaggeration: Any,
    device: torch.device | str,
    conditionals_class: Callable[..., Any],
) -> Any:
    """A fresh ``Conditionals`` with ``exaggeration`` applied, on ``device``.

    The exaggeration tensor is built exactly as upstream builds it, so the
    result is bitwise what ``prepare_conditionals(..., exaggeration=x)`` gives.
    """
    t3_fields = entry.copies("t3", device)
    t3_fields[_EXAGGERATION_FIELD] = _exaggeration_tensor(exaggeration, device)
    return conditionals_class(_t3_cond_class()(**t3_fields), entry.copies("gen", device))


def _exaggeration_tensor(exaggeration: Any, device: torch.device | str) -> torch.Tensor:
    """``emotion_adv`` exactly as upstream builds it, fresh for each caller."""
    kind = type(exaggeration)
    if kind in (float, int):
        template: torch.Tensor = _exaggeration_template(kind.__name__, exaggeration, str(device))
        return template.clone()
    fresh: torch.Tensor = (exaggeration * torch.ones(1, 1, 1)).to(device=device)
    return fresh


@functools.lru_cache(maxsize=256)
def _exaggeration_template(_kind: str, exaggeration: float, device: str) -> torch.Tensor:
    # Never handed out itself: callers get clones.
    return (exaggeration * torch.ones(1, 1, 1)).to(device=device)


def ref_dict_from_entry(entry: Entry, device: torch.device | str) -> dict[str, Any]:
    """A fresh ``ref_dict`` for ``ChatterboxVC``, on ``device``."""
    return entry.copies("ref", device)


def conditionals_class_for(prepare: Callable[..., Any]) -> Callable[..., Any]:
    """The ``Conditionals`` class that goes with a ``prepare_conditionals``.

    Each chatterbox module defines its own; a user's subclass in another
    module falls back to the English one.
    """
    module = sys.modules.get(getattr(prepare, "__module__", ""), None)
    found = getattr(module, "Conditionals", None)
    if found is None:
        from chatterbox.tts import Conditionals

        return Conditionals  # type: ignore[no-any-return]
    return found  # type: ignore[no-any-return]


@functools.cache
def _t3_cond_class() -> Callable[..., Any]:
    from chatterbox.models.t3.modules.cond_enc import T3Cond

    return T3Cond  # type: ignore[no-any-return]
