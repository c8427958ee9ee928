"""`cached-tts run` and its bootstrap, on processes that need no model (fast).

A stand-in `chatterbox` package (a folder of a few lines) shows when the
bootstrap acts; the real one is in tests/integration/test_run_any_command.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cached_tts
from cached_tts._bootstrap import sitecustomize
from cached_tts._cache import cache as _cache
from cached_tts._cli import runner as _runner
from cached_tts._tiers.redis import tier as _remote

ROOT = Path(cached_tts.__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BOOTSTRAP = Path(cached_tts.__file__).resolve().parent / "_bootstrap"

SHOW_STATE = """
import os, sys
finders = [type(f).__name__ for f in sys.meta_path]
heavy = [name for name in ("torch", "chatterbox", "cached_tts", "wrapt") if name in sys.modules]
print(repr((heavy, "_EnableOnChatterboxImport" in finders, os.environ.get("USER_SITE_RAN"))))
"""


def environment(pythonpath=(), **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHED_TTS_")}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), str(ROOT)])
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    return {**env, **extra}


def cached_tts_run(*command, env, cwd=None):
    return subprocess.run(
        [str(BIN / "cached-tts"), "run", *command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def python_c(program, *, env):
    """This Python, with no run in between: what a container's PYTHONPATH alone does."""
    return subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=False
    )


def shown(result):
    assert result.returncode == 0, result.stderr
    return eval(result.stdout.strip().splitlines()[-1])  # noqa: S307 -- our own repr


def stand_in_chatterbox(folder: Path) -> Path:
    """A `chatterbox` with a tts module only: patching it fails (no chatterbox.vc)."""
    package = folder / "chatterbox"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "tts.py").write_text("class ChatterboxTTS:\n    pass\n")
    return folder


def test_a_process_that_never_imports_chatterbox_loads_neither_torch_nor_cached_tts():
    result = cached_tts_run("python", "-c", SHOW_STATE, env=environment())

    heavy, armed, _ = shown(result)
    assert heavy == []
    assert armed


def test_run_puts_its_bootstrap_first_and_keeps_the_pythonpath_it_was_given(tmp_path):
    given = environment([tmp_path])

    env = _runner.environment(given, cache_dir=Path("rel"), remote="")

    assert env["PYTHONPATH"].split(os.pathsep) == [str(BOOTSTRAP), str(tmp_path), str(ROOT)]
    assert env[_cache.CACHE_DIR_ENV] == os.path.abspath("rel")
    assert env[_remote.REMOTE_ENV] == ""
    assert _runner.environment(env, cache_dir=None, remote=None)["PYTHONPATH"] == env["PYTHONPATH"]


def test_a_sitecustomize_the_environment_already_had_still_runs(tmp_path):
    (tmp_path / "sitecustomize.py").write_text("import os\nos.environ['USER_SITE_RAN'] = 'yes'\n")

    result = cached_tts_run("python", "-c", SHOW_STATE, env=environment([tmp_path]))

    _, armed, user_site = shown(result)
    assert (armed, user_site) == (True, "yes")


def _other_pythons() -> list[str]:
    """Every Python 3.7+ this machine has besides this one (pyenv's), and this one."""
    found = {sys.executable}
    for python in Path(os.path.expanduser("~/.pyenv/versions")).glob("3.*/bin/python3"):
        minor = int(python.parent.parent.name.split(".")[1])
        if minor >= 7:  # the oldest Python the bootstrap supports
            found.add(str(python))
    return sorted(found)


@pytest.mark.parametrize("python", _other_pythons())
def test_any_python_of_the_tree_starts_with_the_bootstrap_and_the_users_sitecustomize(
    python, tmp_path
):
    """A tree may start other Pythons than cached-tts's own (a tool's, the system's)."""
    (tmp_path / "sitecustomize.py").write_text("print('the user sitecustomize ran')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHOME"}
    env["PYTHONPATH"] = os.pathsep.join([str(BOOTSTRAP), str(tmp_path)])

    result = subprocess.run(
        [python, "-c", "import sys; print(type(sys.meta_path[0]).__name__)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.stderr == ""
    assert result.stdout.split() == [
        "the",
        "user",
        "sitecustomize",
        "ran",
        "_EnableOnChatterboxImport",
    ]


def test_the_container_setting_alone_arms_every_python_process():
    env = environment([BOOTSTRAP])

    result = python_c(SHOW_STATE, env=env)

    assert shown(result)[:2] == ([], True)


def test_a_failure_to_patch_is_logged_and_the_program_runs_on_uncached(tmp_path):
    stand_in_chatterbox(tmp_path)
    program = "import chatterbox.tts\nprint('the program ran')\n"

    result = cached_tts_run("python", "-c", program, env=environment([tmp_path]))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "the program ran"
    assert "could not patch chatterbox.tts; it runs uncached" in result.stderr


def test_a_bootstrap_that_cannot_enable_caching_warns_and_the_program_runs_on(tmp_path):
    stand_in_chatterbox(tmp_path)
    broken = tmp_path / "wrapt"  # what enable() needs; ahead of site-packages here
    broken.mkdir()
    (broken / "__init__.py").write_text("raise RuntimeError('a broken install')\n")
    program = "import chatterbox.tts\nprint('the program ran')\n"
    env = environment()
    env["PYTHONPATH"] = os.pathsep.join([str(BOOTSTRAP), str(tmp_path)])

    result = python_c(program, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "the program ran"
    assert "could not enable caching in this process; it runs uncached" in result.stderr
    assert "a broken install" in result.stderr


def test_caching_disabled_for_one_process_leaves_its_imports_alone(tmp_path):
    stand_in_chatterbox(tmp_path)
    program = "import sys, chatterbox.tts\nprint('wrapt' in sys.modules)\n"
    env = environment([tmp_path], CACHED_TTS_DISABLE="1")

    result = cached_tts_run("python", "-c", program, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert "uncached" not in result.stderr


def test_run_keeps_the_exit_code_stdin_and_the_arguments_of_any_command(tmp_path):
    script = "import sys\nprint(sys.stdin.read().upper(), sys.argv[1:])\nsys.exit(3)\n"
    (tmp_path / "upper.py").write_text(script)

    result = subprocess.run(
        [str(BIN / "cached-tts"), "run", "upper.py", "-m", "x"],
        env=environment(),
        cwd=tmp_path,
        input="voice",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    shell = cached_tts_run("sh", "-c", "echo $PYTHONPATH; exit 7", env=environment())

    assert (result.returncode, result.stdout.strip()) == (3, "VOICE ['-m', 'x']")
    assert shell.returncode == 7
    assert shell.stdout.startswith(str(BOOTSTRAP))


def test_run_m_runs_a_module_with_its_arguments(tmp_path):
    (tmp_path / "hello.py").write_text("import sys\nprint(__name__, sys.argv[1:])\n")

    result = cached_tts_run("-m", "hello", "a", "--b", env=environment([tmp_path]))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "__main__ ['a', '--b']"


def test_a_missing_command_exits_127_and_a_missing_script_2(tmp_path):
    missing = cached_tts_run("no-such-command-here", env=environment())
    script = cached_tts_run(str(tmp_path / "absent.py"), env=environment())

    assert missing.returncode == 127
    assert "command not found: no-such-command-here" in missing.stderr
    assert script.returncode == 2
    assert "absent.py" in script.stderr


def test_a_remote_that_names_no_tier_is_a_usage_error_before_anything_runs(tmp_path):
    marker = tmp_path / "ran"

    result = cached_tts_run(
        "--remote", "ftp://x", "python", "-c", f"open({str(marker)!r}, 'w')", env=environment()
    )

    assert result.returncode == 2
    assert "neither a Redis URL" in result.stderr
    assert not marker.exists()


def test_the_names_run_sets_are_the_ones_the_cache_reads():
    assert (_runner.CACHE_DIR_ENV, _runner.REMOTE_ENV) == (_cache.CACHE_DIR_ENV, _remote.REMOTE_ENV)


def test_sigterm_reaches_the_command_itself():
    program = textwrap.dedent(
        """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(42))
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    with subprocess.Popen(
        [str(BIN / "cached-tts"), "run", "python", "-c", program],
        env=environment(),
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        process.terminate()
        assert process.wait(timeout=30) == 42


COUNT_FINDERS = """
import sys
print(sum(type(f).__name__ == "_EnableOnChatterboxImport" for f in sys.meta_path))
"""


def two_bootstraps(tmp_path: Path, layout: str) -> list[Path]:
    """Two bootstrap folders on one path: two installs' copies, or one spelled two ways."""
    first = tmp_path / "first"
    if layout == "symlink":  # a container's spelling of the folder, apart from __file__'s
        first.symlink_to(BOOTSTRAP, target_is_directory=True)
        return [first, BOOTSTRAP]
    shutil.copytree(BOOTSTRAP, first)
    second = tmp_path / "second"
    shutil.copytree(BOOTSTRAP, second)
    return [first, second, first, second] if layout == "copies-twice" else [first, second]


@pytest.mark.parametrize("layout", ["copies", "copies-twice", "symlink"])
def test_two_bootstraps_on_the_path_arm_once_and_run_the_users_sitecustomize_once(tmp_path, layout):
    user = tmp_path / "user"
    user.mkdir()
    (user / "sitecustomize.py").write_text("print('the user sitecustomize ran')\n")
    folders = two_bootstraps(tmp_path, layout)

    result = python_c(COUNT_FINDERS, env=environment([*folders, user]))

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == ["the user sitecustomize ran", "1"]


def test_a_sitecustomize_before_the_bootstrap_that_chains_to_it_is_not_run_again(tmp_path):
    # As ours does, another tool's sitecustomize may run the next one on the path.
    chaining = tmp_path / "chaining"
    chaining.mkdir()
    (chaining / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import importlib.util, sys
            from importlib.machinery import PathFinder
            print("the chaining sitecustomize ran")
            spec = PathFinder.find_spec("sitecustomize", sys.path[1:])
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
            """
        )
    )

    result = python_c(COUNT_FINDERS, env=environment([chaining, BOOTSTRAP]))

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == ["the chaining sitecustomize ran", "1"]


def test_run_does_not_add_its_bootstrap_again_when_the_path_spells_it_through_a_symlink(
    tmp_path,
):
    link = tmp_path / "bootstrap"
    link.symlink_to(BOOTSTRAP, target_is_directory=True)
    given = environment([link])

    env = _runner.environment(given, cache_dir=None, remote=None)

    assert env["PYTHONPATH"] == given["PYTHONPATH"]


def test_the_finder_takes_the_import_systems_arguments_by_keyword_too():
    finder = sitecustomize._EnableOnChatterboxImport()

    assert finder.find_spec("json", None, target=None) is None
    assert finder.find_spec("json", path=None, target=None) is None
    assert not finder.done


SHOW_ARGV = "import os, sys\nprint(sys.argv[1:], os.environ.get('CACHED_TTS_CACHE_DIR'))\n"


@pytest.mark.parametrize(
    ("run_options", "verbose"),
    [
        (["-m", "show"], False),
        (["-mshow"], False),
        (["-v", "-m", "show"], True),
        (["-vm", "show"], True),
    ],
)
def test_every_word_after_the_module_is_the_modules_own(tmp_path, run_options, verbose):
    (tmp_path / "show.py").write_text(SHOW_ARGV)
    its_own = ["-v", "in.txt", "--cache-dir", "/x", "--remote", "ftp://x", "--help", "-m", "y"]

    result = cached_tts_run(*run_options, *its_own, env=environment([tmp_path]))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{its_own!r} None"
    assert ("executing" in result.stderr) == verbose


def test_every_word_after_a_command_is_the_commands_own(tmp_path):
    (tmp_path / "show.py").write_text(SHOW_ARGV)
    its_own = ["--help", "-v", "--cache-dir", "/x", "-m", "y"]

    script = cached_tts_run("show.py", *its_own, env=environment(), cwd=tmp_path)
    command = cached_tts_run(
        "--cache-dir", "/c", "python", "show.py", *its_own, env=environment(), cwd=tmp_path
    )

    assert (script.returncode, command.returncode) == (0, 0), script.stderr + command.stderr
    assert script.stdout.strip() == f"{its_own!r} None"
    assert command.stdout.strip() == f"{its_own!r} /c"


def test_run_options_before_the_module_still_apply(tmp_path):
    (tmp_path / "show.py").write_text(SHOW_ARGV)

    result = cached_tts_run(
        "--cache-dir", "/c", "--remote=", "-m", "show", "a", env=environment([tmp_path])
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['a'] /c"
