"""A reference clip as the cache sees it: the hash of the bytes a preparation decodes.

A clip is a path or a seekable binary file object (an upload kept in memory,
``io.BytesIO(data)``). Upstream decodes a file object from its current
position, so a stream's hash covers its bytes from there to the end, the same
hash a file holding those bytes gets: an upload and a saved copy of it share
one entry.

The hash is taken before the preparation and upstream decodes later, maybe
after a wait for another worker. :meth:`Clip.unchanged` tells afterwards
whether the clip still holds the bytes hashed; when it does not, what was
decoded may be other bytes, and nothing is stored under that hash.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from typing import IO, Any, Protocol

from cached_tts._keys.hashing import FileHasher, FileSnapshot

__all__ = ["Clip", "FileClip", "StreamClip", "clip_of", "is_seekable_stream"]

_CHUNK_BYTES = 1 << 20


class Clip(Protocol):
    """A clip's content hash, and whether it still holds the bytes hashed."""

    @property
    def digest(self) -> str:
        """The sha256 of the bytes a preparation decodes."""

    @property
    def source(self) -> str:
        """What to call the clip in messages and entry listings."""

    def unchanged(self) -> bool:
        """Whether the clip still holds the bytes :attr:`digest` names."""

    def served(self) -> None:
        """Leave the clip as upstream's decoder would, once the cache answered for it."""


@dataclass(frozen=True)
class FileClip:
    """A clip given as a path."""

    snapshot: FileSnapshot
    hasher: FileHasher

    @property
    def digest(self) -> str:
        """The sha256 of the file's bytes."""
        return self.snapshot.digest

    @property
    def source(self) -> str:
        """The file's absolute path."""
        return self.snapshot.path

    def unchanged(self) -> bool:
        """Whether the file still holds the bytes hashed (see ``FileHasher.still_holds``)."""
        return self.hasher.still_holds(self.snapshot)

    def served(self) -> None:
        """Nothing to do: reading a path leaves no trace."""


@dataclass(frozen=True)
class StreamClip:
    """A clip given as a seekable binary file object, read from ``position``."""

    stream: IO[bytes]
    position: int
    digest: str
    source: str

    def unchanged(self) -> bool:
        """Whether the stream, read again from :attr:`position`, gives the same bytes.

        The stream is left where it was found (where upstream's decoder left it).
        """
        try:
            where = self.stream.tell()
            try:
                self.stream.seek(self.position)
                digest = _sha256_to_end(self.stream)
            finally:
                self.stream.seek(where)
        except (OSError, ValueError):  # closed, or it stopped seeking
            return False
        return digest == self.digest

    def served(self) -> None:
        """Leave the stream at its end, where upstream's decoder leaves it."""
        self.stream.seek(0, io.SEEK_END)


def is_seekable_stream(value: Any) -> bool:
    """Whether ``value`` is a file object the cache can read and then put back.

    >>> is_seekable_stream(io.BytesIO(b"RIFF"))
    True
    >>> is_seekable_stream(b"RIFF"), is_seekable_stream("voice.wav")
    (False, False)
    """
    if not all(callable(getattr(value, name, None)) for name in ("read", "seek", "tell")):
        return False
    seekable = getattr(value, "seekable", None)
    try:
        return bool(seekable()) if callable(seekable) else True
    except (OSError, ValueError):  # a closed file says so by raising
        return False


def clip_of(clip: str | os.PathLike[str] | IO[bytes], hasher: FileHasher) -> Clip | None:
    """The :class:`Clip` of a path or a seekable stream; ``None`` for a stream it cannot read.

    A stream is read to its end and put back where it was, so upstream decodes
    what was hashed. Errors about a path (a missing file, a folder) and
    :class:`~cached_tts.ContentChangedError` propagate.

    >>> upload = io.BytesIO(b"....RIFF")
    >>> _ = upload.seek(4)
    >>> clip = clip_of(upload, FileHasher())
    >>> clip.digest == hashlib.sha256(b"RIFF").hexdigest(), upload.tell()
    (True, 4)
    """
    if isinstance(clip, (str, os.PathLike)):
        return FileClip(hasher.snapshot(clip), hasher)
    try:
        position = clip.tell()
        try:
            digest = _sha256_to_end(clip)
        finally:
            clip.seek(position)
    except (OSError, ValueError, TypeError):
        # Closed, unseekable after all, or a text stream: upstream decides what happens.
        return None
    name = getattr(clip, "name", None)
    source = name if isinstance(name, str) else f"<{type(clip).__name__}>"
    return StreamClip(clip, position, digest, source)


def _sha256_to_end(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(_CHUNK_BYTES):
        digest.update(chunk)  # TypeError for a text stream's str
    return digest.hexdigest()
