"""The real ``cached-tts`` in a pseudo-terminal, driven as a user drives it.

Each test spawns ``python -m cached_tts`` (what the ``cached-tts`` script
runs) under a pty, so stdin and stderr are terminals: the prompt asks,
Ctrl-C and Ctrl-D arrive as keys, and the progress display is live.
"""

import os
import signal
import sys

import pytest
from strategies import voice_entry

from cached_tts._keys.key import EntryKey
from cached_tts._tiers.disk.store import DiskStore
from cached_tts.testing import write_voice_clip

pexpect = pytest.importorskip("pexpect")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def as_from_a_terminal() -> None:
    """Ctrl-C reaches the child as it reaches a command typed at a shell.

    A suite started in the background (``make test &``, some CI runners) runs
    with SIGINT ignored, which every child would inherit, and Python leaves an
    ignored SIGINT ignored: the Ctrl-C tests would wait for an exit that never
    comes.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(*argv, timeout=60):
    env = {**os.environ, "PYTHONPATH": ROOT, "COLUMNS": "100", "TERM": "xterm"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "cached_tts", *map(str, argv)],
        env=env,
        encoding="utf-8",
        timeout=timeout,
        dimensions=(24, 100),
        preexec_fn=as_from_a_terminal,
    )
    child.logfile_read = None
    return child


def finish(child):
    rest = child.read()
    child.close()
    return rest, child.exitstatus, child.signalstatus


@pytest.fixture
def folder(tmp_path):
    store = DiskStore(tmp_path / "cache")
    store.prepare()
    for n in range(2):
        key = EntryKey(content=f"{n}" * 64, weights="weights:x", settings=())
        store.write(key, voice_entry(), source=f"/v/{n}.wav")
    return tmp_path / "cache"


def entries(folder):
    return len(DiskStore(folder).files())


def test_clear_asks_and_only_yes_removes(folder):
    child = spawn("clear", "--cache-dir", folder)
    child.expect_exact(f"Remove all 2 entries in {folder}? [y/N] ")
    child.sendline("n")
    rest, code, _ = finish(child)
    assert "Nothing removed." in rest
    assert (code, entries(folder)) == (0, 2)

    child = spawn("clear", "--cache-dir", folder)
    child.expect_exact("[y/N] ")
    child.sendline("y")
    rest, code, _ = finish(child)
    assert f"Removed 2 entries from {folder}." in rest
    assert (code, entries(folder)) == (0, 0)


def test_ctrl_d_at_the_prompt_is_a_no(folder):
    child = spawn("clear", "--cache-dir", folder)
    child.expect_exact("[y/N] ")
    child.sendeof()
    rest, code, _ = finish(child)
    assert "EOFError" not in rest
    assert "Nothing removed." in rest
    assert (code, entries(folder)) == (0, 2)


def test_ctrl_c_at_the_prompt_is_one_line_and_exit_130(folder):
    child = spawn("clear", "--cache-dir", folder)
    child.expect_exact("[y/N] ")
    child.sendintr()
    rest, code, _ = finish(child)
    # The terminal itself echoes ^C; the command adds one line.
    shown = [line for line in rest.replace("^C", "").splitlines() if line.strip()]
    assert shown == ["cached-tts: interrupted"]
    assert (code, entries(folder)) == (130, 2)


def test_ctrl_c_while_the_model_loads_is_one_line_and_exit_130(tmp_path):
    clip = write_voice_clip(tmp_path / "v.wav", seconds=0.5)
    child = spawn("say", "Hi.", "--voice", clip, "--random-weights", "--cache-dir", tmp_path)
    child.expect_exact(
        "Loading the english model (random weights)..."
    )  # imports and the build run now
    child.sendintr()
    rest, code, _ = finish(child)
    assert "Traceback" not in rest
    assert rest.strip().splitlines()[-1] == "cached-tts: interrupted"
    assert code == 130


@pytest.mark.slow
def test_warm_shows_one_display_and_stdout_has_only_its_summary(tmp_path):
    clip = write_voice_clip(tmp_path / "carol.wav", seconds=2.5, seed=3)
    out_file = tmp_path / "stdout.txt"
    env = {**os.environ, "PYTHONPATH": ROOT, "COLUMNS": "100", "TERM": "xterm"}
    command = (
        f"{sys.executable} -m cached_tts warm {clip} --random-weights "
        f"--cache-dir {tmp_path / 'cache'} > {out_file}"
    )
    child = pexpect.spawn(
        "/bin/sh", ["-c", command], env=env, encoding="utf-8", timeout=600, dimensions=(24, 100)
    )
    child.expect(r"Loading the english model \(random weights\)\.\.\. done in [\d.]+ s\r\n")
    rest, code, _ = finish(child)
    assert code == 0
    assert "1/1" in rest  # our one bar, over the voices
    for upstream in ("Sampling", "PerthNet", "Reference mel length"):
        assert upstream not in rest
    assert (
        out_file.read_text() == f"1 new, 0 already cached, 0 failed (cache: {tmp_path / 'cache'})\n"
    )
