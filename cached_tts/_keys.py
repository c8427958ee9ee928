"""What makes two voice preparations the same.

An :class:`EntryKey` names one preparation by

* ``content``: the sha256 of the reference clip's bytes (never its path, which
  goes stale when the file is edited);
* ``weights``: a fingerprint of exactly the weights that preparation reads
  (the VoiceEncoder, the S3 tokenizer and the CAMPPlus speaker encoder), so
  fine-tuned or other weights never share an entry;
* ``settings``: everything else that changes the result, such as the class,
  ``ENC_COND_LEN``/``DEC_COND_LEN``, the speech prompt length, extra call
  arguments (Turbo's ``norm_loudness``), the device type, the dtypes of the
  modules preparation runs (S3Gen's own included), and the versions of the
  code that decodes, resamples, normalises and embeds the clip;
* ``schema``: the version of this library's entry layout.

Exaggeration is deliberately absent: it is applied on the way out of the cache.

The fingerprint belongs to the weights a model holds, not to a folder: it is
taken once, when ``from_local``/``from_pretrained`` reads the checkpoint (see
:func:`remember_checkpoint_fingerprint`), and a lookup never touches the
checkpoint folder again. This module imports no torch: commands that load no
model stay light.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import stat
import sys
import threading
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from operator import is_
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cached_tts._hashing import FileHasher, StatSignature

if TYPE_CHECKING:
    import torch

__all__ = [
    "SCHEMA_VERSION",
    "CheckpointRead",
    "EntryKey",
    "checkpoint_fingerprint",
    "checkpoint_signatures",
    "entry_key",
    "model_fingerprint",
    "preparation_settings",
    "refresh_fingerprint",
    "remember_checkpoint_fingerprint",
    "settings_state",
    "weights_digest",
]

logger = logging.getLogger("cached_tts")

#: Bumped whenever the layout of an entry changes, so old entries never match.
SCHEMA_VERSION = 2

# Instance attributes that cached models carry. Kept here, beside the code
# that reads them, so that the model wrappers and the key agree on the names.
MODEL_ID_ATTR = "_cached_tts_model_id"
#: The :class:`CheckpointRead` of a model made by ``from_local``.
CHECKPOINT_ATTR = "_cached_tts_checkpoint"
_FINGERPRINT_ATTR = "_cached_tts_fingerprint"
_WEIGHTS_MEMO_ATTR = "_cached_tts_weights_memo"
_PARAMETERS_MEMO_ATTR = "_cached_tts_parameters_memo"
_STATE_MEMO_ATTR = "_cached_tts_state_memo"

# Checkpoint files that hold the weights preparation reads, across the English,
# multilingual, Turbo and VC checkpoints. Whichever of them a folder has are
# hashed; hashing one more than needed only makes a key more specific.
PREPARATION_WEIGHT_FILES = (
    "ve.safetensors",
    "ve.pt",
    "s3gen.safetensors",
    "s3gen.pt",
    "s3gen_meanflow.safetensors",
)

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


@dataclass(frozen=True)
class EntryKey:
    """The identity of one cached preparation.

    >>> key = EntryKey(content="ab" * 32, weights="w", settings=(("device", "cpu"),))
    >>> len(key.digest)
    64
    >>> EntryKey.from_canonical(key.canonical) == key
    True
    """

    content: str
    weights: str
    settings: tuple[tuple[str, str], ...]
    schema: int = SCHEMA_VERSION
    canonical: str = field(init=False, repr=False, compare=False)
    digest: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Order never matters: equal settings make equal keys.
        object.__setattr__(self, "settings", tuple(sorted(self.settings)))
        canonical = json.dumps(
            {
                "content": self.content,
                "weights": self.weights,
                "settings": dict(self.settings),
                "schema": self.schema,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        # Both are derived once: the key is built on every cache lookup.
        object.__setattr__(self, "canonical", canonical)
        object.__setattr__(self, "digest", hashlib.sha256(canonical.encode()).hexdigest())

    @classmethod
    def from_canonical(cls, canonical: str) -> EntryKey:
        """Rebuild a key from :attr:`canonical`, as stored in an entry."""
        fields = json.loads(canonical)
        return cls(
            content=fields["content"],
            weights=fields["weights"],
            settings=tuple(sorted(fields["settings"].items())),
            schema=fields["schema"],
        )


@lru_cache(maxsize=1024)
def entry_key(content: str, weights: str, settings: tuple[tuple[str, str], ...]) -> EntryKey:
    """An :class:`EntryKey`, remembered: lookups rebuild the same keys often."""
    return EntryKey(content, weights, settings)


# -- settings ------------------------------------------------------------------


@cache
def _library_versions() -> tuple[tuple[str, str], ...]:
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


def preparation_settings(
    model: Any, method: str, extra: Mapping[str, object]
) -> tuple[tuple[str, str], ...]:
    """The settings of ``model`` that change what preparing a voice computes.

    ``method`` names the upstream function that prepares; ``extra`` holds the
    call's arguments other than the clip and the exaggeration.
    """
    t3 = getattr(model, "t3", None)
    names, parameters = _first_parameters(model)
    raw = (
        method,
        getattr(model, "ENC_COND_LEN", None),
        getattr(model, "DEC_COND_LEN", None),
        None if t3 is None else t3.hp.speech_cond_prompt_len,
        str(model.device),
        # Read every call: module.half() or .to() change a parameter in place.
        names,
        tuple(parameter.dtype for parameter in parameters),
        tuple(extra.items()),
    )
    return _settings(raw)


@lru_cache(maxsize=256)
def _settings(raw: tuple[Any, ...]) -> tuple[tuple[str, str], ...]:
    import torch

    method, enc_len, dec_len, prompt_len, device, names, dtypes, extra = raw
    settings = {
        "method": method,
        "device": torch.device(device).type,
        "dtype": ",".join(f"{n}={d}" for n, d in zip(names, dtypes, strict=True)),
    }
    for name, value in (
        ("ENC_COND_LEN", enc_len),
        ("DEC_COND_LEN", dec_len),
        ("speech_cond_prompt_len", prompt_len),
    ):
        if value is not None:
            settings[name] = str(value)
    for name, value in extra:
        settings[f"arg:{name}"] = repr(value)
    settings.update(_library_versions())
    return tuple(sorted(settings.items()))


def settings_state(model: Any) -> tuple[Any, ...]:
    """What ``model``'s fingerprint and preparation settings are read from, compared cheaply.

    Equal states (compared with ``==``, which holds for the same objects)
    give the same :func:`model_fingerprint` and :func:`preparation_settings`
    for the same method and arguments: the fingerprint's sources (the
    ``model_id``, the pinned checkpoint fingerprint, the weights memo, each
    replaced by :func:`refresh_fingerprint`), the module objects, the dtype
    of one parameter of each (``.half()`` and ``.to()`` convert parameters in
    place), the prompt lengths and the device. Holds no tensor, whose ``==``
    compares values.
    """
    attributes = model.__dict__
    # The modules of _dtype_modules, read here without building lists: this
    # runs on every repeated call, so it is written for speed.
    modules = (getattr(model, "ve", None), *_s3gen_children(model.s3gen))
    memo = attributes.get(_STATE_MEMO_ATTR)
    dtypes = None if memo is None or not all(map(is_, memo[0], modules)) else _dtypes(memo[1])
    if dtypes is None:
        # Read from these very modules, so the dtypes are theirs.
        memo = (modules, tuple(_first_parameter(m) for m in modules if m is not None))
        attributes[_STATE_MEMO_ATTR] = memo
        dtypes = tuple(parameter.dtype for _, _, parameter in memo[1])
    t3 = getattr(model, "t3", None)
    return (
        attributes.get(MODEL_ID_ATTR),
        attributes.get(_FINGERPRINT_ATTR),
        attributes.get(_WEIGHTS_MEMO_ATTR),
        modules,
        dtypes,
        getattr(model, "ENC_COND_LEN", None),
        getattr(model, "DEC_COND_LEN", None),
        None if t3 is None else t3.hp.speech_cond_prompt_len,
        str(model.device),
    )


def _dtypes(firsts: tuple[tuple[Any, str, Any], ...]) -> tuple[torch.dtype, ...] | None:
    """The dtype of each remembered parameter; ``None`` if one is no longer in its place."""
    dtypes = []
    for owner, leaf, parameter in firsts:
        # A conversion may put a new Parameter in place of the old one (see _still_held).
        if owner._parameters.get(leaf) is not parameter:
            return None
        dtypes.append(parameter.dtype)
    return tuple(dtypes)


_S3GEN_CHILDREN = ("tokenizer", "speaker_encoder", "flow")


def _s3gen_children(s3gen: Any) -> tuple[Any, ...]:
    """S3Gen's tokenizer, speaker encoder and flow (``None`` where missing).

    Read from its submodules, without ``nn.Module.__getattr__``'s µs for each.
    """
    attributes = s3gen.__dict__
    children = attributes.get("_modules")
    if children is not None:
        found = (children.get("tokenizer"), children.get("speaker_encoder"), children.get("flow"))
        # An instance attribute of the same name would shadow a submodule.
        shadowed = (
            "tokenizer" in attributes or "speaker_encoder" in attributes or "flow" in attributes
        )
        if None not in found and not shadowed:
            return found
    return tuple(getattr(s3gen, name, None) for name in _S3GEN_CHILDREN)


def _dtype_modules(model: Any) -> list[tuple[str, torch.nn.Module]]:
    """The modules whose parameter dtype preparation computes in.

    Those whose weights it reads, and S3Gen's flow: ``S3Gen.dtype`` is the
    flow's dtype, and ``embed_ref`` casts the clip and its mels to it.
    """
    modules = preparation_modules(model)
    flow = getattr(model.s3gen, "flow", None)
    if flow is not None:
        modules.append(("s3gen.flow", flow))
    return modules


def _first_parameters(model: Any) -> tuple[tuple[str, ...], tuple[torch.Tensor, ...]]:
    """One parameter of each dtype module, remembered per module set."""
    modules = _dtype_modules(model)
    identity = tuple(module for _, module in modules)
    memo = model.__dict__.get(_PARAMETERS_MEMO_ATTR)
    if memo is None or not _same_objects(memo[0], identity) or not _still_held(memo[2]):
        names = tuple(name for name, _ in modules)
        firsts = tuple(_first_parameter(module) for _, module in modules)
        memo = (identity, (names, tuple(p for _, _, p in firsts)), firsts)
        model.__dict__[_PARAMETERS_MEMO_ATTR] = memo
    return memo[1]  # type: ignore[no-any-return]


def _first_parameter(module: torch.nn.Module) -> tuple[torch.nn.Module, str, torch.Tensor]:
    """A module's first parameter, with the submodule that holds it and its name there."""
    name, parameter = next(iter(module.named_parameters()))
    owner_path, _, leaf = name.rpartition(".")
    return (module.get_submodule(owner_path) if owner_path else module), leaf, parameter


def _still_held(firsts: tuple[tuple[Any, str, Any], ...]) -> bool:
    # A conversion may put a new Parameter in place of the old one (with
    # torch.__future__.set_overwrite_module_params_on_conversion, or
    # load_state_dict(assign=True)): the old one's dtype then says nothing.
    return all(owner._parameters.get(leaf) is p for owner, leaf, p in firsts)


# -- weights -------------------------------------------------------------------


def preparation_modules(model: Any) -> list[tuple[str, torch.nn.Module]]:
    """The modules whose weights preparing a voice reads."""
    modules: list[tuple[str, torch.nn.Module]] = []
    if getattr(model, "ve", None) is not None:
        modules.append(("ve", model.ve))
    modules.append(("s3gen.tokenizer", model.s3gen.tokenizer))
    modules.append(("s3gen.speaker_encoder", model.s3gen.speaker_encoder))
    return modules


def weights_digest(modules: Iterable[tuple[str, torch.nn.Module]]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of modules' state.

    >>> import torch
    >>> layer = torch.nn.Linear(2, 2)
    >>> weights_digest([("a", layer)]) == weights_digest([("a", layer)])
    True
    """
    import torch

    digest = hashlib.sha256()
    for prefix, module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            flat = tensor.detach().to("cpu").contiguous().reshape(-1)
            digest.update(f"{prefix}.{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# -- checkpoint folders ----------------------------------------------------------


@dataclass(frozen=True)
class CheckpointRead:
    """The preparation weight files a loader read from ``folder``.

    ``files`` pairs each file's name with its stat signature, the same before
    and after the load; it is ``None`` when they changed while the loader read
    them (or could not be listed), so that nothing but the loaded weights
    themselves can say what was read.
    """

    folder: Path
    files: tuple[tuple[str, StatSignature], ...] | None


def checkpoint_signatures(folder: str | os.PathLike[str]) -> tuple[tuple[str, StatSignature], ...]:
    """The preparation weight files ``folder`` holds, each with its stat signature.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "s3gen.safetensors").write_bytes(b"weights")
    >>> [name for name, _ in checkpoint_signatures(folder)]
    ['s3gen.safetensors']
    """
    found = []
    for name in PREPARATION_WEIGHT_FILES:
        try:
            st = os.stat(os.path.join(folder, name))
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISREG(st.st_mode):
            found.append((name, StatSignature.of(st)))
    return tuple(found)


def _files_fingerprint(folder: Path, names: Iterable[str], hasher: FileHasher) -> str:
    # The same text as ever, so that folders hashed by earlier releases still match.
    lines = "".join(f"{name}:{hasher.hash(folder / name)}\n" for name in names)
    return "ckpt:" + hashlib.sha256(lines.encode()).hexdigest()


def checkpoint_fingerprint(folder: str | os.PathLike[str], hasher: FileHasher) -> str:
    """The fingerprint a model loaded from ``folder`` gets, without loading it.

    The content hash of the folder's preparation weight files; ``hasher``
    remembers each file's hash (on disk, if it has a folder), so asking again
    hashes nothing. ``FileNotFoundError`` if the folder holds none of them.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "s3gen.safetensors").write_bytes(b"weights")
    >>> checkpoint_fingerprint(folder, FileHasher())[:5]
    'ckpt:'
    """
    absolute = Path(os.path.abspath(folder))
    names = [name for name, _ in checkpoint_signatures(absolute)]
    if not names:
        raise FileNotFoundError(
            f"{absolute} holds none of {', '.join(PREPARATION_WEIGHT_FILES)}: "
            "point at a Chatterbox checkpoint folder (the one from_local loads)"
        )
    return _files_fingerprint(absolute, names, hasher)


def remember_checkpoint_fingerprint(model: Any, hasher: FileHasher) -> str | None:
    """Pin the fingerprint of the checkpoint files ``model`` was loaded from.

    Called once, right after ``from_local``; later lookups read the pinned
    value and never the folder. The files are hashed only if their stat
    signatures stayed the same from before the load until after the hashing,
    so the digest is of the bytes the loader read. Otherwise (or if the folder
    held no known weight files) nothing is pinned and the loaded weights are
    hashed on first use instead. Returns the pinned fingerprint, if any.
    """
    read = model.__dict__.get(CHECKPOINT_ATTR)
    if not isinstance(read, CheckpointRead) or not read.files:
        return None
    try:
        fingerprint = _files_fingerprint(read.folder, (name for name, _ in read.files), hasher)
        unchanged = checkpoint_signatures(read.folder) == read.files
    except OSError as exc:
        logger.debug("Could not hash the checkpoint in %s: %s", read.folder, exc)
        unchanged = False
    if not unchanged:
        logger.info(
            "The checkpoint files in %s changed while they were loaded or hashed; "
            "the loaded weights will be hashed instead",
            read.folder,
        )
        return None
    _pin(model, fingerprint)
    return fingerprint


def _pin(model: Any, fingerprint: str) -> None:
    # Tied to the module objects: a module swapped for another after loading
    # is not what the files hold, so its weights are hashed instead.
    identity = tuple(module for _, module in preparation_modules(model))
    model.__dict__[_FINGERPRINT_ATTR] = (identity, fingerprint)


# -- fingerprints --------------------------------------------------------------


def model_fingerprint(model: Any) -> str:
    """A fingerprint of the weights that ``model`` prepares voices with.

    In order of preference: the ``model_id`` the user gave; the content hash
    of the checkpoint files the model was loaded from, taken when it was
    loaded; the hash of the weights themselves, computed once per model
    instance (and again by :func:`refresh_fingerprint`). Never reads a file.
    """
    model_id = model.__dict__.get(MODEL_ID_ATTR)
    if model_id is not None:
        return f"id:{model_id}"
    pinned = model.__dict__.get(_FINGERPRINT_ATTR)
    if pinned is not None and _same_objects(
        pinned[0], tuple(module for _, module in preparation_modules(model))
    ):
        return str(pinned[1])
    return "weights:" + _instance_weights_digest(model)


def refresh_fingerprint(model: Any, *, model_id: str | None = None) -> str:
    """Fingerprint ``model`` anew after its weights were changed in place.

    A model's fingerprint is taken once: from its checkpoint files when
    ``from_local``/``from_pretrained`` loads it, or from its weights on first
    use. ``load_state_dict``, ``copy_`` or an optimizer step change the
    weights without the cache seeing it, so call this afterwards. With
    ``model_id``, the model is named by it from now on; without, any earlier
    ``model_id`` is dropped and the weights themselves are hashed now (about
    0.4 s for the real modules). Returns the new fingerprint.

    >>> import torch, cached_tts
    >>> class Model:  # shaped like a Chatterbox model, as far as fingerprints look
    ...     def __init__(self):
    ...         self.ve = torch.nn.Linear(2, 2)
    ...         self.s3gen = torch.nn.Module()
    ...         self.s3gen.tokenizer = torch.nn.Linear(2, 2)
    ...         self.s3gen.speaker_encoder = torch.nn.Linear(2, 2)
    >>> model = Model()
    >>> before = cached_tts.refresh_fingerprint(model)
    >>> with torch.no_grad():
    ...     _ = model.ve.weight.add_(1.0)  # the weights change in place
    >>> cached_tts.refresh_fingerprint(model) != before
    True
    >>> cached_tts.refresh_fingerprint(model, model_id="narrator-v2")
    'id:narrator-v2'
    """
    if model_id is not None:
        set_model_id(model, model_id)
        return f"id:{model_id}"
    model.__dict__.pop(MODEL_ID_ATTR, None)
    model.__dict__.pop(_FINGERPRINT_ATTR, None)
    return "weights:" + _instance_weights_digest(model, fresh=True)


def set_model_id(model: Any, model_id: str) -> None:
    """Name ``model``'s weights ``model_id``; ``TypeError`` for anything but a non-empty str."""
    if not isinstance(model_id, str) or not model_id:
        raise TypeError(f"model_id must be a non-empty string, not {model_id!r}")
    model.__dict__[MODEL_ID_ATTR] = model_id


# One lock per model, so that hashing one model's weights (0.4 s or more)
# never holds up another model's lookups.
_memo_locks: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_memo_locks_guard = threading.Lock()


def _memo_lock(model: Any) -> threading.Lock:
    lock = _memo_locks.get(model)
    if lock is None:
        with _memo_locks_guard:  # held only to create the lock, never while hashing
            lock = _memo_locks.setdefault(model, threading.Lock())
    return lock


def _reset_memo_locks() -> None:
    # A thread of the parent that was hashing when it forked does not exist in
    # the child: its lock would stay taken there forever.
    global _memo_locks, _memo_locks_guard  # noqa: PLW0603
    _memo_locks = weakref.WeakKeyDictionary()
    _memo_locks_guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_memo_locks)


def _instance_weights_digest(model: Any, *, fresh: bool = False) -> str:
    modules = preparation_modules(model)
    # The memo is tied to the module objects (held, so no id is ever reused):
    # swapping one out rehashes.
    identity = tuple(module for _, module in modules)
    with _memo_lock(model):
        memo = model.__dict__.get(_WEIGHTS_MEMO_ATTR)
        if not fresh and memo is not None and _same_objects(memo[0], identity):
            return str(memo[1])
        digest = weights_digest(modules)
        model.__dict__[_WEIGHTS_MEMO_ATTR] = (identity, digest)
        return digest


def _same_objects(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
