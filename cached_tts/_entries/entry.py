"""One cached preparation, and how it maps to and from Chatterbox's objects.

An :class:`Entry` holds the exaggeration-free parts of a preparation as a flat,
ordered mapping of names to tensors:

* ``t3.<field>`` for the fields of ``T3Cond`` except ``emotion_adv``;
* ``gen.<key>`` for the S3Gen reference dict of ``Conditionals.gen``;
* ``ref.<key>`` for ``ChatterboxVC.ref_dict``.

Fields that are ``None`` (``clap_emb``, ``prompt_feat_len``...) are listed in
``absent``, and ``order`` keeps every field where upstream had it, so a
restored ``gen`` iterates as upstream's does. Which fields a preparation must
have is :mod:`cached_tts._entries.schema`'s business; capture refuses anything else.

Entries live in host memory whatever device the model prepares on; a restore
copies to the model's device. An entry is never handed out: every reader gets
fresh copies, so nothing a model or a user does to its tensors can reach the
cache.
"""

from __future__ import annotations

import functools
import math
import struct
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cached_tts._entries.copies import HOST, Copier, copier, fresh_copies
from cached_tts._entries.schema import FLOAT_DTYPES, FieldSpec, schema_problem
from cached_tts._forksafe import renew_after_fork

if TYPE_CHECKING:
    import torch

__all__ = [
    "Entry",
    "UncacheableError",
    "conditionals_from_entry",
    "entry_from_conditionals",
    "entry_from_ref_dict",
    "ref_dict_from_entry",
    "safetensors_dtype",
]

_EXAGGERATION_FIELD = "emotion_adv"


class UncacheableError(TypeError):
    """A preparation holds something the cache cannot store as it is."""


@dataclass(frozen=True)
class Entry:
    """The exaggeration-free result of one voice preparation.

    ``order`` lists every field, tensors and absent ones, in the order they
    were captured; left empty it is the tensors, then the absent fields.

    >>> import torch
    >>> entry = Entry({"gen.embedding": torch.zeros(1, 192)}, absent=("gen.prompt_feat_len",))
    >>> entry.nbytes
    768
    >>> entry.fields
    ('gen.embedding', 'gen.prompt_feat_len')
    >>> Entry(entry.tensors, entry.absent, order=entry.fields[::-1]).fields
    ('gen.prompt_feat_len', 'gen.embedding')
    """

    tensors: Mapping[str, torch.Tensor]
    absent: tuple[str, ...] = ()
    prepare_seconds: float = 0.0
    order: tuple[str, ...] = ()
    #: The safetensors dtype name the preparation built ``emotion_adv`` in
    #: (a fork may build it in T3's bfloat16); ``None``: as upstream does, in
    #: the default dtype.
    exaggeration_dtype: str | None = None
    #: Whether the preparing method returned the state it set (forks return
    #: ``self.conds``); upstream's return ``None``.
    returns_state: bool = False
    nbytes: int = field(init=False, repr=False, compare=False)

    # prefix -> [(key, how to copy its tensor or None)], worked out once:
    # copies() runs on every hit.
    _groups: dict[str, list[tuple[str, Copier | None]]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not self.order:
            object.__setattr__(self, "order", (*self.tensors, *self.absent))
        elif sorted(self.order) != sorted((*self.tensors, *self.absent)):
            raise ValueError(f"order {self.order} does not list each field exactly once")
        total = sum(t.numel() * t.element_size() for t in self.tensors.values())
        object.__setattr__(self, "nbytes", total)
        groups: dict[str, list[tuple[str, Copier | None]]] = {}
        for name in self.order:
            prefix, _, key = name.partition(".")
            tensor = self.tensors.get(name)
            groups.setdefault(prefix, []).append((key, None if tensor is None else copier(tensor)))
        object.__setattr__(self, "_groups", groups)
        if self.exaggeration_dtype is not None and self.exaggeration_dtype not in FLOAT_DTYPES:
            raise ValueError(f"exaggeration_dtype {self.exaggeration_dtype!r} is not a float dtype")

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field name, tensors and absent ones, in the order they were captured."""
        return self.order

    def copiers(self, prefix: str) -> list[tuple[str, Copier | None]]:
        """How to copy each field under ``prefix``, in captured order (``None``: absent)."""
        return self._groups.get(prefix, [])

    def copies(self, prefix: str, device: torch.device | str) -> dict[str, Any]:
        """Fresh copies of the fields under ``prefix``, on ``device``, in captured order."""
        return fresh_copies(self.copiers(prefix), device)


@functools.cache
def _dtype_names() -> dict[torch.dtype, str]:
    import torch

    return {
        torch.float64: "F64",
        torch.float32: "F32",
        torch.float16: "F16",
        torch.bfloat16: "BF16",
        torch.int64: "I64",
        torch.int32: "I32",
        torch.int16: "I16",
        torch.int8: "I8",
        torch.uint8: "U8",
        torch.bool: "BOOL",
    }


def safetensors_dtype(dtype: torch.dtype) -> str | None:
    """The safetensors name of ``dtype`` (``"F32"``...); ``None`` if entries cannot hold it."""
    return _dtype_names().get(dtype)


@functools.cache
def _torch_dtypes() -> dict[str, torch.dtype]:
    return {name: dtype for dtype, name in _dtype_names().items()}


def schema_problem_of(entry: Entry) -> str | None:
    """Why ``entry`` is not a preparation the cache can store (see :mod:`.schema`)."""
    spec: dict[str, FieldSpec] = dict.fromkeys(entry.absent)
    for name, tensor in entry.tensors.items():
        dtype = safetensors_dtype(tensor.dtype)
        if dtype is None:
            return f"{name} is a {tensor.dtype} tensor, which entries cannot hold"
        spec[name] = (dtype, tensor.dim())
    return schema_problem(spec)


def _capture(
    prefix: str, values: Mapping[str, Any], skip: str | None = None
) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    import torch

    tensors: dict[str, torch.Tensor] = {}
    absent: list[str] = []
    order: list[str] = []
    for key, value in values.items():
        if key == skip:
            continue
        name = f"{prefix}.{key}"
        order.append(name)
        if value is None:
            absent.append(name)
        elif torch.is_tensor(value):
            # A copy in host memory, whatever the model's device: the memory
            # budget is RAM, never VRAM. Made outside inference mode, it is a
            # plain tensor with no autograd history, whatever the original was.
            tensors[name] = value.detach().to(device=HOST, copy=True)
        else:
            raise UncacheableError(f"{name} is a {type(value).__name__}, not a tensor or None")
    return tensors, absent, order


def _checked(entry: Entry) -> Entry:
    problem = schema_problem_of(entry)
    if problem is not None:
        raise UncacheableError(problem)
    return entry


def entry_from_conditionals(
    conds: Any, prepare_seconds: float = 0.0, returned: Any = None, exaggeration: Any = 0.5
) -> Entry:
    """Capture a ``Conditionals`` (``t3`` + ``gen``) without its exaggeration, in host memory.

    ``returned`` is what the preparing method returned: ``None`` or ``conds``
    itself; ``exaggeration`` is what it was given (upstream's default if not
    said). Raises :class:`UncacheableError` unless it has exactly the fields
    upstream's has, and for any other return value (a hit could not give it back).
    """
    t3_tensors, t3_absent, t3_order = _capture("t3", vars(conds.t3), skip=_EXAGGERATION_FIELD)
    gen_tensors, gen_absent, gen_order = _capture("gen", conds.gen)
    return _checked(
        Entry(
            {**t3_tensors, **gen_tensors},
            (*t3_absent, *gen_absent),
            prepare_seconds,
            (*t3_order, *gen_order),
            exaggeration_dtype=_exaggeration_dtype(
                vars(conds.t3).get(_EXAGGERATION_FIELD), exaggeration
            ),
            returns_state=_returns_state(conds, returned),
        )
    )


def entry_from_ref_dict(
    ref_dict: Mapping[str, Any],
    prepare_seconds: float = 0.0,
    returned: Any = None,
    _exaggeration: Any = None,
) -> Entry:
    """Capture ``ChatterboxVC.ref_dict``, in host memory (``returned`` as above)."""
    tensors, absent, order = _capture("ref", ref_dict)
    return _checked(
        Entry(
            tensors,
            tuple(absent),
            prepare_seconds,
            tuple(order),
            returns_state=_returns_state(ref_dict, returned),
        )
    )


def _returns_state(state: Any, returned: Any) -> bool:
    if returned is None:
        return False
    if returned is state:
        return True
    raise UncacheableError(
        f"the preparation returned a {type(returned).__name__} besides the state it set, "
        "which a cache hit could not give back"
    )


def _exaggeration_dtype(emotion_adv: Any, exaggeration: Any) -> str | None:
    """The dtype the preparation built ``emotion_adv`` in: ``None`` for upstream's.

    Worked out from what ``exaggeration`` gave, since the result's dtype also
    follows the argument: ``torch.tensor([0.5], dtype=torch.float64)`` times
    float32 ones is float64 upstream too, which says nothing of a later float.
    ``None`` when upstream's ``exaggeration * torch.ones(1, 1, 1)`` gives that
    dtype for this argument; else the one dtype ``ones`` must have been in.
    """
    import torch

    if not torch.is_tensor(emotion_adv):
        return None
    built = emotion_adv.dtype
    if safetensors_dtype(built) not in FLOAT_DTYPES:
        raise UncacheableError(f"t3.emotion_adv is a {built} tensor")
    if _product_dtype(exaggeration, None) == built:
        return None
    fits = [name for name in sorted(FLOAT_DTYPES) if _product_dtype(exaggeration, name) == built]
    if len(fits) != 1:
        raise UncacheableError(
            f"t3.emotion_adv is {built} for exaggeration={exaggeration!r}: no single dtype of "
            "torch.ones(1, 1, 1) gives that, so a hit could not rebuild it for another "
            "exaggeration; pass the exaggeration as a float to cache it"
        )
    return fits[0]


def _product_dtype(exaggeration: Any, dtype: str | None) -> Any:
    """The dtype of ``exaggeration * torch.ones(1, 1, 1, dtype=...)``; ``None`` if it fails."""
    try:
        return _exaggeration_template(exaggeration, dtype).dtype
    except Exception:  # noqa: BLE001 -- an argument torch cannot multiply matches no dtype
        return None


def conditionals_from_entry(
    entry: Entry,
    exaggeration: Any,
    device: torch.device | str,
    conditionals_class: Callable[..., Any],
) -> Any:
    """A fresh ``Conditionals`` with ``exaggeration`` applied, on ``device``.

    The exaggeration tensor is built exactly as upstream builds it, so the
    result is bitwise what ``prepare_conditionals(..., exaggeration=x)`` gives.
    ``T3Cond`` sets its fields in declaration order, and ``gen`` keeps the
    captured key order, so both iterate exactly as upstream's do.
    """
    emotion_adv = _exaggeration_copier(exaggeration, entry.exaggeration_dtype)
    t3 = [*entry.copiers("t3"), (_EXAGGERATION_FIELD, emotion_adv)]
    return conditionals_class(
        _t3_cond_class()(**fresh_copies(t3, device)), entry.copies("gen", device)
    )


_pack_double = struct.Struct("<d").pack
# (kind, bits or value, dtype) -> a host copier of the exaggeration tensor.
_exaggerations: dict[tuple[type, object, str | None], Copier] = {}
_EXAGGERATIONS_KEPT = 256


def _exaggeration_copier(exaggeration: Any, dtype: str | None = None) -> Copier:
    """``emotion_adv`` exactly as the preparation built it, to be copied for each caller.

    ``dtype`` is the one the preparation built it in (a fork may use T3's
    bfloat16): ``exaggeration * torch.ones(1, 1, 1, dtype=...)``, as such forks
    write it; ``None`` builds it as upstream does, in the default dtype.

    Plain ints and floats (not bools, subclasses, numpy or torch scalars) are
    remembered by kind and bit pattern: ``0.0 == -0.0`` and ``1 == 1.0``, but
    their tensors differ in bits or may differ in rounding. NaN is never
    remembered (it equals nothing, so it would only fill the memo). Upstream
    multiplies on the host and then moves the result, so the template is made
    on the host too.

    >>> import torch
    >>> torch.equal(_exaggeration_copier(0.7).tensor, 0.7 * torch.ones(1, 1, 1))
    True
    >>> _exaggeration_copier(0.7, "BF16").tensor.dtype
    torch.bfloat16
    """
    if dtype is None:
        # Named, not left to the template: a memo made under one default
        # dtype must not serve a call under another.
        dtype = _default_dtype_name()
    kind = type(exaggeration)
    if kind is float and not math.isnan(exaggeration):
        memo_key: tuple[type, object, str | None] = (kind, _pack_double(exaggeration), dtype)
    elif kind is int:
        memo_key = (kind, exaggeration, dtype)
    else:
        return Copier(_exaggeration_template(exaggeration, dtype))
    found = _exaggerations.get(memo_key)
    if found is None:
        with _exaggerations_lock:
            if len(_exaggerations) >= _EXAGGERATIONS_KEPT:
                _exaggerations.clear()
            # Never handed out itself: callers get copies.
            found = _exaggerations[memo_key] = copier(_exaggeration_template(exaggeration, dtype))
    return found


_exaggerations_lock = threading.Lock()
# A thread of the parent filling the memo when it forked does not exist in the child.
renew_after_fork(sys.modules[__name__], _exaggerations_lock=threading.Lock)


def _default_dtype_name() -> str | None:
    import torch

    return safetensors_dtype(torch.get_default_dtype())


def _exaggeration_template(exaggeration: Any, dtype: str | None) -> torch.Tensor:
    import torch

    if dtype is None:
        template: torch.Tensor = exaggeration * torch.ones(1, 1, 1)
    else:
        template = exaggeration * torch.ones(1, 1, 1, dtype=_torch_dtypes()[dtype])
    return template


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
