"""Batch scoring in worker processes: routing, order, timeouts, bad records, threads."""

from __future__ import annotations

import operator
import os
import threading
import time

import pytest

from cascade.errors import CascadeError
from cascade.sandbox.pool import WorkerPool
from cascade.verifiers.batch import score_batch, score_one

MATH = {"verifier": "math", "ground_truth": "0.5"}
MCQ = {"verifier": "mcq", "ground_truth": "B", "meta": {"options": ["w", "x", "y", "z"]}}
HANG = r"\boxed{9^{9^{9^{9}}}}"  # sympy computes this for a very long time


def test_mixed_verifiers_in_input_order() -> None:
    records = [MATH, MCQ, MATH, MCQ]
    completions = [r"\boxed{\frac{1}{2}}", "Answer: C", r"\boxed{2}", "Answer: B"]
    results = score_batch(records, completions, workers=2)
    assert [r.score for r in results] == [1.0, 0.0, 0.0, 1.0]
    assert [r.error for r in results] == [None] * 4


def test_many_items_are_chunked_and_stay_in_order() -> None:
    records = [{"verifier": "mcq", "ground_truth": "ABCD"[i % 4]} for i in range(300)]
    completions = [f"Answer: {'ABCD'[(i // 4) % 4]}" for i in range(300)]
    results = score_batch(records, completions, workers=2)
    assert [r.passed for r in results] == [i % 4 == (i // 4) % 4 for i in range(300)]


def test_repeated_items_are_scored_once_and_each_gets_its_own_result(monkeypatch) -> None:
    import cascade.verifiers.batch as batch

    sent = []
    real_pool = batch._pool

    class Spy:
        def __init__(self, pool):
            self.pool = pool

        def map_chunk(self, fn, items, timeout):
            sent.extend(items)
            return self.pool.map_chunk(fn, items, timeout)

    monkeypatch.setattr(batch, "_pool", lambda size: Spy(real_pool(size)))
    other_truth = {"verifier": "math", "ground_truth": "2"}
    records = [MATH, MATH, MCQ, MATH, other_truth, {"verifier": "nope", "ground_truth": 1}]
    completions = [r"\boxed{0.5}", r"\boxed{0.5}", "Answer: B", r"\boxed{1}", r"\boxed{0.5}", "x"]
    ticks = []
    results = score_batch(records, completions, workers=2, progress=ticks.append)
    # Items 0 and 1 are the same record and completion; item 4 has the same completion but
    # another ground truth, and the unknown verifier never reaches the pool.
    assert len(sent) == 4
    assert [r.score for r in results] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    same = operator.attrgetter("score", "passed", "details")
    assert same(results[1]) == same(results[0])
    assert results[1].details is not results[0].details and results[1].seconds == 0.0
    assert sum(ticks) == len(records)


def test_bad_records_become_error_results() -> None:
    records = [
        {"verifier": "nope", "ground_truth": 1},
        {"ground_truth": "1"},
        {"verifier": "math"},
        {"verifier": "math", "ground_truth": ["not", "a", "string"]},
        "not a record",
        MATH,
    ]
    completions = ["x", "x", "x", r"\boxed{1}", "x", r"\boxed{0.5}"]
    results = score_batch(records, completions, workers=2)
    errors = [r.error for r in results]
    assert errors[0] == "unknown_verifier: 'nope'"
    assert errors[1] == "bad_record: missing 'verifier'"
    assert errors[2] == "bad_record: missing 'ground_truth'"
    assert errors[3].startswith("bad_record:") and "ground_truth" in errors[3]
    assert errors[4].startswith("bad_record:")
    assert (results[5].score, results[5].error) == (1.0, None)
    assert all(r.score == 0.0 for r in results[:5])


def test_a_hung_item_times_out_and_the_batch_goes_on() -> None:
    records = [MATH, MATH, MATH]
    start = time.perf_counter()
    results = score_batch(records, [r"\boxed{0.5}", HANG, r"\boxed{1/2}"], workers=2, timeout=1.0)
    assert [r.error for r in results] == [None, "timeout", None]
    assert [r.score for r in results] == [1.0, 0.0, 1.0]
    assert time.perf_counter() - start < 30
    assert score_one(MATH, r"\boxed{0.50}").score == 1.0  # the pool recovered


def test_works_from_a_thread() -> None:
    out = []
    thread = threading.Thread(target=lambda: out.extend(score_batch([MCQ], ["Answer: B"], workers=2)))
    thread.start()
    thread.join(60)
    assert [r.score for r in out] == [1.0]


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(CascadeError, match="pair up"):
        score_batch([MATH], [], workers=2)


def test_worker_pool_kills_hung_and_dead_workers() -> None:
    pool = WorkerPool(1)
    try:
        # time.sleep holds no Python-level checkpoint for us: only a kill ends it.
        assert pool.call(time.sleep, (60,), timeout=0.5).status == "timeout"
        assert pool.call(operator.add, (2, 3), timeout=30).value == 5
        assert pool.call(os._exit, (3,), timeout=30).status == "crashed"
        error = pool.call(operator.truediv, (1, 0), timeout=30)
        assert (error.status, error.value) == ("error", "ZeroDivisionError: division by zero")
        outcomes = pool.map_chunk(operator.mul, [(2, 3), (4, 5)], timeout=30)
        assert [o.value for o in outcomes] == [6, 20]
    finally:
        pool.close()


def test_an_item_that_cannot_be_pickled_fails_alone() -> None:
    unpicklable = {"verifier": "math", "ground_truth": "1", "meta": {"hook": lambda: None}}
    results = score_batch([unpicklable, MATH], [r"\boxed{1}", r"\boxed{0.5}"], workers=2)
    assert results[0].error.startswith("verifier_error: cannot send the item")
    assert (results[1].score, results[1].error) == (1.0, None)


def test_a_verifier_with_its_own_subprocesses_runs_in_workers() -> None:
    from cascade.verifiers import registered_names

    if "code" not in registered_names():
        pytest.skip("the code verifier is not available")
    record = {"verifier": "code", "ground_truth": {"style": "stdin", "tests": [{"input": "2 3\n", "output": "5\n"}]}}
    program = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
    results = score_batch([record, record], [program, "```python\nprint(6)\n```"], workers=2, timeout=60)
    assert [(r.score, r.error) for r in results] == [(1.0, None), (0.0, None)]
