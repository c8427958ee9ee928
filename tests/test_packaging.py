"""What users install is the whole package: the wheel and sdist hold every module.

The suite itself runs against an editable install, whose finder serves any module of the
checkout whether the wheel would ship it or not; so these tests build the distributions
from a copy of the tree, as ``pip install .`` does, and run the installed copy in a venv
that has no editable finder and no view of the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

# Building, installing and running the wheel takes a minute of a two-core
# machine: make test leaves it to CI (.ci/run), which runs every test.
pytestmark = pytest.mark.ci_only

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cached_tts"


def _tree_files() -> set[str]:
    """The package's files in the checkout, as ``cached_tts/...`` paths."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def _source_copy(destination: Path) -> Path:
    """The checkout's files as git sees them (tracked and new, not ignored), copied."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An sdist and a wheel built from it, as ``python -m build`` makes them."""
    source = _source_copy(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    return out


def _one(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


def test_the_wheel_holds_every_module_of_the_tree_and_py_typed(dist):
    with zipfile.ZipFile(_one(dist, "*.whl")) as wheel:
        shipped = {name for name in wheel.namelist() if name.startswith("cached_tts/")}
    assert shipped == _tree_files()
    assert "cached_tts/py.typed" in shipped
    assert "cached_tts/_cli/__init__.py" in shipped


def test_the_wheel_holds_no_benchmark_code(dist):
    # The benchmark measures a checkout (benchmarks/bench.py); users run `cached-tts demo`.
    with zipfile.ZipFile(_one(dist, "*.whl")) as wheel:
        modules = [name for name in wheel.namelist() if name.endswith(".py")]
    assert "cached_tts/__init__.py" in modules
    assert [name for name in modules if "bench" in name.lower()] == []


def test_the_sdist_holds_every_module_of_the_tree(dist):
    with tarfile.open(_one(dist, "*.tar.gz")) as sdist:
        files = [member.name for member in sdist.getmembers() if member.isfile()]
    top = files[0].split("/")[0]
    shipped = {name.removeprefix(f"{top}/") for name in files}
    assert _tree_files() <= shipped


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the wheel, not editable, whose other packages are the suite's.

    The dependencies (torch, chatterbox: 6 GB) come from this venv's site-packages,
    added as a plain path: Python processes ``.pth`` files only in site folders, so
    the editable finder that this venv's ``__editable__`` file installs never runs there.
    """
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    Path(purelib, "suite-dependencies.pth").write_text(deps + "\n")
    wheel = str(_one(dist, "*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", wheel],
        check=True,
        capture_output=True,
    )
    return venv


def _outside(venv: Path, tmp_path: Path, *command: str | Path) -> subprocess.CompletedProcess[str]:
    """``command`` from the venv's bin, run in ``tmp_path``: nothing of the checkout in view."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONSAFEPATH"}}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(venv / "bin" / str(command[0])), *map(str, command[1:])],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_the_installed_wheel_runs_its_command_line_from_outside_the_checkout(installed, tmp_path):
    where = _outside(
        installed, tmp_path, "python", "-c", "import cached_tts; print(cached_tts.__file__)"
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed)
    assert not Path(where.stdout.strip()).is_relative_to(ROOT)

    version = _outside(installed, tmp_path, "cached-tts", "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("cached-tts ")

    demo = _outside(
        installed,
        tmp_path,
        "cached-tts",
        "demo",
        "--random-weights",
        "--no-generate",
        "--cache-dir",
        "cache",
    )
    assert demo.returncode == 0, demo.stderr
    assert "memory hit" in demo.stdout

    # The wheel has no benchmark: the command says where it is, in one line.
    bench = _outside(installed, tmp_path, "cached-tts", "bench")
    assert bench.returncode == 2
    assert "python benchmarks/bench.py" in bench.stderr
    assert len(bench.stderr.splitlines()) == 1

    listed = _outside(installed, tmp_path, "cached-tts", "ls", "--cache-dir", "cache")
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.strip().splitlines()) == 2  # the header and the demo's voice

    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from chatterbox.tts import ChatterboxTTS

            patched = hasattr(ChatterboxTTS.prepare_conditionals, "__wrapped__")
            print(patched, sys.modules["cached_tts"].__file__)
            sys.exit(3)
            """
        )
    )
    ran = _outside(installed, tmp_path, "cached-tts", "run", script)
    assert ran.returncode == 3, ran.stderr
    patched, module = ran.stdout.split()
    assert patched == "True"
    assert Path(module).is_relative_to(installed)
