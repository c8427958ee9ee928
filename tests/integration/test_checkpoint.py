"""Random-weight checkpoints that upstream's from_local and from_pretrained load unmodified."""

from __future__ import annotations

import copy
import gc
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from chatterbox.mtl_tts import ChatterboxMultilingualTTS
from chatterbox.tts import ChatterboxTTS
from chatterbox.tts_turbo import ChatterboxTurboTTS
from huggingface_hub import constants
from safetensors.torch import load_file

from cached_tts import CachedChatterboxTTS, ConditionalCache
from cached_tts.testing import (
    assert_same_conditionals,
    assert_same_tensors,
    offline_hub,
    write_checkpoint,
)
from cached_tts.testing.checkpoints import _t3_state

pytestmark = pytest.mark.slow

T3_PARAMETERS = 532_405_248  # the default T3 that from_local builds


@pytest.fixture
def scratch(tmp_path):
    """A folder for one GB-sized checkpoint, removed after the test (pytest keeps tmp_path)."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


def assert_holds_the_checkpoint(model, folder, t3_file):
    """The model runs on the files' weights: full-size T3, its values, a usable voice."""
    assert sum(p.numel() for p in model.t3.parameters()) == T3_PARAMETERS
    on_disk = load_file(folder / t3_file)
    for name in ("tfmr.layers.0.self_attn.q_proj.weight", "speech_head.weight"):
        assert_same_tensors(model.t3.state_dict()[name], on_disk[name].float(), where=name)
    assert_t3_conditions_on(model, model.conds.t3)


def assert_t3_conditions_on(model, t3_cond):
    """T3's condition encoder turns the voice into finite embeddings."""
    # prepare_conditioning writes cond_prompt_speech_emb into what it is given.
    with torch.inference_mode():
        cond = model.t3.prepare_conditioning(copy.deepcopy(t3_cond))
    assert cond.shape[-1] == 1024
    assert torch.isfinite(cond).all()


def assert_reads_text(tokens, model):
    """Text becomes known ids inside T3's vocabulary, with no unknown-token fallback."""
    assert tokens.dim() == 2
    assert tokens.numel() > 5
    assert ((tokens > 1) & (tokens < model.t3.hp.start_text_token)).all()  # 1 is [UNK]


def test_from_pretrained_offline_caches_a_voice_bitwise_as_the_plain_class(
    hub_home, clips, tmp_path
):
    # from_pretrained downloads five files, then calls from_local on their
    # folder: this is also the test that from_local loads write_checkpoint's folder.
    home, snapshot = hub_home
    english = {"ve.safetensors", "t3_cfg.safetensors", "s3gen.safetensors", "tokenizer.json"}
    assert {p.name for p in snapshot.iterdir()} == english | {"conds.pt"}
    with offline_hub(home):
        plain = ChatterboxTTS.from_pretrained("cpu")
    assert plain.conds is not None  # the built-in voice, conds.pt
    assert_reads_text(plain.tokenizer.text_to_tokens("Hello there, world."), plain)
    plain.prepare_conditionals(clips["alice"])
    assert_holds_the_checkpoint(plain, snapshot, "t3_cfg.safetensors")
    expected = plain.conds
    del plain  # two full models at once would need 6 GB
    gc.collect()

    cache = ConditionalCache(tmp_path / "cache")
    with offline_hub(home):
        model = CachedChatterboxTTS.from_pretrained("cpu", cache=cache)
    model.prepare_conditionals(clips["alice"])
    assert_same_conditionals(model.conds, expected)
    model.prepare_conditionals(clips["alice"])

    assert_same_conditionals(model.conds, expected)
    stats = cache.stats()
    assert (stats.misses, stats.memory_hits) == (1, 1)


def test_a_new_process_finds_the_files_through_hf_home_and_hf_hub_offline(hub_home):
    home, snapshot = hub_home
    environment = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    environment.pop("HF_HUB_CACHE", None)
    script = (
        "from huggingface_hub import hf_hub_download;"
        "print(hf_hub_download(repo_id='ResembleAI/chatterbox', filename='t3_cfg.safetensors'))"
    )

    found = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True
    )

    assert Path(found.stdout.strip()) == snapshot / "t3_cfg.safetensors"


def test_the_multilingual_checkpoint_loads_with_upstreams_from_local(scratch, monkeypatch):
    folder = write_checkpoint(scratch / "mtl", "multilingual", seed=0)
    # Upstream's tokenizer downloads a Chinese segmenter model when spacy_pkuseg
    # is importable, which fails offline; without it, it logs and goes on.
    monkeypatch.setitem(sys.modules, "spacy_pkuseg", None)

    # It also looks a Cangjie table up on the hub, which this machine cannot
    # reach: offline the look-up fails at once (upstream logs and goes on),
    # where online-but-unreachable retries for 23 s.
    with offline_hub(scratch / "hub"):
        model = ChatterboxMultilingualTTS.from_local(folder, "cpu")

    assert model.t3.hp.text_tokens_dict_size == 2454
    on_disk = load_file(folder / "t3_mtl23ls_v2.safetensors")
    name = "text_emb.weight"
    assert_same_tensors(model.t3.state_dict()[name], on_disk[name].float(), where=name)
    assert_t3_conditions_on(model, model.conds.t3)
    assert_reads_text(model.tokenizer.text_to_tokens("Bonjour à tous.", language_id="fr"), model)


def test_the_turbo_checkpoint_loads_with_upstreams_from_local(scratch):
    folder = write_checkpoint(scratch / "turbo", "turbo", seed=0)

    model = ChatterboxTurboTTS.from_local(folder, "cpu")

    assert len(model.tokenizer) == model.t3.hp.text_tokens_dict_size == 50276
    name = "speech_head.weight"
    on_disk = load_file(folder / "t3_turbo_v1.safetensors")
    assert_same_tensors(model.t3.state_dict()[name], on_disk[name].float(), where=name)
    assert model.conds.t3.cond_prompt_speech_tokens.shape == (1, 375)
    assert_t3_conditions_on(model, model.conds.t3)
    ids = model.tokenizer("Hello there.", return_tensors="pt", padding=True).input_ids
    assert ids.shape == (1, 12)
    assert (ids > 0).all()  # 0 is the end-of-text token, which also stands for unknown


def test_the_same_seed_draws_the_same_weights_and_another_seed_others():
    from chatterbox.models.t3.modules.t3_config import T3Config

    from cached_tts.testing import _register_tiny_configs

    _register_tiny_configs()
    hp = T3Config()
    hp.llama_config_name = "cached_tts_tiny_llama"
    first, again, other = _t3_state(hp, 0), _t3_state(hp, 0), _t3_state(hp, 1)

    for name, tensor in first.items():
        assert_same_tensors(again[name], tensor, where=name)
    matrix = "tfmr.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(first[matrix], other[matrix])
    assert not torch.equal(first[matrix], first["tfmr.layers.0.self_attn.k_proj.weight"])


def test_an_unknown_kind_says_which_kinds_exist(tmp_path):
    with pytest.raises(ValueError, match="'english', 'multilingual'"):
        write_checkpoint(tmp_path, "klingon")  # type: ignore[arg-type]


def test_offline_hub_restores_the_environment_and_huggingface_hub(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    before = constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE

    with offline_hub(tmp_path) as hub:
        assert constants.HF_HUB_CACHE == str(hub) == os.environ["HF_HUB_CACHE"]
        assert constants.HF_HUB_OFFLINE is True

    assert before == (constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE)
    assert "HF_HUB_OFFLINE" not in os.environ
