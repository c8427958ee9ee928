"""The layers hold: lint-imports (run by `make test`) keeps the tree's, and fails on one going up.

The contract is pyproject.toml's ``[tool.importlinter]``: the edge (command line, notebook,
bootstrap), testing, wrapping, the cache, tiers, entries, keys and the base, each importing only
the layers below it, and no import cycle among the modules of any folder. These tests run the real
``lint-imports`` on a copy of the package, unchanged and with one import added.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cached_tts

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.fixture
def tree(tmp_path):
    """A copy of the package and its pyproject.toml, which lint-imports reads."""
    shutil.copytree(
        ROOT / "cached_tts", tmp_path / "cached_tts", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def add_import(module: Path, line: str) -> None:
    module.write_text(module.read_text() + f"\n{line}\n")


def test_the_tree_keeps_both_contracts(tree):
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_a_key_module_importing_the_wrapping_layer_breaks_the_layers(tree):
    add_import(tree / "cached_tts/_keys/clip.py", "from cached_tts._wrapping import models")
    result = lint_imports(tree)
    assert result.returncode == 1, result.stdout
    assert "cached_tts._keys is not allowed to import cached_tts._wrapping" in result.stdout
    assert "cached_tts._keys.clip -> cached_tts._wrapping.models" in result.stdout


def test_a_tier_importing_the_notebook_through_the_package_breaks_the_layers(tree):
    # The package's __init__ loads the notebook extension on demand: importing the root from
    # inside a layer is a path up, and the contract sees it.
    add_import(tree / "cached_tts/_tiers/memory.py", "import cached_tts")
    result = lint_imports(tree)
    assert result.returncode == 1, result.stdout
    assert "cached_tts._tiers is not allowed to import cached_tts._ipython" in result.stdout


def test_a_cycle_inside_one_folder_breaks_the_acyclic_contract(tree):
    # display sits below stats in the cache's folder; an import back makes a cycle that the
    # layers contract, which looks only between layers, cannot see.
    add_import(tree / "cached_tts/_cache/display.py", "from cached_tts._cache import stats")
    result = lint_imports(tree)
    assert result.returncode == 1, result.stdout
    assert "No import cycles, in any folder BROKEN" in result.stdout
    assert "Layers: the edge, wrapping, the cache, tiers, entries, keys, the base KEPT" in (
        result.stdout
    )


def test_the_version_is_pyprojects():
    # tomllib is Python 3.11's; the project supports 3.10.
    version = re.search(r'(?m)^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text())
    assert version is not None
    assert cached_tts.__version__ == version.group(1)
