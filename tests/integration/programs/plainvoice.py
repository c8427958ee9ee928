"""What the test programs share: a plain ChatterboxTTS on random weights, counted.

Plain chatterbox and torch only, never cached_tts: the programs that use it
get caching from `cached-tts run` or not at all. The weights are seeded, so
every process builds bitwise the same model (as cached_tts.testing does: a
1-layer T3, the full S3Gen and VoiceEncoder).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

TINY = "plainvoice_tiny_llama"


class CountedModel:
    """A plain model whose real preparations (S3Gen's reference embedding) are counted."""

    def __init__(self) -> None:
        # Imported here: a process that only reports (the spawn pool's parent) never loads them.
        import torch
        from chatterbox.models.s3gen import S3Gen
        from chatterbox.models.t3 import T3
        from chatterbox.models.t3.llama_configs import LLAMA_CONFIGS
        from chatterbox.models.t3.modules.t3_config import T3Config
        from chatterbox.models.voice_encoder import VoiceEncoder
        from chatterbox.tts import ChatterboxTTS

        LLAMA_CONFIGS.setdefault(TINY, {**LLAMA_CONFIGS["Llama_520M"], "num_hidden_layers": 1})
        hp = T3Config()
        hp.llama_config_name = TINY
        torch.manual_seed(0)
        t3 = T3(hp).eval()
        s3gen = S3Gen().eval()
        ve = VoiceEncoder().eval()
        # The tokenizer only matters to generate, which these programs never call.
        self.model = ChatterboxTTS(t3, s3gen, ve, None, "cpu")
        self.preparations: dict[str, int] = {}
        embed_ref = s3gen.embed_ref

        def counting_embed_ref(*args, **kwargs):
            self.preparations[self.voice] = self.preparations.get(self.voice, 0) + 1
            return embed_ref(*args, **kwargs)

        s3gen.embed_ref = counting_embed_ref
        self.voice = ""
        self.saved = 0

    def prepare(self, clip: str) -> None:
        """Prepare ``clip`` as a plain program would, and save what it gave."""
        self.voice = Path(clip).stem
        self.model.prepare_conditionals(clip, exaggeration=0.5)
        out = os.environ.get("PLAINVOICE_OUT")
        if out:
            self.saved += 1
            self.model.conds.save(Path(out) / f"{self.voice}-{os.getpid()}-{self.saved}.pt")


def report(preparations: dict[str, int], **extra: object) -> None:
    """The last line of stdout: what this process prepared, per voice."""
    line = json.dumps({"preparations": preparations, "pid": os.getpid(), **extra})
    print(line)  # noqa: T201 -- the report the test reads
    sys.stdout.flush()
