"""Subcommands that load a model: warm and say.

Both check everything they can before loading a model (11 to 15 s): the
clips, the output path, the cache folder. ``warm`` also looks every clip up
first, with the key parts the cache folder remembers for this model
(:mod:`.profiles`), and loads a model only for clips it must prepare.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cached_tts._cli.options import (
    CommandError,
    add_cache_dir,
    add_model_options,
    add_remote,
    cache_dir_of,
    plural,
    remote_of,
)
from cached_tts._cli.progress import Progress, quiet_upstream

if TYPE_CHECKING:
    from cached_tts._cache.cache import ConditionalCache

__all__ = ["add_parsers", "load", "open_cache"]

logger = logging.getLogger("cached_tts")

RANDOM_NOTE = (
    "Random weights (--random-weights): the real architecture, so timings are real, "
    "but the audio is noise."
)


def open_cache(args: argparse.Namespace) -> ConditionalCache:
    """The cache the options ask for; a folder that cannot be used is an error, not a fallback.

    Memory only is a choice (``--no-disk``), never a silent fallback.
    """
    from cached_tts._cache.cache import ConditionalCache
    from cached_tts._tiers.disk.store import DiskStore

    remote = remote_of(args)
    if remote is not None:
        from cached_tts._cli.fleet import warn_if_unreachable

        warn_if_unreachable(remote)
    if args.no_disk:
        return ConditionalCache(None, remote=remote)
    folder = cache_dir_of(args)
    try:
        DiskStore(folder).prepare()
    except OSError as exc:
        from cached_tts._cli.errors import one_line

        raise CommandError(
            f"cannot use the cache folder {folder}: {one_line(exc)}; give a writable "
            "--cache-dir, or --no-disk to keep entries in memory (and --remote) only"
        ) from exc
    # Explicit: the command's --remote (or its default) decides, not the library's.
    return ConditionalCache(folder, remote=remote)


def load(args: argparse.Namespace, cache: ConditionalCache | None = None) -> Any:
    """The model the options ask for, caching in ``cache`` (default: :func:`open_cache`)."""
    from cached_tts._cli.loading import load_model

    cache = cache or open_cache(args)
    return load_model(
        args.model, device=args.device, random_weights=args.random_weights, cache=cache
    )


def _load_step(args: argparse.Namespace, cache: ConditionalCache, progress: Progress) -> Any:
    weights = "random weights" if args.random_weights else "weights"
    if args.random_weights:
        print(RANDOM_NOTE, file=sys.stderr)
    with progress.step(f"Loading the {args.model} model ({weights})"):
        return load(args, cache)


def check_clip(path: Path) -> None:
    """Fail now, before any model loads, if ``path`` is not a readable audio file."""
    if not path.is_file():
        raise CommandError(f"voice clip {path} does not exist or is not a file")
    import soundfile

    try:
        soundfile.info(str(path))
    except (RuntimeError, OSError, soundfile.LibsndfileError):
        # soundfile cannot read every format librosa can (m4a); ask librosa too.
        try:
            import librosa

            librosa.get_duration(path=str(path))
        except Exception as exc:  # decoders raise anything, often nameless
            raise CommandError(
                f"voice clip {path} could not be read as audio; give a WAV, FLAC, MP3 or OGG file"
            ) from exc


# -- warm -----------------------------------------------------------------------


@dataclass
class _FirstLook:
    """What the look-up before loading a model found."""

    cached: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: The identity to remember the loaded model's key parts under (``None``: none).
    identity: Any = None


def _look_up_first(
    args: argparse.Namespace, cache: ConditionalCache, voices: list[str]
) -> _FirstLook:
    """Which voices are cached already, by the key parts remembered for this model.

    It only reads: a voice found missing takes no folder lock and no lease,
    which would hold back the processes preparing it (the loaded model
    takes its turn on them when it prepares).
    """
    from cached_tts._cli.loading import resolve_device
    from cached_tts._cli.profiles import ModelProfile, identity
    from cached_tts._exceptions import ContentChangedError

    folder = cache.directory
    if folder is None:
        return _FirstLook(missing=voices)
    ident = identity(
        args.model,
        resolve_device(args.device),
        random_weights=args.random_weights,
        hasher=cache._hasher,
    )
    profile = ModelProfile.load(folder, ident) if ident is not None else None
    if profile is None:
        return _FirstLook(missing=voices, identity=ident)
    found = _FirstLook(identity=ident)
    for voice in voices:
        try:
            key = profile.key(cache.content_hash(voice))
            # wait=False: never waits for, so never takes, a lock or a lease.
            cache.get_or_prepare(key, _not_cached, source=os.path.abspath(voice), wait=False)
        except _NotCachedError:
            found.missing.append(voice)
        except ContentChangedError as exc:
            logger.warning("Skipping %s: %s", voice, exc)
            found.failed.append((voice, f"{exc} (ContentChangedError)"))
        except OSError:
            found.missing.append(voice)  # warm() reports the reason when it tries
        else:
            found.cached.append(voice)
    return found


class _NotCachedError(Exception):
    """A lookup found nothing: preparing needs the model."""


def _not_cached() -> Any:
    raise _NotCachedError


def _remember(cache: ConditionalCache, ident: Any, keys: list[Any]) -> None:
    from cached_tts._cli.profiles import ModelProfile

    if ident is None or not keys or cache.directory is None:
        return
    ModelProfile(keys[-1].weights, keys[-1].settings).save(cache.directory, ident)


def _unstored(args: argparse.Namespace, cache: ConditionalCache, keys: list[Any]) -> int:
    """How many of the entries just prepared no lasting tier holds."""
    if args.no_disk:
        return len(keys) if cache.stats().remote_errors else 0
    store = cache._store
    if store is None:  # the folder failed during the run
        return len(keys)
    return sum(1 for key in keys if not store.path_for(key).is_file())


def run_warm(args: argparse.Namespace) -> int:
    """Prepare every voice into the cache and summarize."""
    from cached_tts._cli.profiles import recording_keys
    from cached_tts._tiers.redis.settings import redacted
    from cached_tts._wrapping.warm import WarmSummary, find_voices, warm

    if args.no_disk and remote_of(args) is None:
        args.usage_error("--no-disk without --remote stores nothing: give --remote URL too")
    voices, problems = find_voices(args.paths)
    progress = Progress()
    cache = open_cache(args)
    # Every key looked up, so that entries the folder already held reach the
    # shared tiers named too (a lookup served by disk writes none).
    looked_up = recording_keys(cache)
    first = _look_up_first(args, cache, voices)
    missing = first.missing
    summary = WarmSummary(cached=first.cached, failed=first.failed)
    unstored = 0
    if missing:
        with quiet_upstream():
            model = _load_step(args, cache, progress)
            keys = recording_keys(cache)
            with progress.bar(len(missing), "voice") as bar:

                def advance(path: str, outcome: str) -> None:
                    bar.set_postfix_str(f"{outcome}: {Path(path).name}")
                    bar.update()

                done = warm(model, missing, progress=advance)
        _remember(cache, first.identity, keys)
        unstored = _unstored(args, cache, keys)
        summary.new = done.new
        summary.failed += done.failed
        summary.cached += done.cached
    for key in looked_up:
        cache.share(key)
    summary.failed[:0] = problems
    remote = remote_of(args)
    where = "memory only" if args.no_disk else str(cache_dir_of(args))
    shared = f", shared: {redacted(remote)}" if remote else ""
    print(
        f"{len(summary.new)} new, {len(summary.cached)} already cached, "
        f"{len(summary.failed)} failed (cache: {where}{shared})"
    )
    for path, reason in summary.failed:
        print(f"  failed {path}: {reason}")
    if unstored:
        raise CommandError(
            f"{plural(unstored, 'prepared voice was', 'prepared voices were')} not stored "
            f"in {where}{shared} (see the warnings above); nothing outlives this command"
        )
    if summary.failed:
        raise CommandError(
            f"{plural(len(summary.failed), 'voice')} could not be prepared; see above"
        )
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


def _writable_formats() -> dict[str, str]:
    """File suffixes soundfile writes, such as ``.wav`` and ``.flac``."""
    import soundfile

    return {f".{name.lower()}": name for name in soundfile.available_formats()}


def _check_writable_folder(folder: Path, what: str, *, must_exist: bool) -> None:
    """``folder`` (or, unless ``must_exist``, the nearest folder above it) must be writable."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path())
    if not existing.is_dir():
        raise CommandError(f"{what}: {existing} is a file, not a folder")
    if must_exist and existing != folder:
        raise CommandError(f"{what}: the folder {folder} does not exist; create it first")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CommandError(f"{what}: cannot write in {existing} (permission denied)")


def _outputs(out: Path | None, count: int) -> list[Path]:
    """One audio file for one text; numbered WAVs in a folder for several. Checked, not made."""
    formats = _writable_formats()
    is_folder = out is not None and (out.is_dir() or not out.suffix)
    if out is None:
        out = Path("say.wav") if count == 1 else Path("say")
        is_folder = count > 1
    if not is_folder:
        if out.suffix.lower() not in formats:
            known = ", ".join(sorted(s for s in formats if s in {".wav", ".flac", ".ogg", ".mp3"}))
            raise CommandError(
                f"--out {out}: cannot write {out.suffix or 'files without a suffix'}; "
                f"end it with one of {known}, or give a folder"
            )
        if count > 1:
            raise CommandError(f"{count} texts make {count} files: give --out a folder, not {out}")
        _check_writable_folder(out.parent or Path(), f"--out {out}", must_exist=True)
        if out.is_dir():
            raise CommandError(f"--out {out} is a folder; give a file name")
        return [out]
    _check_writable_folder(out, f"--out {out}", must_exist=False)
    return [out / f"{n:03d}.wav" for n in range(1, count + 1)]


def _write(path: Path, wav: Any, rate: int) -> None:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), wav.squeeze(0).cpu().numpy(), rate)


def run_say(args: argparse.Namespace) -> int:
    """Synthesize each text in the voice and write audio files."""
    texts = _texts(args)
    voice = Path(args.voice)
    outputs = _outputs(args.out, len(texts))
    check_clip(voice)
    progress = Progress()
    cache = open_cache(args)
    started = time.perf_counter()
    with quiet_upstream():
        model = _load_step(args, cache, progress)
        options: dict[str, Any] = {"audio_prompt_path": str(voice)}
        if args.model != "turbo":
            options["exaggeration"] = args.exaggeration
        if args.model == "multilingual":
            options["language_id"] = args.language
        with progress.bar(len(texts), "text") as bar:
            for text, path in zip(texts, outputs, strict=True):
                _write(path, model.generate(text, **options), model.sr)
                bar.update()
    stats = model.cache.stats()
    where = outputs[0] if len(outputs) == 1 else outputs[0].parent
    noise = " (noise: random weights)" if args.random_weights else ""
    print(f"Wrote {plural(len(outputs), 'audio file')} to {where}{noise}.")
    print(
        f"Voice preparation: {plural(stats.hits, 'cache hit')}, "
        f"{plural(stats.misses, 'miss', 'misses')}, {stats.seconds_saved:.1f} s saved; "
        f"{time.perf_counter() - started:.1f} s in all."
    )
    return 0


def add_parsers(commands: Any) -> None:
    """Register warm and say."""
    warm = commands.add_parser(
        "warm",
        help="prepare voices into the cache ahead of time",
        description="Prepare each voice (files, folders searched recursively for wav, "
        "flac, mp3, ogg and m4a, or glob patterns) into the cache. Voices already cached "
        "are found without loading a model once this folder has seen the model. Exit 1 "
        "if any fails, or if what was prepared could not be stored; the others are still "
        "prepared.",
    )
    warm.add_argument("paths", nargs="+", metavar="PATH", help="clip, folder or glob")
    warm.set_defaults(run=run_warm, usage_error=warm.error)

    say = commands.add_parser(
        "say",
        help="synthesize text in a voice",
        description="Synthesize each TEXT (or each line of --texts FILE) in the voice of "
        "--voice and write audio: one file for one text (.wav, .flac, .ogg...), numbered "
        "WAV files in a folder for several. Everything is checked before the model loads.",
    )
    say.add_argument("text", nargs="*", metavar="TEXT")
    say.add_argument("--voice", type=Path, required=True, help="reference clip")
    say.add_argument("--exaggeration", type=float, default=0.5, help="emotion (default 0.5)")
    say.add_argument("--language", default="en", help="language id (multilingual model)")
    say.add_argument(
        "--out",
        type=Path,
        help="audio file for one text, folder for several (default say.wav, or say/)",
    )
    say.add_argument("--texts", type=Path, help="file with one text per line")
    say.set_defaults(run=run_say, usage_error=say.error)

    for parser in (warm, say):
        add_cache_dir(parser)
        parser.add_argument(
            "--no-disk",
            action="store_true",
            help="keep entries in memory (and --remote) only: no cache folder",
        )
        add_remote(parser, use="; an unreachable one is skipped with a warning")
        add_model_options(parser)
