"""A plain program that installs an import shim before it imports chatterbox.

As an EPUB-to-audiobook converter does for perth's watermarker: its own
`pkg_resources`, put into sys.modules first. The shim must be the one perth
uses, as it is when the program runs plain.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

used = []


def resource_filename(package: str, resource: str) -> str:
    used.append(package)
    origin = importlib.util.find_spec(package).origin
    return os.path.join(os.path.dirname(origin), resource)


shim = types.ModuleType("pkg_resources")
shim.resource_filename = resource_filename
sys.modules["pkg_resources"] = shim

from plainvoice import CountedModel, report  # noqa: E402 -- after the shim, on purpose

counted = CountedModel()
for clip in sys.argv[1:]:
    counted.prepare(clip)
report(counted.preparations, shim_used=used)
