"""models.write_behind: jobs run after the answer, in order, and a dead or slow writer never wedges."""
import ctypes
import logging
import threading
import time

import pytest

from models.write_behind import WriteBehind


def test_jobs_run_in_order_and_flush_waits_for_them():
    wb, done = WriteBehind("t-order", max_pending=50), []
    for i in range(20):
        wb.submit(f"k{i}", lambda i=i: (time.sleep(0.002), done.append(i)))
    assert wb.flush(10)
    assert done == list(range(20)) and wb.pending() == 0


def test_wait_is_per_key_and_bounded(caplog):
    wb, release = WriteBehind("t-bounded"), threading.Event()
    wb.submit("slow", lambda: release.wait(10))
    assert wb.wait("other", 0.1)  # nothing pending for that key
    with caplog.at_level(logging.WARNING, "attention_dashboard.write_behind"):
        t0 = time.monotonic()
        assert wb.wait("slow", 0.3) is False
        assert time.monotonic() - t0 < 2
    assert "not done after" in caplog.text
    release.set()
    assert wb.wait("slow", 5)


def test_a_failing_job_is_logged_and_the_next_runs(caplog):
    wb, done = WriteBehind("t-fail"), []
    with caplog.at_level(logging.ERROR, "attention_dashboard.write_behind"):
        wb.submit("bad", lambda: 1 / 0)
        wb.submit("good", lambda: done.append("good"))
        assert wb.flush(5)
    assert done == ["good"] and "ZeroDivisionError" in caplog.text


def _kill(thread):
    """What dash.testing's ThreadedRunner does to every thread it did not start."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_long(thread.ident), ctypes.py_object(SystemExit))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the SystemExit is the point
def test_a_killed_writer_is_replaced():
    wb, done = WriteBehind("t-killed"), []
    wb.submit("first", lambda: done.append(1))
    assert wb.flush(5)
    writer = wb._thread
    _kill(writer)
    writer.join(5)  # the idle writer wakes within its poll interval and dies
    assert not writer.is_alive()
    wb.submit("second", lambda: done.append(2))
    assert wb.flush(5) and done == [1, 2]
    assert wb._thread is not writer


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the SystemExit is the point
def test_a_job_that_kills_its_thread_still_counts_as_done():
    wb, done = WriteBehind("t-exit"), []
    wb.submit("exit", lambda: (_ for _ in ()).throw(SystemExit))
    assert wb.wait("exit", 5)
    wb.submit("after", lambda: done.append("after"))
    assert wb.flush(5) and done == ["after"]


def test_a_writer_that_falls_behind_makes_submit_do_the_work():
    """Bounded memory: past max_pending queued jobs, the submitting thread runs its own job."""
    wb, release, ran_in = WriteBehind("t-bounded-queue", max_pending=2), threading.Event(), {}
    wb.submit("a", lambda: release.wait(10))
    wb.submit("b", lambda: ran_in.setdefault("b", threading.current_thread().name))
    assert wb.pending() == 2
    wb.submit("c", lambda: ran_in.setdefault("c", threading.current_thread().name))
    assert ran_in == {"c": threading.current_thread().name}  # done before submit returned
    release.set()
    assert wb.flush(5) and ran_in["b"] == "t-bounded-queue"
