"""An audiobook from a script: each line in its character's voice, one WAV.

The script has one ``SPEAKER: line`` row per line (blank rows and ``#``
comments are skipped); a voice map names each speaker's reference clip. Every
character's voice is prepared once, however many lines they have. Writes the
book as one WAV, with pauses between lines, and a JSON of segment timings.

Run ``python examples/audiobook.py script.txt --voices voices.json --out book.wav``
where voices.json is ``{"NARRATOR": "narrator.wav", "ALICE": "alice.wav"}``.
With ``--random-weights`` and no ``--voices``, each speaker gets a synthetic
clip, so it runs offline (the audio is then noise).
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from cached_tts import CachedChatterboxTTS, ConditionalCache
from cached_tts.testing import random_model, write_voice_clip


def read_script(path: Path) -> list[tuple[str, str]]:
    """(speaker, line) for each row of the script."""
    rows = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        row = raw.strip()
        if not row or row.startswith("#"):
            continue
        speaker, colon, line = row.partition(":")
        if not colon or not speaker.strip() or not line.strip():
            sys.exit(f"{path}:{number}: expected 'SPEAKER: line', got {row!r}")
        rows.append((speaker.strip(), line.strip()))
    return rows


def voice_map(args: argparse.Namespace, speakers: set[str], workdir: Path) -> dict[str, str]:
    """Each speaker's reference clip, from --voices or (random weights) synthetic clips."""
    if args.voices is not None:
        base = args.voices.parent
        voices = {k: str(base / v) for k, v in json.loads(args.voices.read_text()).items()}
    elif args.random_weights:
        voices = {
            name: str(write_voice_clip(workdir / f"{name}.wav", seed=zlib.crc32(name.encode())))
            for name in speakers
        }
    else:
        sys.exit("give --voices FILE: a JSON object mapping each speaker to a clip")
    missing = sorted(speakers - voices.keys())
    if missing:
        sys.exit(f"no voice for {', '.join(missing)}: add them to {args.voices}")
    return voices


def render(
    model: Any, rows: list[tuple[str, str]], voices: dict[str, str], pause: float
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The book's samples and one timing record per line."""
    silence = np.zeros(int(pause * model.sr), dtype=np.float32)
    pieces: list[np.ndarray] = []
    segments = []
    cursor = 0
    for index, (speaker, line) in enumerate(rows):
        if pieces:
            pieces.append(silence)
            cursor += len(silence)
        wav = model.generate(line, audio_prompt_path=voices[speaker]).squeeze(0).numpy()
        pieces.append(wav.astype(np.float32))
        segments.append(
            {
                "index": index,
                "speaker": speaker,
                "text": line,
                "start": round(cursor / model.sr, 3),
                "end": round((cursor + len(wav)) / model.sr, 3),
            }
        )
        cursor += len(wav)
    return np.concatenate(pieces), segments


def main() -> None:
    """Render the script and write the WAV and its timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", type=Path, help="rows of 'SPEAKER: line'")
    parser.add_argument("--voices", type=Path, help="JSON map of speaker to reference clip")
    parser.add_argument("--out", type=Path, default=Path("book.wav"), help="the WAV to write")
    parser.add_argument("--pause", type=float, default=0.4, help="seconds between lines")
    parser.add_argument("--texts", type=int, help="render only the first N lines")
    parser.add_argument("--cache-dir", type=Path, help="cache folder (default: the user's)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    parser.add_argument("--random-weights", action="store_true", help="offline; audio is noise")
    args = parser.parse_args()

    rows = read_script(args.script)[: args.texts]
    if not rows:
        sys.exit(f"{args.script} has no 'SPEAKER: line' rows")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    voices = voice_map(args, {speaker for speaker, _ in rows}, args.out.parent)
    cache = ConditionalCache(args.cache_dir) if args.cache_dir else None
    if args.random_weights:
        model = random_model(CachedChatterboxTTS, device=args.device, cache=cache)
    else:
        model = CachedChatterboxTTS.from_pretrained(args.device, cache=cache)

    samples, segments = render(model, rows, voices, args.pause)
    soundfile.write(args.out, samples, model.sr)
    timings = args.out.with_suffix(".json")
    timings.write_text(json.dumps({"sample_rate": model.sr, "segments": segments}, indent=2))
    stats = model.cache.stats()
    seconds = len(samples) / model.sr
    print(f"Wrote {args.out} ({seconds:.1f} s, {len(segments)} lines) and {timings}.")
    print(f"{len(voices)} voices prepared for {len(rows)} lines: {stats.hits} cache hits.")
    if args.random_weights:
        print("(Random weights: the audio is noise.)")


if __name__ == "__main__":
    main()
