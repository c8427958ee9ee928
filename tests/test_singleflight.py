"""Single flight: concurrent callers for one key share one computation."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

from cached_tts._cache import singleflight as _singleflight
from cached_tts._cache.singleflight import SingleFlight

THREADS = 8
PATIENCE_SECONDS = 10.0  # only ever reached when the code under test is broken


@pytest.fixture
def joined(monkeypatch):
    """A condition that counts callers waiting on a computation under way.

    The leader's function waits on it until every other caller has joined, so
    that no caller can arrive after the computation ended and start another.
    """
    condition = threading.Condition()
    condition.waiting = 0

    class CountedFuture(Future):
        def result(self, timeout=None):
            with condition:
                condition.waiting += 1
                condition.notify_all()
            return super().result(timeout)

    monkeypatch.setattr(_singleflight, "Future", CountedFuture)
    return condition


def wait_for_followers(condition):
    with condition:
        assert condition.wait_for(
            lambda: condition.waiting == THREADS - 1, timeout=PATIENCE_SECONDS
        ), f"only {condition.waiting} callers joined"


def run_together(call):
    """Run ``call`` in THREADS threads released at once; returns values or exceptions."""
    start = threading.Barrier(THREADS)
    outcomes = [None] * THREADS

    def worker(i):
        start.wait()
        try:
            outcomes[i] = call()
        except Exception as exc:  # noqa: BLE001 -- recorded for the test to inspect
            outcomes[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_the_first_caller_computes_and_says_so():
    flight = SingleFlight()
    assert flight.do("k", lambda: "value") == ("value", True)


def test_concurrent_callers_share_one_computation(joined):
    flight = SingleFlight()
    runs = []

    def compute():
        runs.append(threading.get_ident())
        wait_for_followers(joined)
        return object()

    outcomes = run_together(lambda: flight.do("k", compute))

    assert len(runs) == 1
    values = {id(value) for value, _ in outcomes}
    assert len(values) == 1
    assert sorted(computed for _, computed in outcomes) == [False] * (THREADS - 1) + [True]


def test_an_exception_reaches_every_waiter_and_the_next_call_runs_again(joined):
    flight = SingleFlight()
    runs = []

    def fail():
        runs.append(1)
        wait_for_followers(joined)
        raise ValueError("the clip is silent")

    outcomes = run_together(lambda: flight.do("k", fail))

    assert len(runs) == 1
    assert all(isinstance(o, ValueError) for o in outcomes)
    assert {str(o) for o in outcomes} == {"the clip is silent"}
    assert flight.do("k", lambda: "recovered") == ("recovered", True)


def test_calls_after_a_computation_ended_compute_again():
    flight = SingleFlight()
    runs = []
    for expected in (1, 2):
        flight.do("k", lambda: runs.append(1))
        assert len(runs) == expected


def test_different_keys_do_not_wait_for_each_other():
    flight = SingleFlight()
    a_running, b_done = threading.Event(), threading.Event()

    def compute_a():
        a_running.set()
        return b_done.wait(PATIENCE_SECONDS)  # finishes only once b has

    def compute_b():
        assert a_running.wait(PATIENCE_SECONDS)
        b_done.set()
        return "b"

    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(a=flight.do("a", compute_a)))
    thread.start()
    b = flight.do("b", compute_b)
    thread.join()
    assert b == ("b", True)
    assert outcome["a"] == (True, True)
