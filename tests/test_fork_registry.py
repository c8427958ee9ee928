"""Every lock of the package is built anew in a forked child: none can be missed.

A lock held by a thread when the process forks stays held forever in the child.
So each one is registered with ``renew_after_fork``. Two walks make sure of it:
one over the source, for every lock the package can build, and one over live
modules and objects, for every lock they hold.
"""

from __future__ import annotations

import _thread
import ast
import importlib
import pkgutil
import threading
import uuid
import weakref
from pathlib import Path

import pytest
from strategies import voice_entry

import cached_tts
from cached_tts import ConditionalCache, EntryKey, _forksafe
from cached_tts._entries.entry import _exaggeration_copier
from cached_tts._keys.fingerprint import _memo_lock
from cached_tts._wrapping.voice import model_lock

PACKAGE = Path(cached_tts.__file__).parent

# What builds a lock (or a lock-like object that a thread may hold across a fork).
LOCK_NAMES = frozenset({"Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore", "ModelLock"})
LOCK_TYPES = (_thread.LockType, _thread.RLock, threading.Condition, threading.Semaphore)

# The registry's own lock is renewed by renew_all itself, before anything else.
RENEWED_BY_THE_REGISTRY = {("_forksafe.py", "_registry_lock")}


def package_files():
    return sorted(PACKAGE.rglob("*.py"))


def is_lock_builder(node: ast.AST) -> bool:
    """``threading.Lock``, ``ModelLock``...: called or passed on (as a factory)."""
    if isinstance(node, ast.Attribute):
        return node.attr in LOCK_NAMES and isinstance(node.value, ast.Name)
    return isinstance(node, ast.Name) and node.id in LOCK_NAMES


def is_registration(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, "id", None) == "renew_after_fork"


def registered_names(scope: ast.AST, owner: str) -> set[str]:
    """Names registered in ``scope`` for ``self`` (``owner="self"``) or the module."""
    names = set()
    for node in ast.walk(scope):
        if is_registration(node) and node.args:
            first = node.args[0]
            if (isinstance(first, ast.Name) and first.id == owner) or (
                owner == "module" and isinstance(first, ast.Subscript)
            ):
                names |= {keyword.arg for keyword in node.keywords}
    return names


def unregistered_locks(path: Path, root: Path = PACKAGE) -> list[str]:
    """Where ``path`` builds a lock that no ``renew_after_fork`` renews."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    module_names = registered_names(tree, "module")
    problems = []
    for node in ast.walk(tree):
        if not is_lock_builder(node) or isinstance(parents.get(node), ast.ClassDef):
            continue  # a base class is not a lock
        if in_annotation(node, parents):
            continue
        where = f"{path.relative_to(root)}:{node.lineno}"
        held_by = holder(node, parents)
        if held_by is None:
            problems.append(f"{where}: a lock that is not kept in a named attribute")
            continue
        kind, name, scope = held_by
        if (path.name, name) in RENEWED_BY_THE_REGISTRY:
            continue
        renewed = registered_names(scope, "self") if kind == "self" else module_names
        if kind != "factory" and name not in renewed:
            problems.append(f"{where}: {name} is not registered with renew_after_fork")
    return problems


def in_annotation(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether ``node`` is part of a type annotation (``-> threading.Lock``)."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if any(child is getattr(parent, field, None) for field in ("annotation", "returns")):
            return True
        child, parent = parent, parents.get(parent)
    return False


def holder(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> tuple[str, str, ast.AST] | None:
    """What keeps the lock ``node`` builds: ("self" | "module" | "factory", name, class)."""
    child, parent = node, parents.get(node)
    if isinstance(parent, ast.Call) and parent.func is child:
        child, parent = parent, parents.get(parent)  # threading.Lock() rather than threading.Lock
    # Inside a container's call (``_locks.setdefault(model, ModelLock())``): the container.
    if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute):
        return target_of(parent.func.value, parents)
    while parent is not None:
        if is_registration(parent):
            return ("factory", "", parent)
        if isinstance(parent, ast.Assign | ast.AnnAssign):
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            return target_of(targets[0], parents)
        if isinstance(parent, ast.stmt):
            return None
        child, parent = parent, parents.get(parent)
    return None


def target_of(target: ast.AST, parents: dict[ast.AST, ast.AST]) -> tuple[str, str, ast.AST] | None:
    if isinstance(target, ast.Name):
        return ("module", target.id, target)
    if isinstance(target, ast.Attribute) and getattr(target.value, "id", None) == "self":
        scope = target
        while scope is not None and not isinstance(scope, ast.ClassDef):
            scope = parents.get(scope)
        return ("self", target.attr, scope) if scope is not None else None
    return None


def test_every_lock_the_source_builds_is_renewed_after_fork():
    problems = [problem for path in package_files() for problem in unregistered_locks(path)]
    assert problems == []


def test_the_source_walk_finds_a_lock_left_out(tmp_path):
    """The walk itself: an unregistered lock, in each place one can be kept, is reported."""
    source = tmp_path / "leaky.py"
    source.write_text(
        "import sys, threading\n"
        "_kept = threading.Lock()\n"
        "_forgotten = threading.RLock()\n"
        "renew_after_fork(sys.modules[__name__], _kept=threading.Lock)\n"
        "class Tier:\n"
        "    def __init__(self):\n"
        "        self._lock = threading.Lock()\n"
        "        self._open = threading.Condition()\n"
        "        renew_after_fork(self, _lock=threading.Lock)\n"
        "def lock_for(model):\n"
        "    return _locks.setdefault(model, threading.Lock())\n"
        "def passed_on():\n"
        "    use(threading.Semaphore(2))\n"
    )
    assert unregistered_locks(source, root=tmp_path) == [
        "leaky.py:3: _forgotten is not registered with renew_after_fork",
        "leaky.py:8: _open is not registered with renew_after_fork",
        "leaky.py:11: _locks is not registered with renew_after_fork",
        "leaky.py:13: a lock that is not kept in a named attribute",
    ]


# -- live objects -------------------------------------------------------------------


def all_modules():
    names = [cached_tts.__name__] + [
        info.name for info in pkgutil.walk_packages(cached_tts.__path__, "cached_tts.")
    ]
    return [importlib.import_module(name) for name in names]


def holds_locks(value: object) -> bool:
    if isinstance(value, LOCK_TYPES):
        return True
    if isinstance(value, dict | weakref.WeakKeyDictionary | weakref.WeakValueDictionary):
        return any(isinstance(item, LOCK_TYPES) for item in list(value.values()))
    return False


def lock_attributes(owner: object) -> set[str]:
    return {name for name, value in vars(owner).items() if holds_locks(value)}


def renewed(owner: object) -> set[str]:
    return set(_forksafe._owners.get(owner, {}))


def objects_of_the_package(root: object) -> list[object]:
    """``root`` and every object of a ``cached_tts`` class it reaches through attributes."""
    found, seen, todo = [], set(), [root]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if not type(item).__module__.startswith("cached_tts") or not hasattr(item, "__dict__"):
            continue
        found.append(item)
        for value in vars(item).values():
            todo.extend(value if isinstance(value, list | tuple) else [value])
    return found


@pytest.fixture
def busy(tmp_path):
    """A cache with every tier, after a lookup, and the module-level memos filled."""
    model = type("Model", (), {})()
    model_lock(model)
    _memo_lock(model)
    _exaggeration_copier(0.25)
    url = f"memory://cached-tts-tests/{uuid.uuid4().hex}/prod"
    cache = ConditionalCache(tmp_path / "cache", remote=[url, f"file://{tmp_path}/bucket"])
    key = EntryKey(content="c" * 64, weights="w", settings=(("device", "cpu"),))
    cache.get_or_prepare(key, lambda: voice_entry(1.0))
    cache.get_or_prepare(key, lambda: voice_entry(1.0))
    cache.stats()
    return cache, model


@pytest.mark.usefixtures("busy")
def test_every_lock_a_module_holds_is_renewed_after_fork():
    unrenewed = {
        module.__name__: lock_attributes(module) - renewed(module)
        for module in all_modules()
        if module is not _forksafe
    }
    assert {name: locks for name, locks in unrenewed.items() if locks} == {}


def test_every_lock_a_cache_and_its_tiers_hold_is_renewed_after_fork(busy):
    cache, _model = busy
    objects = objects_of_the_package(cache)
    assert {type(item).__name__ for item in objects} >= {
        "ConditionalCache",
        "DiskStore",
        "FileHasher",
        "Health",
        "MemoryTier",
        "ObjectStoreTier",
        "OpenOnce",
        "SingleFlight",
        "Toucher",
    }
    unrenewed = {
        type(item).__name__: lock_attributes(item) - renewed(item)
        for item in objects
        if lock_attributes(item) - renewed(item)
    }
    assert unrenewed == {}
