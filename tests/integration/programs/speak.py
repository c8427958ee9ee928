"""A plain chatterbox program: prepare each voice given twice (script, -m, console script)."""

from __future__ import annotations

import sys


def main(clips: list[str]) -> None:
    from plainvoice import CountedModel, report

    counted = CountedModel()
    for _ in range(2):
        for clip in clips:
            counted.prepare(clip)
    report(counted.preparations)


if __name__ == "__main__":
    main(sys.argv[1:])
