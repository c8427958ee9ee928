"""Test Chatterbox code without downloading weights.

This module builds the real Chatterbox architecture with random weights and
writes synthetic voice clips, so that your CI can exercise code that uses
cached-tts (or plain chatterbox) offline. Preparing a voice costs what it costs
with real weights; the audio that ``generate`` makes is noise.

* T3 gets a registered 1-layer Llama (or GPT-2, for Turbo) config: its hidden
  size stays 1024, which the perceiver hard-codes. ``generate`` is kept short
  by capping T3's new tokens.
* ``S3Gen`` and ``VoiceEncoder`` are the full modules.
* The text tokenizer is a small character-level one.
* Everything is seeded: the same seed gives bitwise the same weights.

To test code that loads models from files instead, :func:`write_checkpoint`
writes a full-size random-weight checkpoint that upstream's ``from_local``
loads, and :func:`write_hub_cache` lays one out as an offline Hugging Face
cache for an unmodified ``from_pretrained`` (inside :func:`offline_hub`).

>>> import tempfile, pathlib
>>> clip = write_voice_clip(pathlib.Path(tempfile.mkdtemp()) / "voice.wav", seconds=1.0)
>>> clip.suffix, clip.stat().st_size > 40_000
('.wav', True)
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import torch

from cached_tts._entries.format import stride_order
from cached_tts.testing.checkpoints import (
    char_tokenizer_json,
    offline_hub,
    t3_config,
    write_checkpoint,
    write_hub_cache,
)

__all__ = [
    "RandomComponents",
    "assert_same_conditionals",
    "assert_same_tensors",
    "offline_hub",
    "random_components",
    "random_model",
    "write_checkpoint",
    "write_hub_cache",
    "write_voice_clip",
]

Variant = Literal["english", "multilingual", "turbo"]

TINY_LLAMA = "cached_tts_tiny_llama"
TINY_GPT2 = "cached_tts_tiny_gpt2"

#: Sample rate of the clips :func:`write_voice_clip` writes (S3Gen's rate).
CLIP_SAMPLE_RATE = 24_000


@dataclass
class RandomComponents:
    """The modules of one random-weight Chatterbox model, shareable by several models."""

    variant: Variant
    t3: Any
    s3gen: Any
    ve: Any
    tokenizer: Any


def _register_tiny_configs() -> None:
    from chatterbox.models.t3.llama_configs import LLAMA_CONFIGS

    if TINY_LLAMA not in LLAMA_CONFIGS:
        LLAMA_CONFIGS[TINY_LLAMA] = {**LLAMA_CONFIGS["Llama_520M"], "num_hidden_layers": 1}
    if TINY_GPT2 not in LLAMA_CONFIGS:
        LLAMA_CONFIGS[TINY_GPT2] = {**LLAMA_CONFIGS["GPT2_medium"], "n_layer": 1}


def _t3_config(variant: Variant) -> Any:
    """The config ``variant``'s ``from_local`` uses, with a 1-layer transformer."""
    hp = t3_config(variant)
    hp.llama_config_name = TINY_GPT2 if variant == "turbo" else TINY_LLAMA
    return hp


def random_components(
    variant: Variant = "english",
    *,
    seed: int = 0,
    max_new_tokens: int = 30,
    device: str = "cpu",
) -> RandomComponents:
    """Build the real architecture of a Chatterbox model with seeded random weights.

    Building ``S3Gen`` takes a few seconds on a CPU: build once, share widely.
    """
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.voice_encoder import VoiceEncoder

    _register_tiny_configs()
    torch.manual_seed(seed)
    t3 = T3(_t3_config(variant)).to(device).eval()
    _cap_new_tokens(t3, max_new_tokens)
    s3gen = S3Gen(meanflow=variant == "turbo").to(device).eval()
    ve = VoiceEncoder().to(device).eval()
    return RandomComponents(variant, t3, s3gen, ve, _char_tokenizer())


def random_model(
    cls: type | None = None,
    *,
    components: RandomComponents | None = None,
    device: str = "cpu",
    **kwargs: Any,
) -> Any:
    """A model of ``cls`` (default: ``CachedChatterboxTTS``) on random weights.

    Works for any Chatterbox TTS or VC class, cached or plain; ``kwargs`` go
    to the constructor (``cache=``, ``model_id=``...).
    """
    if cls is None:
        from cached_tts._wrapping.models import CachedChatterboxTTS

        cls = CachedChatterboxTTS
    if components is None:
        components = random_components(_variant_of(cls), device=device)
    if hasattr(cls, "set_target_voice"):
        return cls(components.s3gen, device, **kwargs)
    c = components
    return cls(c.t3, c.s3gen, c.ve, c.tokenizer, device, **kwargs)


def with_other_voice_encoder(components: RandomComponents, *, seed: int) -> RandomComponents:
    """The same components with a differently seeded ``VoiceEncoder``.

    A cheap way to get a model whose preparation weights differ.
    """
    from chatterbox.models.voice_encoder import VoiceEncoder

    torch.manual_seed(seed)
    ve = VoiceEncoder().to(components.ve.proj.weight.device).eval()
    return RandomComponents(
        components.variant, components.t3, components.s3gen, ve, components.tokenizer
    )


def _variant_of(cls: type) -> Variant:
    names = {c.__name__ for c in cls.__mro__}
    if "ChatterboxTurboTTS" in names:
        return "turbo"
    if "ChatterboxMultilingualTTS" in names:
        return "multilingual"
    return "english"


def _cap_new_tokens(t3: Any, cap: int) -> None:
    """Keep generation short on a CPU: random weights never emit a stop token."""
    inference, inference_turbo = t3.inference, t3.inference_turbo

    def capped(*args: Any, max_new_tokens: int | None = None, **kwargs: Any) -> Any:
        return inference(*args, max_new_tokens=min(cap, max_new_tokens or cap), **kwargs)

    def capped_turbo(*args: Any, max_gen_len: int = cap, **kwargs: Any) -> Any:
        return inference_turbo(*args, max_gen_len=min(cap, max_gen_len), **kwargs)

    t3.inference, t3.inference_turbo = capped, capped_turbo


def _char_tokenizer() -> Any:
    """A character-level tokenizer that fits every Chatterbox text interface."""
    from chatterbox.models.tokenizers import EnTokenizer

    class CharTokenizer(EnTokenizer):  # type: ignore[misc]
        def text_to_tokens(self, text: str, **_language: Any) -> torch.Tensor:
            # The multilingual model passes language_id and normalization flags.
            return super().text_to_tokens(text)  # type: ignore[no-any-return]

        def __call__(self, text: str, **_options: Any) -> SimpleNamespace:
            # Turbo calls a Hugging Face tokenizer this way.
            return SimpleNamespace(input_ids=self.text_to_tokens(text).long())

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tokenizer.json"
        path.write_text(char_tokenizer_json(), encoding="utf-8")
        return CharTokenizer(str(path))


def write_voice_clip(
    path: str | Path,
    *,
    seconds: float = 2.5,
    seed: int = 0,
    sample_rate: int = CLIP_SAMPLE_RATE,
) -> Path:
    """Write a deterministic, voice-like 16-bit WAV clip and return its path.

    A harmonic tone whose pitch glides and wobbles, with syllable-like
    loudness and a little breath noise; ``seed`` picks the "speaker".
    """
    import soundfile

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = rng.uniform(95, 230) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(3, 6) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 9))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(2.5, 4.5) * t) ** 2
    wave = 0.25 * harmonics * syllables + 0.01 * rng.standard_normal(t.size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, wave.astype(np.float32), sample_rate, subtype="PCM_16")
    return path


def assert_same_tensors(actual: Any, expected: Any, *, where: str = "value") -> None:
    """Assert two values are bitwise equal tensors (or both ``None``).

    Dtype, shape, device, memory order and every byte must match.
    """
    if expected is None or actual is None:
        assert actual is expected, f"{where}: {actual!r} != {expected!r}"  # noqa: S101
        return
    assert torch.is_tensor(actual), f"{where}: {type(actual).__name__} is not a tensor"  # noqa: S101
    assert torch.is_tensor(expected), f"{where}: expected a tensor"  # noqa: S101
    same_meta = (actual.dtype, actual.shape, actual.device) == (
        expected.dtype,
        expected.shape,
        expected.device,
    )
    assert same_meta, (  # noqa: S101
        f"{where}: {actual.dtype} {tuple(actual.shape)} {actual.device} != "
        f"{expected.dtype} {tuple(expected.shape)} {expected.device}"
    )
    assert _layout(actual) == _layout(expected), f"{where}: layouts differ"  # noqa: S101
    a = actual.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
    e = expected.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
    assert torch.equal(a, e), f"{where}: bytes differ"  # noqa: S101


def assert_same_conditionals(actual: Any, expected: Any) -> None:
    """Assert two ``Conditionals`` (or two VC ``ref_dict`` mappings) are bitwise equal."""
    if isinstance(expected, Mapping):
        _assert_same_mapping(actual, expected, "ref_dict")
        return
    _assert_same_mapping(vars(actual.t3), vars(expected.t3), "t3")
    _assert_same_mapping(actual.gen, expected.gen, "gen")


def _assert_same_mapping(
    actual: Mapping[str, Any], expected: Mapping[str, Any], where: str
) -> None:
    assert set(actual) == set(expected), f"{where}: {sorted(actual)} != {sorted(expected)}"  # noqa: S101
    for name in expected:
        assert_same_tensors(actual[name], expected[name], where=f"{where}.{name}")


def _layout(tensor: torch.Tensor) -> list[int]:
    # Dimensions of size 1 have no meaningful stride.
    return [d for d in stride_order(tensor) if tensor.shape[d] > 1]
