"""Preparing many voices ahead of time: :func:`warm`.

``warm(model, paths)`` prepares every voice it finds into ``model.cache`` and
says what it did. With ``background=True`` it does so in a thread while the
model keeps serving: each preparation takes its turn on the model's lock (the
one ``generate`` holds), so a request waits for at most one preparation, and
each voice is served from the cache as soon as it is done. Waiting for another
worker that prepares the same voice holds nothing of the model.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

from cached_tts._wrapping.wrappers import prepare_into_cache

__all__ = ["AUDIO_SUFFIXES", "WarmSummary", "find_voices", "warm"]

logger = logging.getLogger("cached_tts")

#: The file types a folder is searched for.
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".m4a"})

#: Called after each voice with its path and outcome: "new", "cached" or "failed".
Progress = Callable[[str, str], None]

_GLOB_CHARS = frozenset("*?[")


@dataclass
class WarmSummary:
    """What :func:`warm` did: voices prepared now, found cached, or failed.

    >>> summary = WarmSummary(new=["a.wav"], failed=[("b.wav", "no such file")])
    >>> summary.ok, len(summary)
    (False, 2)
    """

    new: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every voice is now in the cache."""
        return not self.failed

    def __len__(self) -> int:
        return len(self.new) + len(self.cached) + len(self.failed)


def find_voices(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[str], list[tuple[str, str]]]:
    """The voice files that ``paths`` name, and the paths that name none (with why).

    A path is a file, a folder (searched recursively for :data:`AUDIO_SUFFIXES`)
    or a glob pattern.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "a.wav").touch(); (folder / "notes.txt").touch()
    >>> found, problems = find_voices([folder, folder / "missing.wav"])
    >>> [Path(p).name for p in found], problems[0][1]
    (['a.wav'], 'no such file or folder')
    """
    found: list[str] = []
    problems: list[tuple[str, str]] = []
    for raw in paths:
        text = os.fspath(raw)
        if _GLOB_CHARS & set(text) and not os.path.exists(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                problems.append((text, "no file matches this pattern"))
            found.extend(m for m in matches if os.path.isfile(m))
            found.extend(v for m in matches if os.path.isdir(m) for v in _audio_under(Path(m)))
        elif os.path.isdir(text):
            voices = _audio_under(Path(text))
            if not voices:
                problems.append((text, f"no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})"))
            found.extend(voices)
        elif os.path.isfile(text):
            found.append(text)
        else:
            problems.append((text, _why_missing(text)))
    return list(dict.fromkeys(found)), problems


def _audio_under(folder: Path) -> list[str]:
    return sorted(
        str(p) for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
    )


def _why_missing(path: str) -> str:
    try:
        os.stat(path)
    except NotADirectoryError:
        return "a part of this path is a file, not a folder"
    except PermissionError:
        return "permission denied"
    except OSError:
        return "no such file or folder"
    return "not a regular file or folder"


@overload
def warm(
    model: Any,
    paths: Iterable[str | os.PathLike[str]],
    *,
    background: Literal[False] = False,
    progress: Progress | None = None,
) -> WarmSummary: ...


@overload
def warm(
    model: Any,
    paths: Iterable[str | os.PathLike[str]],
    *,
    background: Literal[True],
    progress: Progress | None = None,
) -> Future[WarmSummary]: ...


def warm(
    model: Any,
    paths: Iterable[str | os.PathLike[str]],
    *,
    background: bool = False,
    progress: Progress | None = None,
) -> WarmSummary | Future[WarmSummary]:
    """Prepare every voice in ``paths`` into ``model.cache``.

    ``paths`` holds files, folders (searched recursively) and glob patterns.
    A voice that fails is reported in the summary and the others are still
    prepared. With ``background=True`` this returns at once a
    :class:`~concurrent.futures.Future` of the summary; the model may keep
    generating meanwhile. ``progress(path, outcome)`` is called after each voice.
    The model's current voice (``model.conds``) is left as it was.

    For example (``tests/integration/test_cli_models.py`` runs the same)::

        model = CachedChatterboxTTS.from_pretrained("cuda")
        summary = warm(model, ["voices/"])          # every clip under voices/
        summary.new, summary.cached, summary.failed
        future = warm(model, ["more/*.wav"], background=True)
        model.generate("Served while warming.")    # takes turns with the warm-up
        future.result()
    """
    paths = list(paths)
    if not background:
        return _warm_all(model, paths, progress)
    future: Future[WarmSummary] = Future()
    future.set_running_or_notify_cancel()

    def run() -> None:
        try:
            future.set_result(_warm_all(model, paths, progress))
        except BaseException as exc:  # noqa: BLE001 -- a Future must always be resolved
            future.set_exception(exc)

    threading.Thread(target=run, name="cached-tts-warm", daemon=True).start()
    return future


def _warm_all(
    model: Any, paths: list[str | os.PathLike[str]], progress: Progress | None
) -> WarmSummary:
    voices, problems = find_voices(paths)
    summary = WarmSummary(failed=problems)
    for path, reason in problems:
        logger.warning("Not warming %s: %s", path, reason)
    for voice in voices:
        try:
            outcome = _warm_one(model, voice)
        except Exception as exc:  # noqa: BLE001 -- one bad clip must not stop the others
            logger.warning("Could not prepare %s: %s", voice, exc)
            summary.failed.append((voice, _reason(exc)))
            outcome = "failed"
        else:
            (summary.new if outcome == "new" else summary.cached).append(voice)
        if progress is not None:
            progress(voice, outcome)
    return summary


def _reason(exc: Exception) -> str:
    """An exception as one line; some decoders raise with no message at all."""
    message = str(exc).strip() or "the file could not be read as audio"
    return f"{message} ({type(exc).__name__})"


def _warm_one(model: Any, voice: str) -> str:
    """Prepare one voice; "new" if it was computed, "cached" if it was found."""
    # The model's own voice, the one being served, is left as it is.
    return prepare_into_cache(model, voice)
