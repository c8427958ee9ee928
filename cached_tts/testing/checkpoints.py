"""Random-weight Chatterbox checkpoints that upstream's loaders read unmodified.

:func:`write_checkpoint` writes the files a ``from_local`` folder holds;
:func:`write_hub_cache` lays them out as an offline Hugging Face hub cache, so
that an unmodified ``from_pretrained`` loads them; :func:`offline_hub` points
``huggingface_hub`` at such a cache for a block of code.

Shapes come from the modules upstream's loader builds. T3 is built on the
``meta`` device (no memory, no initialisation), and each of its matrices is a
window, at a seeded random offset, of a seeded pool of 4M random numbers,
scaled like torch's default initialisation: drawing 532M numbers one by one
would take longer than the rest of the write. ``S3Gen`` and ``VoiceEncoder``
are built for real, seeded, because their buffers (mel filters, batch-norm
statistics) must hold real values. Parameters are stored in float16, which
halves the files; ``load_state_dict`` converts them back to float32.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

__all__ = [
    "CheckpointKind",
    "char_tokenizer_json",
    "offline_hub",
    "t3_config",
    "write_checkpoint",
    "write_hub_cache",
]

CheckpointKind = Literal["english", "multilingual", "turbo"]

#: Ids below this are speech tokens the S3 tokenizer can emit.
_SPEECH_VOCAB = 6561
# A 10 s reference, the longest upstream uses: 25 tokens and 50 mel frames a second.
_PROMPT_TOKENS = 250
_MATRIX = 2
_POOL_SIZE = 1 << 22
_TURBO_VOCAB = 50276
_TURBO_EOS = "<|endoftext|>"
# The language tags the multilingual tokenizer puts before the text.
_LANGUAGE_CODES = "ar da de el en es fi fr he hi it ja ko ms nl no pl pt ru sv sw tr zh".split()  # noqa: SIM905


@dataclass(frozen=True)
class _Layout:
    """Where one kind of checkpoint keeps its files, as its ``from_local`` reads them."""

    repo_id: str
    ve: str
    t3: str
    s3gen: str
    tokenizer: str
    meanflow: bool = False


_LAYOUTS: dict[str, _Layout] = {
    "english": _Layout(
        "ResembleAI/chatterbox",
        "ve.safetensors",
        "t3_cfg.safetensors",
        "s3gen.safetensors",
        "tokenizer.json",
    ),
    "multilingual": _Layout(
        "ResembleAI/chatterbox",
        "ve.pt",
        "t3_mtl23ls_v2.safetensors",
        "s3gen.pt",
        "grapheme_mtl_merged_expanded_v1.json",
    ),
    "turbo": _Layout(
        "ResembleAI/chatterbox-turbo",
        "ve.safetensors",
        "t3_turbo_v1.safetensors",
        "s3gen_meanflow.safetensors",
        "tokenizer.json",
        meanflow=True,
    ),
}


def write_checkpoint(
    folder: str | Path, kind: CheckpointKind = "english", *, seed: int = 0
) -> Path:
    """Write a complete random-weight checkpoint of ``kind`` into ``folder``.

    ``kind`` is ``"english"`` (for ``ChatterboxTTS``), ``"multilingual"``
    (``ChatterboxMultilingualTTS``) or ``"turbo"`` (``ChatterboxTurboTTS``);
    that class's upstream ``from_local(folder, device)`` loads the folder
    unmodified: full-size weights (the 520M-parameter T3 for English), the
    tokenizer files and a random built-in voice (``conds.pt``). The same
    ``seed`` gives the same weights. English and multilingual take about
    1.6 GB; writing takes some seconds, loading as long as real weights.
    The audio the loaded model generates is noise.

    >>> import tempfile
    >>> from chatterbox.tts import ChatterboxTTS
    >>> folder = write_checkpoint(tempfile.mkdtemp(), seed=0)  # doctest: +SKIP
    >>> model = ChatterboxTTS.from_local(folder, "cpu")  # doctest: +SKIP
    >>> model.prepare_conditionals("voice.wav")  # doctest: +SKIP
    """
    layout = _layout(kind)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hp = t3_config(kind)
    with torch.random.fork_rng(devices=[]):
        _save(folder / layout.ve, _built_state("ve", seed))
        _save(
            folder / layout.s3gen,
            _built_state("s3gen_meanflow" if layout.meanflow else "s3gen", seed),
        )
    _save(folder / layout.t3, _t3_state(hp, seed))
    _write_tokenizer(folder, kind, layout)
    _write_builtin_voice(folder / "conds.pt", hp.speech_cond_prompt_len, seed)
    return folder


def write_hub_cache(
    hf_home: str | Path, kind: CheckpointKind = "english", *, seed: int = 0
) -> Path:
    """Lay a random-weight checkpoint out as an offline Hugging Face hub cache.

    Writes ``hf_home/hub/models--<owner>--<name>/snapshots/<rev>/`` and
    ``refs/main``, the layout ``huggingface_hub`` downloads into, and returns
    the snapshot folder. With ``HF_HOME=hf_home`` (or ``HF_HUB_CACHE=hf_home/hub``)
    and ``HF_HUB_OFFLINE=1`` set before Python starts, or inside
    :func:`offline_hub`, an unmodified ``ChatterboxTTS.from_pretrained("cpu")``
    loads it (``ChatterboxTurboTTS`` for ``kind="turbo"``, whose repository
    is ``ResembleAI/chatterbox-turbo``). English and multilingual share
    ``ResembleAI/chatterbox``: write both into the same ``hf_home`` to have both.

    >>> import tempfile
    >>> from chatterbox.tts import ChatterboxTTS
    >>> home = tempfile.mkdtemp()
    >>> snapshot = write_hub_cache(home, "english", seed=0)  # doctest: +SKIP
    >>> with offline_hub(home):  # doctest: +SKIP
    ...     model = ChatterboxTTS.from_pretrained("cpu")
    """
    layout = _layout(kind)
    owner, name = layout.repo_id.split("/")
    repo = Path(hf_home) / "hub" / f"models--{owner}--{name}"
    # A fixed, made-up commit hash: the hub only needs refs/main to name it.
    revision = hashlib.sha1(f"cached-tts random weights, seed {seed}".encode()).hexdigest()  # noqa: S324
    snapshot = write_checkpoint(repo / "snapshots" / revision, kind, seed=seed)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision, encoding="ascii")
    return snapshot


@contextmanager
def offline_hub(hf_home: str | Path) -> Iterator[Path]:
    """Point ``huggingface_hub`` at the cache in ``hf_home``, offline, for a block.

    ``huggingface_hub`` reads ``HF_HOME``, ``HF_HUB_CACHE`` and
    ``HF_HUB_OFFLINE`` once, at import; this sets both the environment (for
    child processes) and the imported constants, and restores both on exit.
    Yields the hub cache folder.

    >>> import os, tempfile
    >>> with offline_hub(tempfile.gettempdir()) as hub:
    ...     os.environ["HF_HUB_OFFLINE"], hub.name
    ('1', 'hub')
    """
    from huggingface_hub import constants

    home = Path(hf_home).resolve()
    hub = home / "hub"
    values = {"HF_HOME": str(home), "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1"}
    saved_env = {name: os.environ.get(name) for name in values}
    saved_constants = {name: getattr(constants, name) for name in values}
    os.environ.update(values)
    constants.HF_HOME, constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE = str(home), str(hub), True
    try:
        yield hub
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for name, value in saved_constants.items():
            setattr(constants, name, value)


def _layout(kind: str) -> _Layout:
    try:
        return _LAYOUTS[kind]
    except KeyError:
        known = ", ".join(repr(k) for k in _LAYOUTS)
        raise ValueError(f"No random checkpoint of kind {kind!r}; use one of {known}.") from None


def t3_config(kind: str) -> Any:
    """The ``T3Config`` that ``kind``'s ``from_local`` builds its T3 with."""
    from chatterbox.models.t3.modules.t3_config import T3Config

    if kind == "english":
        return T3Config()
    if kind == "multilingual":
        return T3Config.multilingual()
    hp = T3Config(text_tokens_dict_size=50276)  # as ChatterboxTurboTTS.from_local sets it
    hp.llama_config_name = "GPT2_medium"
    hp.speech_tokens_dict_size = 6563
    hp.input_pos_emb = None
    hp.speech_cond_prompt_len = 375
    hp.use_perceiver_resampler = False
    hp.emotion_adv = False
    return hp


def _write_tokenizer(folder: Path, kind: str, layout: _Layout) -> None:
    if kind == "turbo":
        # Turbo reads a Hugging Face tokenizer of exactly 50276 tokens.
        (folder / layout.tokenizer).write_text(_turbo_tokenizer_json(), encoding="utf-8")
        config = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": _TURBO_EOS}
        (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
        return
    (folder / layout.tokenizer).write_text(char_tokenizer_json(), encoding="utf-8")
    if kind == "multilingual":
        # Upstream reads it for Chinese; an empty mapping leaves text as it is.
        (folder / "Cangjie5_TC.json").write_text("[]", encoding="utf-8")


def _turbo_tokenizer_json() -> str:
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    tokens = [_TURBO_EOS, *(chr(c) for c in range(32, 127))]
    tokens += [f"<|unused{i}|>" for i in range(len(tokens), _TURBO_VOCAB)]
    tokenizer = Tokenizer(
        models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token=_TURBO_EOS)
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return str(tokenizer.to_str())


def _t3_state(hp: Any, seed: int) -> dict[str, torch.Tensor]:
    """T3's state dict with seeded random float16 values, without building T3."""
    from chatterbox.models.t3 import T3

    with torch.device("meta"):
        shapes = {name: t.shape for name, t in T3(hp).state_dict().items()}
    generator = torch.Generator().manual_seed(seed)
    # Drawing 532M numbers one by one takes over 10 s here; each tensor is
    # instead a window of a seeded pool of random numbers, at a random offset.
    pool = torch.empty(_POOL_SIZE).uniform_(-1, 1, generator=generator)
    scaled: dict[int, torch.Tensor] = {}
    state = {}
    for name, shape in shapes.items():
        if len(shape) < _MATRIX:  # norms start at one, biases at zero
            state[name] = torch.full(shape, 0.0 if name.endswith("bias") else 1.0).half()
            continue
        # Matrices at +-1/sqrt(fan_in), like torch's default initialisation,
        # so that activations stay finite.
        fan_in = math.prod(shape[1:])
        if fan_in not in scaled:
            scaled[fan_in] = (pool / math.sqrt(fan_in)).half()
        start = int(torch.randint(_POOL_SIZE, (1,), generator=generator))
        state[name] = _window(scaled[fan_in], start, shape)
    return state


def _window(pool: torch.Tensor, start: int, shape: torch.Size) -> torch.Tensor:
    """``prod(shape)`` values of ``pool`` from ``start`` on, wrapping around."""
    out = torch.empty(math.prod(shape), dtype=pool.dtype)
    done = 0
    while done < len(out):
        step = min(len(out) - done, len(pool) - start)
        out[done : done + step] = pool[start : start + step]
        done, start = done + step, 0
    return out.reshape(shape)


def _built_state(which: str, seed: int) -> dict[str, torch.Tensor]:
    """The state dict of a really built, seeded module; parameters in float16."""
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.voice_encoder import VoiceEncoder

    torch.manual_seed(seed)  # the caller forks the RNG, so this stays local
    module = VoiceEncoder() if which == "ve" else S3Gen(meanflow=which == "s3gen_meanflow")
    parameters = {name for name, _ in module.named_parameters()}
    return {
        name: (tensor.half() if name in parameters else tensor).contiguous()
        for name, tensor in module.state_dict().items()
    }


def _save(path: Path, state: dict[str, torch.Tensor]) -> None:
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, path)
    else:
        torch.save(state, path)


def char_tokenizer_json() -> str:
    """A character-level ``tokenizers`` JSON that fits Chatterbox's text interfaces.

    Every id is below 256, the start token: inside every T3 text vocabulary.

    >>> import json
    >>> vocab = json.loads(char_tokenizer_json())["model"]["vocab"]
    >>> vocab["[START]"], vocab["[STOP]"], vocab["[SPACE]"], vocab["[fr]"]
    (255, 0, 2, 10)
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    # ASCII, common accented letters, and the combining accents that the
    # multilingual tokenizer's NFKD normalisation splits letters into.
    chars = [chr(c) for c in (*range(33, 127), *range(0x300, 0x370))]
    chars += list("àâçéèêëîïôûùüÿñæœäöß")
    languages = [f"[{code}]" for code in _LANGUAGE_CODES]
    tokens = ["[STOP]", "[UNK]", "[SPACE]", *languages, *chars]
    # Ids up to the start token (255) are filled so the vocabulary has no holes.
    tokens += [f"[UNUSED{i}]" for i in range(len(tokens), 255)] + ["[START]"]
    vocab = {token: i for i, token in enumerate(tokens)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))  # noqa: S106 (a token, not a password)
    special = r"\[(?:[A-Z]+|[a-z]{2})\]"  # [SPACE], [UNK]... and language tags like [fr]
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(f"{special}|."), behavior="isolated")
    return str(tokenizer.to_str())


def _write_builtin_voice(path: Path, prompt_len: int, seed: int) -> None:
    """A random built-in voice shaped like a 10 s reference's preparation."""
    from chatterbox.models.t3.modules.cond_enc import T3Cond
    from chatterbox.tts import Conditionals

    g = torch.Generator().manual_seed(seed)
    speaker = torch.randn(1, 256, generator=g).abs()
    t3 = T3Cond(
        speaker_emb=speaker / speaker.norm(),
        cond_prompt_speech_tokens=torch.randint(0, _SPEECH_VOCAB, (1, prompt_len), generator=g),
        emotion_adv=0.5 * torch.ones(1, 1, 1),
    )
    gen = {
        "prompt_token": torch.randint(0, _SPEECH_VOCAB, (1, _PROMPT_TOKENS), generator=g),
        "prompt_token_len": torch.tensor([_PROMPT_TOKENS]),
        "prompt_feat": torch.randn(1, 2 * _PROMPT_TOKENS, 80, generator=g),
        "prompt_feat_len": None,
        "embedding": torch.randn(1, 192, generator=g),
    }
    Conditionals(t3, gen).save(path)
