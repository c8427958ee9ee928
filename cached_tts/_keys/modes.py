"""The numeric modes and module structure a voice is prepared under.

Both are parts of a key's settings (see :func:`cached_tts._keys.key.settings_state`).

**Numeric modes** are process- or thread-wide switches that change the
arithmetic preparation runs, so that the plain model computes other bits (or
raises) under them:

* autocast, on the CPU and on the model's device (``torch.autocast``): under
  CPU bfloat16 autocast VC's prompt tokens differ and its embedding comes back
  in bfloat16, and the TTS classes' preparation raises;
* ``torch.get_float32_matmul_precision()`` and the TF32 switches
  ``torch.backends.cuda.matmul.allow_tf32`` and
  ``torch.backends.cudnn.allow_tf32``;
* cuBLAS's reduced-precision reductions for float16 and bfloat16 matmuls;
* ``torch.get_default_dtype()``, the dtype of tensors made without one.

A key names only the modes that are not at torch's default: a key made under
the defaults names none of them. Switches that only choose among
kernels computing the same arithmetic are left out:
``torch.use_deterministic_algorithms``, ``cudnn.deterministic``,
``cudnn.benchmark``, the attention backends, the thread count. So is
``torch.set_flush_denormal``, which torch offers no way to read.

**Module structure** is what an in-place change of a preparation module can
change without touching its first parameter, which is all that a lookup reads
of the dtypes: ``torch.ao.quantization.quantize_dynamic(model.ve,
inplace=True)`` swaps the VoiceEncoder's LSTM and Linear for quantized ones
and keeps the module and its first parameter. :func:`module_structure` names
the class of every submodule and the dtype of every parameter and buffer. A
walk takes about 1 ms, too long for a hit, so it is redone only after torch
registered a module, parameter or buffer anywhere in the process (counted by
:func:`structure_generation` through torch's global registration hooks):
swapping a submodule by ``setattr``, quantizing, fusing, adding a
parametrization or a LoRA layer all register one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "Structure",
    "mode_settings",
    "module_structure",
    "numeric_modes",
    "structure_generation",
]

# Each mode numeric_modes reads, in order, with torch's default rendered as a
# setting would render it: a mode at its default is left out of the key.
_MODES = (
    ("float32_matmul_precision", "highest"),
    ("cuda.matmul.allow_tf32", "False"),
    ("cudnn.allow_tf32", "True"),
    ("cuda.matmul.allow_fp16_reduced_precision_reduction", "True"),
    ("cuda.matmul.allow_bf16_reduced_precision_reduction", "True"),
    ("default_dtype", "torch.float32"),
)


def numeric_modes(device: str) -> tuple[Any, ...]:
    """The numeric modes in force in this thread, for a model on ``device``.

    The first item holds ``(device type, dtype)`` for each autocast in force
    on the CPU or on the model's device; the others follow ``_MODES``. Read on
    every lookup, so torch's C getters are called directly (under 1 µs; the
    public ``torch.backends`` attributes take 1 µs each).

    >>> import torch
    >>> numeric_modes("cpu")[0]
    ()
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     numeric_modes("cpu")[0]
    (('cpu', torch.bfloat16),)
    """
    readers = _readers or _load_readers()
    any_autocast, precision, tf32, cudnn_tf32, fp16, bf16, default_dtype = readers
    return (
        _autocast(device) if any_autocast() else (),
        precision(),
        tf32(),
        cudnn_tf32(),
        fp16(),
        bf16(),
        default_dtype(),
    )


def _autocast(device: str) -> tuple[tuple[str, Any], ...]:
    import torch

    device_type = device.partition(":")[0]
    types = ("cpu",) if device_type == "cpu" else ("cpu", device_type)
    return tuple(
        (name, torch.get_autocast_dtype(name)) for name in types if torch.is_autocast_enabled(name)
    )


_readers: tuple[Callable[[], Any], ...] = ()


def _load_readers() -> tuple[Callable[[], Any], ...]:
    """The getters of the modes: torch's C ones, or the public ones where those are missing."""
    global _readers  # noqa: PLW0603 -- resolved once per process
    import torch

    backends = torch.backends

    def c_getter(name: str, public: Callable[[], Any]) -> Callable[[], Any]:
        found = getattr(torch._C, name, None)
        return found if callable(found) else public

    _readers = (
        c_getter("_is_any_autocast_enabled", lambda: True),  # True: ask each device
        c_getter("_get_float32_matmul_precision", torch.get_float32_matmul_precision),
        c_getter("_get_cublas_allow_tf32", lambda: backends.cuda.matmul.allow_tf32),
        c_getter("_get_cudnn_allow_tf32", lambda: backends.cudnn.allow_tf32),
        c_getter(
            "_get_cublas_allow_fp16_reduced_precision_reduction",
            lambda: backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
        ),
        c_getter(
            "_get_cublas_allow_bf16_reduced_precision_reduction",
            lambda: backends.cuda.matmul.allow_bf16_reduced_precision_reduction,
        ),
        torch.get_default_dtype,
    )
    return _readers


def mode_settings(modes: tuple[Any, ...]) -> list[tuple[str, str]]:
    """The settings that name the modes of :func:`numeric_modes` other than torch's defaults.

    >>> import torch
    >>> mode_settings(numeric_modes("cpu"))
    []
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     mode_settings(numeric_modes("cpu"))
    [('mode:autocast:cpu', 'torch.bfloat16')]
    """
    autocast, *switches = modes
    found = [(f"mode:autocast:{device}", str(dtype)) for device, dtype in autocast]
    for (name, default), value in zip(_MODES, switches, strict=True):
        if str(value) != default:
            found.append((f"mode:{name}", str(value)))
    return found


# -- structure -------------------------------------------------------------------

_generation = [0]
_hooks_installed = False


def _registered(*_args: Any) -> None:
    # A lost increment under a race still leaves the count changed.
    _generation[0] += 1


def structure_generation() -> int:
    """A count that changes whenever torch registers a module, parameter or buffer.

    >>> import torch
    >>> before = structure_generation()
    >>> _ = torch.nn.Linear(2, 2)
    >>> structure_generation() != before
    True
    """
    if not _hooks_installed:
        _install_hooks()
    return _generation[0]


def _install_hooks() -> None:
    global _hooks_installed  # noqa: PLW0603 -- installed once per process
    from torch.nn.modules import module

    # No lock: two threads that both install only make each registration
    # count twice, and the count still changes.
    module.register_module_module_registration_hook(_registered)
    module.register_module_parameter_registration_hook(_registered)
    module.register_module_buffer_registration_hook(_registered)
    _hooks_installed = True


Structure = tuple[tuple[Any, ...], str]


def module_structure(
    modules: Iterable[torch.nn.Module], known: Structure | None = None
) -> Structure:
    """The class of every submodule and the dtype of every tensor it holds, and their digest.

    The digest is what a key names; it is recomputed only if the walk differs
    from ``known``, an earlier result (a walk takes a few ms, a digest more).

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    >>> before = module_structure([model])
    >>> module_structure([model], before) is before
    True
    >>> model[0] = torch.nn.Identity()
    >>> module_structure([model], before)[1] != before[1]
    True
    """
    shape = _shape(modules)
    if known is not None and known[0] == shape:
        return known
    text = ";".join(
        f"{part.__module__}.{part.__qualname__}" if isinstance(part, type) else str(part)
        for part in shape
    )
    return shape, hashlib.sha256(text.encode()).hexdigest()


def _shape(modules: Iterable[torch.nn.Module]) -> tuple[Any, ...]:
    # Depth first, each module as its class, its parameters' and buffers'
    # dtypes and its number of children, so that the sequence is unambiguous.
    parts: list[Any] = []
    stack = list(modules)
    stack.reverse()
    while stack:
        module = stack.pop()
        parameters, buffers, children = module._parameters, module._buffers, module._modules
        parts.append(type(module))
        parts.append(
            tuple([None if p is None else p.dtype for p in parameters.values()])
            if parameters
            else ()
        )
        parts.append(
            tuple([None if b is None else b.dtype for b in buffers.values()]) if buffers else ()
        )
        parts.append(len(children))
        if children:
            stack.extend(reversed([child for child in children.values() if child is not None]))
    return tuple(parts)
