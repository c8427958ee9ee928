"""The one-import swap: every voice preparation is cached, nothing else changes.

Run ``python examples/simple.py --voice me.wav`` (real weights), or add
``--random-weights`` to try it offline (the audio is then noise).
"""

import argparse
from pathlib import Path

import soundfile

from cached_tts import CachedChatterboxTTS as ChatterboxTTS  # was: from chatterbox.tts import ...
from cached_tts.testing import random_model, write_voice_clip

TEXTS = ["Hello there.", "The voice was prepared once.", "Every call after that is a cache hit."]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--voice", type=Path, help="reference clip (default: a synthetic one)")
parser.add_argument("--texts", type=int, default=len(TEXTS), help="how many texts to say")
parser.add_argument("--out", type=Path, default=Path("simple-out"), help="folder for the WAVs")
parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
parser.add_argument("--random-weights", action="store_true", help="offline; the audio is noise")
args = parser.parse_args()

if args.random_weights:
    model = random_model(ChatterboxTTS, device=args.device)
else:
    model = ChatterboxTTS.from_pretrained(args.device)
args.out.mkdir(parents=True, exist_ok=True)
voice = args.voice or write_voice_clip(args.out / "voice.wav", seconds=2.5)
for n, text in enumerate(TEXTS[: args.texts], start=1):
    wav = model.generate(text, audio_prompt_path=str(voice))  # prepared once, then served
    soundfile.write(args.out / f"{n}.wav", wav.squeeze(0).numpy(), model.sr)
print(model.cache.stats())
