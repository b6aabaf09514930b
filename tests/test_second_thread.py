"""The host kernels' helper thread: both halves run, results come back in order, errors surface after both ended,
and a forked child gets a helper of its own."""
import os
import threading

import pytest

from model.regularisers import second_thread


def test_both_runs_the_first_half_on_the_helper_and_the_second_here():
    here = threading.get_ident()
    there, mine = second_thread.both(threading.get_ident, threading.get_ident)
    assert mine == here and there != here


def test_an_error_in_either_half_is_raised_after_both_ended():
    ended = []

    def slow_ok():
        ended.append("first")
        return 1

    def fails():
        raise ValueError("second half")

    with pytest.raises(ValueError, match="second half"):
        second_thread.both(slow_ok, fails)
    assert ended == ["first"]
    with pytest.raises(ZeroDivisionError):
        second_thread.both(lambda: 1 / 0, lambda: 2)


def test_a_forked_child_has_a_working_helper():
    second_thread.both(lambda: 1, lambda: 2)                 # the parent's helper exists
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                             # child: a fork copies no threads
        try:
            ok = second_thread.both(lambda: 3, lambda: 4) == (3, 4)
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
