"""Commands that load no model import no torch; upstream stays quiet under our display.

And `cached-tts bench`, gone from the command line, says where the benchmark went.
"""

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cached_tts
from cached_tts._cli.progress import Progress, quiet_upstream

PROBE = textwrap.dedent(
    """
    import sys
    from cached_tts._cli import main
    codes = []
    for argv in (["--help"], ["ls", *sys.argv[1:]], ["stats", *sys.argv[1:]]):
        try:
            codes.append(main(argv))
        except SystemExit as exit_:
            codes.append(exit_.code)
    print("TORCH" if "torch" in sys.modules else "NO TORCH", codes, file=sys.stderr)
    """
)


def test_help_ls_and_stats_do_not_import_torch(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "--cache-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stderr.strip().splitlines()[-1] == "NO TORCH [0, 0, 0]"


def test_the_command_lines_own_modules_import_no_torch():
    # Until the core modules are torch-free, stand in for the two the parser
    # reads constants from; everything else is the real command line.
    probe = textwrap.dedent(
        """
        import sys, types

        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch imported")

        sys.meta_path.insert(0, NoTorch())
        cache = types.ModuleType("cached_tts._cache.cache")
        cache.default_cache_dir = lambda: "/tmp/cache"
        cache.DEFAULT_MAX_DISK_BYTES = 1 << 30
        remote = types.ModuleType("cached_tts._tiers.redis.tier")
        remote.REMOTE_ENV = "CACHED_TTS_REMOTE"
        sys.modules.update(
            {"cached_tts._cache.cache": cache, "cached_tts._tiers.redis.tier": remote}
        )
        import cached_tts
        from cached_tts._cli import _parser
        from cached_tts import _ipython
        from cached_tts._cache import display as _display
        from cached_tts._cache import stats as _stats
        _parser().format_help()
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize("argv", [["bench"], ["-v", "bench", "--checkpoint", "--json"]])
def test_bench_left_the_command_line_and_says_where_it_went(argv, tmp_path):
    # The installed script, as users type it, in a fresh process outside the checkout.
    script = Path(sys.executable).parent / "cached-tts"
    env = {**os.environ, "PYTHONPATH": str(Path(cached_tts.__file__).resolve().parents[1])}
    result = subprocess.run(
        [str(script), *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()  # one line: no usage, no traceback
    assert "python benchmarks/bench.py" in line
    assert "make bench" in line
    assert result.stdout == ""


def test_upstream_prints_go_to_the_log_and_its_bars_are_off(capsys, caplog):
    from chatterbox.models.t3 import t3  # binds tqdm at import, as upstream does

    with caplog.at_level(logging.DEBUG, logger="cached_tts"), quiet_upstream():
        print("loaded PerthNet (Implicit) at step 250,000")  # noqa: T201 -- as upstream does
        bar = t3.tqdm(range(3), desc="Sampling")
        list(bar)
        ours = Progress()
    out, err = capsys.readouterr()
    assert out == ""
    assert "Sampling" not in err
    assert bar.disable
    assert "loaded PerthNet" in caplog.text
    assert ours.stream is sys.stderr
    from tqdm import tqdm  # put back afterwards

    assert t3.tqdm is tqdm
