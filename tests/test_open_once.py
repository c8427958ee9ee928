"""A client is opened once per process; callers never queue for attempts of their own."""

from __future__ import annotations

import threading
import time

import pytest

from cached_tts._tiers.open_once import OpenFailedElsewhereError, OpenOnce

CALLERS = 8
# A hang guard only: every wait here ends far sooner.
PATIENCE = 60.0


class Opener:
    """Opens a client once ``go`` is set; counts its attempts; may fail the first ones."""

    def __init__(self, failures=0):
        self.go = threading.Event()
        self.attempts = 0
        self.failures = failures

    def __call__(self):
        self.attempts += 1
        self.go.wait(PATIENCE)
        if self.attempts <= self.failures:
            raise OSError("no credentials from the metadata service")
        return f"client {self.attempts}"


def from_many_callers(opener, function):
    """``function()`` from CALLERS threads at once, all of them inside before ``opener`` goes."""
    outcomes = []
    together = threading.Barrier(CALLERS + 1)

    def call():
        together.wait()
        try:
            outcomes.append(function())
        except Exception as exc:  # noqa: BLE001 -- what each caller got is the point
            outcomes.append(exc)

    threads = [threading.Thread(target=call, daemon=True) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    together.wait()
    time.sleep(0.2)  # let them reach the wait (if one is late, it joins the attempt all the same)
    opener.go.set()
    for thread in threads:
        thread.join(PATIENCE)
    return outcomes


def test_callers_during_an_open_share_that_one_attempt():
    opener = Opener()
    once = OpenOnce(opener, timeout=PATIENCE)
    assert from_many_callers(opener, once.get) == ["client 1"] * CALLERS
    assert opener.attempts == 1
    assert once.get() == "client 1"


def test_a_failed_open_is_reported_by_one_caller_and_skipped_by_the_others():
    opener = Opener(failures=1)
    once = OpenOnce(opener, timeout=PATIENCE)
    outcomes = from_many_callers(opener, once.get)
    reported = [o for o in outcomes if type(o) is OSError]
    skipped = [o for o in outcomes if isinstance(o, OpenFailedElsewhereError)]
    assert (len(reported), len(skipped)) == (1, CALLERS - 1)
    assert "no credentials" in str(skipped[0])
    assert opener.attempts == 1
    # The next caller (after the tier's back-off) tries again.
    assert once.get() == "client 2"


def test_an_open_that_answers_after_its_deadline_serves_later_callers():
    opener = Opener()
    once = OpenOnce(opener, timeout=0.05)
    with pytest.raises(TimeoutError):
        once.get()
    with pytest.raises(TimeoutError, match="still running"):
        once.get()  # given up on at once: no second attempt behind the hung one
    opener.go.set()
    deadline = time.monotonic() + PATIENCE
    while once._client is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert once.get() == "client 1"
    assert opener.attempts == 1
