"""Subcommands that load a model: warm and say."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from cached_tts._cache import ConditionalCache
from cached_tts._cli._options import (
    CommandError,
    add_cache_dir,
    add_model_options,
    add_remote,
    cache_dir_of,
    remote_of,
)
from cached_tts._cli._redis import warn_if_unreachable
from cached_tts._remote import redacted

__all__ = ["add_parsers", "load"]

RANDOM_NOTE = (
    "Random weights (--random-weights): the real architecture, so timings are real, "
    "but the audio is noise."
)


def load(args: argparse.Namespace) -> Any:
    """The model the options ask for, caching in ``--cache-dir`` (and ``--remote``)."""
    from cached_tts._loading import load_model

    if args.random_weights:
        print(RANDOM_NOTE, file=sys.stderr)
    remote = remote_of(args)
    if remote is not None:
        warn_if_unreachable(remote)
    # Explicit: the command's --remote (or its default) decides, not the library's.
    cache = ConditionalCache(cache_dir_of(args), remote=remote)
    return load_model(
        args.model, device=args.device, random_weights=args.random_weights, cache=cache
    )


def _bar(total: int, unit: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, file=sys.stderr, disable=None, dynamic_ncols=True)


# -- warm -----------------------------------------------------------------------


def run_warm(args: argparse.Namespace) -> int:
    """Prepare every voice into the cache and summarize."""
    from cached_tts._warm import WarmSummary, find_voices, warm

    voices, problems = find_voices(args.paths)
    summary = WarmSummary()
    if voices:
        model = load(args)
        with _bar(len(voices), "voice") as bar:

            def advance(path: str, outcome: str) -> None:
                bar.set_postfix_str(f"{outcome}: {Path(path).name}")
                bar.update()

            summary = warm(model, voices, progress=advance)
    summary.failed[:0] = problems
    remote = remote_of(args)
    shared = f", Redis: {redacted(remote)}" if remote else ""
    print(
        f"{len(summary.new)} new, {len(summary.cached)} already cached, "
        f"{len(summary.failed)} failed (cache: {cache_dir_of(args)}{shared})"
    )
    for path, reason in summary.failed:
        print(f"  failed {path}: {reason}")
    if summary.failed:
        raise CommandError(f"{len(summary.failed)} of the voices could not be prepared; see above")
    return 0


# -- say ------------------------------------------------------------------------


def _texts(args: argparse.Namespace) -> list[str]:
    texts = list(args.text)
    if args.texts is not None:
        try:
            lines = Path(args.texts).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise CommandError(f"cannot read --texts {args.texts}: {exc.strerror}") from exc
        texts.extend(line.strip() for line in lines if line.strip())
    if not texts:
        args.usage_error("give TEXT or --texts FILE")
    return texts


def _outputs(out: Path | None, count: int) -> list[Path]:
    """One WAV for one text; numbered WAVs in a folder for several."""
    if count == 1 and (out is None or out.suffix.lower() == ".wav"):
        return [out or Path("say.wav")]
    folder = out or Path("say")
    if folder.suffix.lower() == ".wav":
        raise CommandError(f"{count} texts make {count} files: give --out a folder, not {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    return [folder / f"{n:03d}.wav" for n in range(1, count + 1)]


def run_say(args: argparse.Namespace) -> int:
    """Synthesize each text in the voice and write WAV files."""
    import soundfile

    texts = _texts(args)
    voice = Path(args.voice)
    if not voice.is_file():
        raise CommandError(f"voice clip {voice} does not exist or is not a file")
    outputs = _outputs(args.out, len(texts))
    model = load(args)
    options: dict[str, Any] = {"audio_prompt_path": str(voice)}
    if args.model != "turbo":
        options["exaggeration"] = args.exaggeration
    if args.model == "multilingual":
        options["language_id"] = args.language
    started = time.perf_counter()
    with _bar(len(texts), "text") as bar:
        for text, path in zip(texts, outputs, strict=True):
            wav = model.generate(text, **options)
            soundfile.write(str(path), wav.squeeze(0).cpu().numpy(), model.sr)
            bar.update()
    stats = model.cache.stats()
    where = outputs[0] if len(outputs) == 1 else outputs[0].parent
    noise = " (noise: random weights)" if args.random_weights else ""
    print(f"Wrote {len(outputs)} WAV file(s) to {where}{noise}.")
    print(
        f"Voice preparation: {stats.hits} cache hits, {stats.misses} misses, "
        f"{stats.seconds_saved:.1f} s saved; {time.perf_counter() - started:.1f} s in all."
    )
    return 0


def add_parsers(commands: Any) -> None:
    """Register warm and say."""
    warm = commands.add_parser(
        "warm",
        help="prepare voices into the cache ahead of time",
        description="Prepare each voice (files, folders searched recursively for wav, "
        "flac, mp3, ogg and m4a, or glob patterns) into the cache. Exit 1 if any fails; "
        "the others are still prepared.",
    )
    warm.add_argument("paths", nargs="+", metavar="PATH", help="clip, folder or glob")
    warm.set_defaults(run=run_warm)

    say = commands.add_parser(
        "say",
        help="synthesize text in a voice",
        description="Synthesize each TEXT (or each line of --texts FILE) in the voice of "
        "--voice and write WAV files: one file for one text, numbered files in a folder "
        "for several.",
    )
    say.add_argument("text", nargs="*", metavar="TEXT")
    say.add_argument("--voice", type=Path, required=True, help="reference clip")
    say.add_argument("--exaggeration", type=float, default=0.5, help="emotion (default 0.5)")
    say.add_argument("--language", default="en", help="language id (multilingual model)")
    say.add_argument(
        "--out", type=Path, help="WAV file for one text, folder for several (default say.wav)"
    )
    say.add_argument("--texts", type=Path, help="file with one text per line")
    say.set_defaults(run=run_say, usage_error=say.error)

    for parser in (warm, say):
        add_cache_dir(parser)
        add_remote(parser, use="; an unreachable one is skipped with a warning")
        add_model_options(parser)
