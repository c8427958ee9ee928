"""Content hashes of files, remembered per path against a stat signature.

Hashing a reference clip costs about 0.85 ms per MB and a checkpoint file about
a second, so each digest is remembered against the file's stat signature
(device, inode, size, mtime and ctime in nanoseconds) in memory and, when a
folder is given, on disk for the next process.

``st_ctime_ns`` is part of the signature because a same-size rewrite whose
mtime was put back (``os.utime``) still moves ctime, which user code cannot
set. A file changed within :data:`RACY_WINDOW_NS` of being hashed is *racy*
(git's racy-git rule): a second change inside the same timestamp tick would
leave its signature unchanged, so its digest is returned but not remembered.

A file whose signature moves while it is read is read again; one that keeps
moving raises :class:`~cached_tts.ContentChangedError`, so no digest of bytes
the file never held as a whole is returned or remembered.
:meth:`FileHasher.still_holds` later tells whether a file still holds the
bytes a :class:`FileSnapshot` hashed: a cached model checks it after a
preparation, before storing anything under that digest.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cachetools import LRUCache

from cached_tts._atomic import write_atomically
from cached_tts._exceptions import ContentChangedError
from cached_tts._forksafe import renew_after_fork

__all__ = [
    "MEMO_SUFFIX",
    "RACY_WINDOW_NS",
    "FileHasher",
    "FileSnapshot",
    "StatSignature",
    "remembered_path",
    "sha256_file",
]

logger = logging.getLogger("cached_tts")

#: Files changed less than this long before hashing are rehashed next time.
#: Two seconds covers the coarsest timestamps in common use (FAT).
RACY_WINDOW_NS = 2_000_000_000

_CHUNK_BYTES = 1 << 20

# A file that changed while it was read is read again, this many times in all.
_HASH_ATTEMPTS = 3

#: Remembered hashes are ``<memo_dir>/<digest of host and path><MEMO_SUFFIX>``.
MEMO_SUFFIX = ".json"

# A remembered hash is a path (at most 4 KiB on Linux) and a few numbers: a
# larger file (a sparse one, say) is garbled, never read whole.
_MAX_MEMO_BYTES = 64 * 1024


@dataclass(frozen=True)
class StatSignature:
    """What must stay the same for a remembered digest to stay valid."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> StatSignature:
        """The signature of a ``stat`` result."""
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        """The five numbers, in field order (as a remembered hash stores them)."""
        return (self.device, self.inode, self.size, self.mtime_ns, self.ctime_ns)

    def is_racy(self, hashed_at_ns: int) -> bool:
        """Whether the file changed too close to ``hashed_at_ns`` to trust."""
        return max(self.mtime_ns, self.ctime_ns) >= hashed_at_ns - RACY_WINDOW_NS


@dataclass(frozen=True)
class FileSnapshot:
    """A file's digest, and the signature it had while it was read."""

    path: str
    digest: str
    signature: StatSignature
    #: Changed too recently for an unchanged signature to prove unchanged bytes.
    racy: bool


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file's bytes.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(delete=False) as f:
    ...     _ = f.write(b"abc")
    >>> sha256_file(f.name)[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def stat_regular_file(path: str | os.PathLike[str]) -> os.stat_result:
    """``os.stat``, with the errors a user of a file API expects.

    Raises ``FileNotFoundError`` or ``IsADirectoryError``, each naming the path.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "Reference clip not found", os.fspath(path)) from None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(
            errno.EISDIR,
            "Expected an audio file but got a folder",
            os.fspath(path),
        )
    return st


class FileHasher:
    """sha256 of files, remembered per path until the file changes.

    ``memo_dir``, when given, keeps the digests for later processes too;
    ``memo_written`` is then told the size of each file written there (the
    disk tier counts them against its budget).

    >>> import tempfile, pathlib
    >>> clip = pathlib.Path(tempfile.mkdtemp()) / "voice.wav"
    >>> _ = clip.write_bytes(b"RIFF....")
    >>> hasher = FileHasher()
    >>> hasher.hash(clip) == sha256_file(clip)
    True
    """

    def __init__(
        self,
        memo_dir: Path | None = None,
        *,
        max_paths: int = 4096,
        memo_written: Callable[[int], None] | None = None,
    ) -> None:
        self._memo_dir = memo_dir
        # A string: memo files are looked up on every new path, and Path is slow.
        self._memo_folder = None if memo_dir is None else os.fspath(memo_dir)
        self._memo_written = memo_written
        self._memo: LRUCache[str, tuple[StatSignature, str]] = LRUCache(maxsize=max_paths)
        self._lock = threading.Lock()
        renew_after_fork(self, _lock=threading.Lock)
        self.hashes_computed = 0

    def hash(self, path: str | os.PathLike[str]) -> str:
        """The file's sha256, computed only when its signature has changed.

        Raises :class:`~cached_tts.ContentChangedError` when the file keeps
        changing while it is read: no digest then names its bytes.
        """
        return self.snapshot(path).digest

    def snapshot(self, path: str | os.PathLike[str]) -> FileSnapshot:
        """The file's sha256 and the signature it was taken at, for :meth:`still_holds`."""
        name = os.path.abspath(path)
        looked_at_ns = time.time_ns()
        signature = StatSignature.of(stat_regular_file(name))
        with self._lock:
            remembered = self._memo.get(name)
        if remembered is not None and remembered[0] == signature:
            return FileSnapshot(name, remembered[1], signature, signature.is_racy(looked_at_ns))
        digest = self._read_memo_file(name, signature)
        if digest is not None:
            self._remember(name, signature, digest)
            return FileSnapshot(name, digest, signature, signature.is_racy(looked_at_ns))

        digest, signature, looked_at_ns = self._hash_unchanged(name)
        racy = signature.is_racy(looked_at_ns)
        if not racy:
            self._remember(name, signature, digest)
            self._write_memo_file(name, signature, digest)
        return FileSnapshot(name, digest, signature, racy)

    def still_holds(self, snapshot: FileSnapshot) -> bool:
        """Whether the file still holds the bytes ``snapshot`` hashed.

        An unchanged signature proves it unless the file was racy when hashed:
        a write within the same timestamp tick leaves the signature as it was,
        so a racy file is hashed again.
        """
        try:
            now = StatSignature.of(os.stat(snapshot.path))
        except OSError:
            return False
        if now != snapshot.signature:
            return False
        if not snapshot.racy:
            return True
        try:
            digest, signature, _ = self._hash_unchanged(snapshot.path)
        except (ContentChangedError, OSError):
            return False
        return digest == snapshot.digest and signature == snapshot.signature

    def _hash_unchanged(self, name: str) -> tuple[str, StatSignature, int]:
        """A digest read while the signature stayed put, that signature, and when it was seen.

        A file that changes while it is read gives a digest of bytes it may
        never have held as a whole; such a digest is never returned.
        """
        for _ in range(_HASH_ATTEMPTS):
            looked_at_ns = time.time_ns()
            before = StatSignature.of(stat_regular_file(name))
            digest = sha256_file(name)
            self.hashes_computed += 1
            if StatSignature.of(stat_regular_file(name)) == before:
                return digest, before, looked_at_ns
        raise ContentChangedError(
            f"{name} changed every time it was read ({_HASH_ATTEMPTS} tries); "
            "use it once whoever writes it has finished"
        )

    def forget(self) -> None:
        """Drop every remembered digest, in memory and on disk."""
        with self._lock:
            self._memo.clear()
        if self._memo_dir is not None and self._memo_dir.is_dir():
            for memo_file in self._memo_dir.glob(f"*{MEMO_SUFFIX}"):
                memo_file.unlink(missing_ok=True)

    def _remember(self, name: str, signature: StatSignature, digest: str) -> None:
        with self._lock:
            self._memo[name] = (signature, digest)

    def _memo_file(self, name: str) -> str | None:
        if self._memo_folder is None:
            return None
        # The host is part of the name: a folder shared over the network must
        # not match one machine's inode numbers against another's.
        where = f"{socket.gethostname()}\0{name}".encode()
        return os.path.join(self._memo_folder, f"{hashlib.sha256(where).hexdigest()}{MEMO_SUFFIX}")

    def _read_memo_file(self, name: str, signature: StatSignature) -> str | None:
        memo_file = self._memo_file(name)
        if memo_file is None:
            return None
        try:
            record = _read_memo(memo_file)
            if record["path"] == name and tuple(record["signature"]) == signature.as_tuple():
                _mark_used(memo_file)
                return str(record["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None

    def _write_memo_file(self, name: str, signature: StatSignature, digest: str) -> None:
        memo_file = self._memo_file(name)
        if memo_file is None:
            return
        record = {"path": name, "signature": signature.as_tuple(), "sha256": digest}
        data = json.dumps(record).encode()
        try:
            # A torn memo after a crash fails to parse and the file is rehashed.
            write_atomically(memo_file, data, durable=False)
            if self._memo_written is not None:
                self._memo_written(len(data))
        except OSError as exc:
            logger.debug("Could not remember the hash of %s: %s", name, exc)


def remembered_path(memo_file: Path) -> str | None:
    """The path whose hash ``memo_file`` remembers; ``None`` if it can't be read.

    >>> import tempfile, pathlib
    >>> memo = pathlib.Path(tempfile.mkdtemp()) / "memo.json"
    >>> _ = memo.write_text('{"path": "/clips/a.wav", "signature": [], "sha256": ""}')
    >>> remembered_path(memo)
    '/clips/a.wav'
    """
    try:
        path = _read_memo(memo_file)["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path if isinstance(path, str) else None


def _read_memo(memo_file: str | os.PathLike[str]) -> Any:
    """The JSON record in ``memo_file``; ``ValueError`` if it is too large to be one."""
    return read_small_json(memo_file, _MAX_MEMO_BYTES, "a remembered hash")


def read_small_json(path: str | os.PathLike[str], max_bytes: int, what: str) -> Any:
    """The JSON in ``path``, reading ``max_bytes`` and one byte at most.

    A larger file (a sparse one, say) is not ``what``: ``ValueError``, as for
    garbled JSON, never a read of the whole file.
    """
    with open(path, "rb", buffering=0) as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"{path} is over {max_bytes} bytes: not {what}")
    return json.loads(data)


def _mark_used(memo_file: str) -> None:
    """Make a memo's mtime its last use, so that eviction drops the least used first."""
    with contextlib.suppress(OSError):  # a read-only folder: the memo still serves
        os.utime(memo_file)
