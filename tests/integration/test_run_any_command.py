"""`cached-tts run` on real programs started the ways users start them.

None of the programs (tests/integration/programs) imports cached_tts: each
builds a plain ChatterboxTTS on random weights and counts upstream's real
preparations (S3Gen's reference embedding), and saves what it prepared, which
must be bitwise what the plain run gives. Under `cached-tts run --cache-dir D`
each voice is prepared once across the whole process tree (at most once per
worker when workers race on a cold folder).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from chatterbox.tts import Conditionals

import cached_tts
from cached_tts.testing import assert_same_conditionals

pytestmark = pytest.mark.slow

ROOT = Path(cached_tts.__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PROGRAMS = Path(__file__).resolve().parent / "programs"
VOICES = ("alice", "bob")


def environment(out: Path, *, path=(), pythonpath=()):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHED_TTS_")}
    env["PYTHONPATH"] = os.pathsep.join(map(str, [*pythonpath, PROGRAMS, ROOT]))
    env["PATH"] = os.pathsep.join(map(str, [*path, BIN, env.get("PATH", "")]))
    env["PLAINVOICE_OUT"] = str(out)
    out.mkdir(parents=True, exist_ok=True)
    return env


def start(command, env, **options):
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=900, check=False, **options
    )


def reports(result):
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith('{"preparations"')]
    return [json.loads(line) for line in lines]


def total(preparations):
    counts = dict.fromkeys(VOICES, 0)
    for each in preparations:
        for voice, n in each.items():
            counts[voice] += n
    return counts


@pytest.fixture(scope="module")
def plain_run(clips, tmp_path_factory):
    """The plain program's preparations and results: the reference."""
    out = tmp_path_factory.mktemp("plain")
    result = start(
        [sys.executable, PROGRAMS / "speak.py", clips["alice"], clips["bob"]], environment(out)
    )
    (report,) = reports(result)
    return report["preparations"], {
        voice: Conditionals.load(next(out.glob(f"{voice}-*.pt"))) for voice in VOICES
    }


def assert_bitwise_plain(out: Path, plain_run) -> int:
    """Every result the programs saved is bitwise the plain run's; how many there were."""
    _, reference = plain_run
    saved = sorted(out.glob("*.pt"))
    for path in saved:
        assert_same_conditionals(Conditionals.load(path), reference[path.name.split("-")[0]])
    return len(saved)


def cached_tts_run(*command):
    return [BIN / "cached-tts", "run", *command]


def run_on_voices(tmp_path, clips, *command):
    """`cached-tts run --cache-dir D COMMAND alice.wav bob.wav`; results saved in tmp_path/out."""
    voices = [clips["alice"], clips["bob"]]
    return start(
        cached_tts_run("--cache-dir", tmp_path / "cache", *command, *voices),
        environment(tmp_path / "out"),
    )


def test_the_plain_program_prepares_every_time(plain_run):
    assert plain_run[0] == {"alice": 2, "bob": 2}


def build_wheel(folder: Path) -> Path:
    """A wheel whose console script `speak-voices` runs the plain speak program.

    Written by hand: the venv has no `wheel` package for setuptools, and the
    test must not download a build backend.
    """
    name, info = "speak_voices-1.0-py3-none-any.whl", "speak_voices-1.0.dist-info"
    files = {
        "speak_voices.py": "import sys, speak\n\ndef main():\n    speak.main(sys.argv[1:])\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: speak-voices\nVersion: 1.0\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{info}/entry_points.txt": "[console_scripts]\nspeak-voices = speak_voices:main\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    wheel = folder / name
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def entries(cache_dir: Path) -> list[Path]:
    folder = cache_dir / "entries"
    return sorted(folder.glob("*.safetensors")) if folder.exists() else []


def test_a_console_script_installed_by_pip_is_cached_and_the_next_run_prepares_nothing(
    clips, plain_run, tmp_path
):
    target = tmp_path / "installed"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", "install"]
    installed = start(
        [*pip, "--no-deps", "--no-index", "--target", target, build_wheel(tmp_path)], os.environ
    )
    assert installed.returncode == 0, installed.stderr
    env = environment(tmp_path / "out", path=[target / "bin"], pythonpath=[target])
    cache = tmp_path / "cache"
    voices = [clips["alice"], clips["bob"]]

    first = start(cached_tts_run("--cache-dir", cache, "speak-voices", *voices), env)
    # The next run, of the same program as a script: `run speak.py` execs `python speak.py`.
    second = start(cached_tts_run("--cache-dir", cache, PROGRAMS / "speak.py", *voices), env)

    assert [r["preparations"] for r in reports(first)] == [{"alice": 1, "bob": 1}]
    assert [r["preparations"] for r in reports(second)] == [{}]
    assert len(entries(cache)) == 2
    assert assert_bitwise_plain(tmp_path / "out", plain_run) == 8


def test_with_caching_disabled_a_script_prepares_every_time_and_stores_nothing(
    clips, plain_run, tmp_path
):
    env = {**environment(tmp_path / "out"), "CACHED_TTS_DISABLE": "1"}
    cache = tmp_path / "cache"

    result = start(
        cached_tts_run("--cache-dir", cache, PROGRAMS / "speak.py", clips["alice"], clips["bob"]),
        env,
    )

    assert [r["preparations"] for r in reports(result)] == [{"alice": 2, "bob": 2}]
    assert entries(cache) == []
    assert assert_bitwise_plain(tmp_path / "out", plain_run) == 4


def test_a_module_run_with_m_is_cached_and_its_subprocess_child_serves_from_its_folder(
    clips, plain_run, tmp_path
):
    # The parent prepares each voice once and stores it (plain, its child would
    # prepare each twice); the child is `python speak.py`, started by the parent.
    result = run_on_voices(tmp_path, clips, "-m", "parent_child")

    child, parent = reports(result)
    assert (parent["preparations"], child["preparations"]) == ({"alice": 1, "bob": 1}, {})
    assert assert_bitwise_plain(tmp_path / "out", plain_run) == 6


def test_a_multiprocessing_spawn_pool_of_two_shares_the_folder(clips, plain_run, tmp_path):
    result = run_on_voices(tmp_path, clips, PROGRAMS / "spawn_pool.py")

    (report,) = reports(result)
    # Plain, the 6 tasks prepare 6 times; cached, each voice at most once per worker.
    assert all(1 <= n <= report["workers"] <= 2 for n in total([report["preparations"]]).values())
    assert assert_bitwise_plain(tmp_path / "out", plain_run) == 6


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=300) as response:  # noqa: S310 -- loopback
        return json.loads(response.read())


def wait_until_serving(process, url, deadline):
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            with urllib.request.urlopen(url, timeout=5):  # noqa: S310 -- loopback
                return
        except OSError:
            time.sleep(1)
    pytest.fail("the server never answered")


def test_uvicorn_with_two_workers_prepares_each_voice_at_most_once_per_worker(
    clips, plain_run, tmp_path
):
    env = environment(tmp_path / "out")
    port = free_port()
    command = cached_tts_run(
        "--cache-dir",
        tmp_path / "cache",
        "uvicorn",
        "voice_server:app",
        "--workers",
        "2",
        "--port",
        str(port),
        "--app-dir",
        PROGRAMS,
    )
    base = f"http://127.0.0.1:{port}"
    with subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as server:
        try:
            wait_until_serving(server, f"{base}/docs", time.monotonic() + 600)
            answers = [get(f"{base}/prepare?clip={clips[VOICES[i % 2]]}") for i in range(12)]
        finally:
            # SIGTERM reaches uvicorn itself (`run` became it): it stops its workers, exits 0.
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=120)
    last = {answer["pid"]: answer["preparations"] for answer in answers}
    counts = total(last.values())

    assert code == 0, server.stderr.read()[-3000:] if server.stderr else ""
    # Plain, 12 requests prepare 12 times; cached, each voice at most once per worker.
    assert all(1 <= n <= len(last) for n in counts.values()), counts
    assert assert_bitwise_plain(tmp_path / "out", plain_run) == 12


def test_an_import_shim_installed_before_chatterbox_is_the_one_chatterbox_uses(
    clips, plain_run, tmp_path
):
    result = run_on_voices(tmp_path, clips, "python", PROGRAMS / "shim_first.py")

    (report,) = reports(result)
    assert report["shim_used"] == ["perth.perth_net"]
    assert report["preparations"] == {"alice": 1, "bob": 1}
    assert assert_bitwise_plain(tmp_path / "out", plain_run) == 2
