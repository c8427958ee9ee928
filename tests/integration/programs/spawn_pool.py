"""A plain program whose multiprocessing spawn pool of 2 prepares the voices, 3 times each."""

from __future__ import annotations

import multiprocessing
import os
import sys

from plainvoice import report

_counted = None


def _build() -> None:
    global _counted  # noqa: PLW0603 -- one model per worker process
    from plainvoice import CountedModel

    _counted = CountedModel()


def _prepare(clip: str) -> tuple[int, dict[str, int]]:
    _counted.prepare(clip)
    return os.getpid(), dict(_counted.preparations)


if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(2, initializer=_build) as pool:
        results = pool.map(_prepare, sys.argv[1:] * 3, chunksize=1)
    per_worker = dict(results)  # the last counts each worker reported
    totals: dict[str, int] = {}
    for counts in per_worker.values():
        for voice, n in counts.items():
            totals[voice] = totals.get(voice, 0) + n
    report(totals, workers=len(per_worker))
