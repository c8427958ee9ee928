"""`python -m cached_tts run script.py`: the script runs as python runs it.

The script runs under the real interpreter (`run` execs `python script.py`), so its
`sys.argv`, `__main__`, `sys.path[0]`, traceback and exit code are python's own.
tests/integration/test_run_any_command.py runs real chatterbox programs under
`run`, in this form and the others, and counts their preparations.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cached_tts

ROOT = Path(cached_tts.__file__).resolve().parent.parent

ARGV_SCRIPT = """
import os
import sys

print(repr((__name__, sys.argv, sys.path[0], os.environ["CACHED_TTS_CACHE_DIR"])))
if sys.argv[1] == "fail":
    raise ValueError("the script failed")
sys.exit(int(sys.argv[1]))
"""


def run(script, *args, cache_dir, cwd=None, options=()):
    env = {**os.environ, "CACHED_TTS_CACHE_DIR": str(cache_dir)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("CACHED_TTS_DISABLE", None)
    return subprocess.run(
        [sys.executable, "-m", "cached_tts", "run", *options, str(script), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_script_sees_its_argv_main_name_folder_and_cache_dir_and_keeps_its_exit_code(
    tmp_path,
):
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "show.py").write_text(ARGV_SCRIPT)

    result = run(
        "scripts/show.py",
        "3",
        "--cache-dir",
        "x",
        cache_dir=tmp_path / "c",
        cwd=tmp_path,
        options=["--cache-dir", str(tmp_path / "chosen")],
    )

    assert result.returncode == 3, result.stderr
    shown = eval(result.stdout.strip().splitlines()[-1])  # noqa: S307 -- our own repr
    name, argv, path0, cache_dir = shown
    assert (name, argv) == ("__main__", ["scripts/show.py", "3", "--cache-dir", "x"])
    assert Path(path0) == folder
    assert cache_dir == str(tmp_path / "chosen")


def test_an_uncaught_exception_prints_the_script_traceback_and_exits_1(tmp_path):
    script = tmp_path / "show.py"
    script.write_text(ARGV_SCRIPT)

    result = run(script, "fail", cache_dir=tmp_path / "c")

    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "ValueError: the script failed" in result.stderr
    assert "runpy" not in result.stderr


def test_a_missing_script_exits_2_with_a_message(tmp_path):
    result = run(tmp_path / "absent.py", cache_dir=tmp_path / "c")

    assert result.returncode == 2
    assert "absent.py" in result.stderr


def test_run_hands_its_redis_url_to_the_script_and_an_empty_one_turns_redis_off(tmp_path):
    script = tmp_path / "show_remote.py"
    script.write_text("import os\nprint(repr(os.environ.get('CACHED_TTS_REMOTE')))\n")

    given = run(script, cache_dir=tmp_path / "c", options=["--remote", "redis://127.0.0.1:1/0"])
    turned_off = run(script, cache_dir=tmp_path / "c", options=["--remote", ""])

    assert given.returncode == 0, given.stderr
    assert given.stdout.strip().splitlines()[-1] == "'redis://127.0.0.1:1/0'"
    assert turned_off.stdout.strip().splitlines()[-1] == "''"
