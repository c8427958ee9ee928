"""A plain program that prepares its voices, then starts a child that prepares them again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from plainvoice import CountedModel, report

counted = CountedModel()
for clip in sys.argv[1:]:
    counted.prepare(clip)
child = Path(__file__).with_name("speak.py")
subprocess.run([sys.executable, str(child), *sys.argv[1:]], check=True)
report(counted.preparations)
