"""What `cached-tts run` adds to a process's start-up.

Usage: python benchmarks/startup.py [--runs 21]

Times, interleaved so that the machine's drift hits each alike (median and
fastest of ``--runs`` runs, wall clock from a parent process):

* ``python -c pass``, plain;
* ``cached-tts run python -c pass``: the ``cached-tts`` process, its ``exec``
  of python, and the bootstrap ``sitecustomize`` in that python;
* ``python -c pass`` with the bootstrap folder on ``$PYTHONPATH`` (the
  container setting, no ``cached-tts`` process): the bootstrap alone.

Then checks what a process that never imports chatterbox holds under
``cached-tts run``: no torch, chatterbox, wrapt or cached_tts in ``sys.modules``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
CACHED_TTS = str(BIN / "cached-tts")
PYTHON = sys.executable
CHECK = (
    "import sys; print(sorted(m for m in ('torch', 'chatterbox', 'wrapt', 'cached_tts') "
    "if m in sys.modules))"
)


def _bootstrap_folder() -> str:
    import cached_tts

    return str(Path(cached_tts.__file__).resolve().parent / "_bootstrap")


def _timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    """Print the start-up figures as a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    runs = parser.parse_args().runs

    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHED_TTS_")}
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    with_bootstrap = {
        **env,
        "PYTHONPATH": os.pathsep.join(filter(None, [_bootstrap_folder(), env.get("PYTHONPATH")])),
    }
    cases = {
        "`python -c pass`": ([PYTHON, "-c", "pass"], env),
        "`cached-tts run python -c pass`": ([CACHED_TTS, "run", "python", "-c", "pass"], env),
        "`python -c pass`, bootstrap folder on `PYTHONPATH`": (
            [PYTHON, "-c", "pass"],
            with_bootstrap,
        ),
    }
    for command, case_env in cases.values():  # warm the file system caches
        _timed(command, case_env)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, (command, case_env) in cases.items():
            times[name].append(_timed(command, case_env))

    plain = statistics.median(times["`python -c pass`"])
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, {runs} runs"
    )
    print("\n| command | median | fastest | over plain (median) |\n|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"| {name} | {median * 1000:.1f} ms | {min(values) * 1000:.1f} ms "
            f"| {(median - plain) * 1000:+.1f} ms |"
        )
    loaded = subprocess.run(
        [CACHED_TTS, "run", "python", "-c", CHECK],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"\nHeavy modules in a process that never imports chatterbox, under run: {loaded}")


if __name__ == "__main__":
    main()
