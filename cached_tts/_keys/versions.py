"""Which code prepares a voice: the version part of a key's settings.

A new release of chatterbox, torch or any library that decodes, resamples,
normalises or embeds the clip may compute other bits, so their versions are
part of every :class:`~cached_tts._keys.key.EntryKey`'s settings. A ``chatterbox``
that is not a release from an index (a fork, a git or editable install, a
folder on ``sys.path``) is named by a hash of its source files as well. This
module imports no torch.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "CHATTERBOX_DISTRIBUTION",
    "PREPARATION_LIBRARIES",
    "chatterbox_version",
    "library_versions",
]

#: The distribution that ships the ``chatterbox`` module on PyPI.
CHATTERBOX_DISTRIBUTION = "chatterbox-tts"

# Everything besides chatterbox and torch that decodes, resamples, normalises
# or turns the clip into features while a voice is prepared: librosa.load
# decodes with soundfile (audioread as its fallback) and resamples with soxr;
# the voice encoder's mel filter runs scipy.signal.lfilter; the S3 tokenizer
# pads with the s3tokenizer package; CAMPPlus's fbank and the 24/16 kHz
# resamplers are torchaudio; Turbo normalises loudness with pyloudnorm. Absent
# ones are recorded as absent.
PREPARATION_LIBRARIES = (
    "torch",
    "torchaudio",
    "numpy",
    "scipy",
    "librosa",
    "soundfile",
    "soxr",
    "audioread",
    "resampy",
    "pyloudnorm",
    "s3tokenizer",
)


@cache
def library_versions() -> tuple[tuple[str, str], ...]:
    """``("version:<name>", version)`` of chatterbox and every library preparation runs."""
    # A new release of any of these may compute different bits. Computed once
    # per process: tens of ms of metadata lookups (0.2 s more for a fork).
    versions = [("version:chatterbox", chatterbox_version())]
    for dist in PREPARATION_LIBRARIES:
        try:
            versions.append((f"version:{dist}", importlib.metadata.version(dist)))
        except importlib.metadata.PackageNotFoundError:
            versions.append((f"version:{dist}", "absent"))
    # The wheel bundles libsndfile, but a system one may stand in for it.
    versions.append(("version:libsndfile", _libsndfile_version()))
    return tuple(versions)


def _libsndfile_version() -> str:
    try:
        import soundfile
    except (ImportError, OSError):  # OSError: the package is there, the C library is not
        return "absent"
    return str(getattr(soundfile, "__libsndfile_version__", "unknown"))


def chatterbox_version() -> str:
    """Which ``chatterbox`` code this process runs, as one string.

    ``"<distribution> <version>"`` for a release installed from an index. A
    fork, a git or editable install, or a folder on ``sys.path`` shares a
    version number with other code, so its source files are hashed instead:
    ``"<distribution> <version> src:<sha256>"``.
    """
    package = _chatterbox_folder()
    if package is None:
        return "absent"
    dist = _distribution_providing(package)
    if dist is None:
        return f"no-distribution src:{_source_digest(package)}"
    name = dist.metadata["Name"] or "unknown"
    label = f"{name} {dist.version}"
    if _is_index_release(dist):
        return label
    return f"{label} src:{_source_digest(package)}"


def _chatterbox_folder() -> Path | None:
    """The folder of the ``chatterbox`` package this process imports (or would)."""
    module = sys.modules.get("chatterbox")
    try:
        spec = module.__spec__ if module is not None else importlib.util.find_spec("chatterbox")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None
    if spec.origin is not None and spec.origin.endswith("__init__.py"):
        return Path(spec.origin).resolve().parent
    locations = list(spec.submodule_search_locations or ())  # a namespace package
    return Path(locations[0]).resolve() if locations else None


def _distribution_providing(package: Path) -> importlib.metadata.Distribution | None:
    """The installed distribution whose files include ``package`` itself."""
    # The common case first: scanning every distribution takes ~0.2 s.
    dist = _distribution(CHATTERBOX_DISTRIBUTION)
    if dist is not None and _provides(dist, package):
        return dist
    for name in importlib.metadata.packages_distributions().get("chatterbox", []):
        dist = _distribution(name)
        if dist is not None and (_provides(dist, package) or _is_editable(dist)):
            return dist
    return None


def _distribution(name: str) -> importlib.metadata.Distribution | None:
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _provides(dist: importlib.metadata.Distribution, package: Path) -> bool:
    init = package / "__init__.py"
    for file in dist.files or ():
        if file.name == "__init__.py" and file.parent.name == package.name:
            try:
                if Path(str(dist.locate_file(file))).resolve() == init:
                    return True
            except OSError:
                continue
    return False


def _direct_url(dist: importlib.metadata.Distribution) -> dict[str, Any] | None:
    text = dist.read_text("direct_url.json")
    if text is None:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _is_editable(dist: importlib.metadata.Distribution) -> bool:
    record = _direct_url(dist)
    return bool(record and record.get("dir_info", {}).get("editable"))


def _is_index_release(dist: importlib.metadata.Distribution) -> bool:
    # PEP 610: an install from a URL, a VCS or a local folder records where it
    # came from in direct_url.json; an install from an index records nothing.
    return _direct_url(dist) is None


def _source_digest(package: Path) -> str:
    """sha256 over the relative names and bytes of a package's files."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = Path(root) / name
            relative = path.relative_to(package).as_posix()
            digest.update(f"{relative}\0{path.stat().st_size}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
