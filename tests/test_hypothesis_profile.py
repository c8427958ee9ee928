"""The suite's Hypothesis profile: the same examples on every CI run, random ones locally."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent


def derandomized(**env_changes: str | None) -> bool:
    """Whether a process that loads the suite's conftest draws fixed examples."""
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "HYPOTHESIS_PROFILE"}}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    code = "import conftest; from hypothesis import settings; print(settings.default.derandomize)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=TESTS, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip() == "True"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CI": "true"}, True),
        ({"CI": "1"}, True),
        ({"HYPOTHESIS_PROFILE": "ci"}, True),
        ({}, False),
    ],
)
def test_ci_draws_the_same_examples_every_run_and_a_local_run_explores(env, expected):
    assert derandomized(**env) is expected
