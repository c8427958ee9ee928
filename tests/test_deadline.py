"""Calls given a deadline: a hung call costs its caller the deadline, and few threads."""

from __future__ import annotations

import threading

import pytest

from cached_tts._forksafe import renew_all
from cached_tts._tiers.deadline import DeadlineRunner


def test_a_call_returns_its_value_and_raises_its_error():
    runner = DeadlineRunner()
    assert runner.run(5.0, divmod, 7, 2) == (3, 1)
    with pytest.raises(ZeroDivisionError):
        runner.run(5.0, divmod, 1, 0)


def test_hung_calls_hold_at_most_limit_threads_and_later_calls_fail_at_their_deadline():
    runner = DeadlineRunner(limit=2)
    answers = threading.Event()
    started = []

    def hung():
        started.append(1)
        answers.wait()

    try:
        for _ in range(2):
            with pytest.raises(TimeoutError, match="no answer within"):
                runner.run(0.05, hung)
        # No third thread to block: the call fails without running.
        with pytest.raises(TimeoutError, match="2 earlier calls have not returned"):
            runner.run(0.05, hung)
        assert len(started) <= 2
    finally:
        answers.set()
    # Once the hung calls return, their slots serve again.
    assert runner.run(5.0, len, "ab") == 2


def test_a_forked_child_does_not_inherit_the_slots_of_hung_calls():
    runner = DeadlineRunner(limit=1)
    answers = threading.Event()
    try:
        with pytest.raises(TimeoutError):
            runner.run(0.05, answers.wait)
        renew_all()  # what a forked child runs: the hung thread is not there
        assert runner.run(5.0, len, "abc") == 3
    finally:
        answers.set()
