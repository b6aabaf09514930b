"""The host kernels' second thread: one call's work split in two fixed halves, one run on a helper thread.

The fused T1/T2 kernel (`model.regularisers.fused`) runs while the training step's own TensorFlow ops wait for it,
so on a 2-core CPU the second core would idle. `both(first, second)` runs `first` on one process-wide helper thread
and `second` on the calling thread. Its user is the host Gram matrix from 512 neurons on
(`model.regularisers.persistence.gram_host`, row tiles of BLAS matmuls, a millisecond or more of work). The halves
are fixed by the caller, never by timing, and every sum stays inside one half in its own order, so the bits are the
same on any core count and whichever half ends first; on one core the halves just run one after the other.
Concurrent callers share the helper (their halves queue; a half never waits for another half, so they cannot
deadlock). The helper is created on first use and again in a forked child (a fork copies no threads). A Python
thread: the halves are NumPy BLAS calls, which release the GIL; a hand-off costs 60–80 µs in a process that has
imported TensorFlow (benchmarks/README.md), so only large work is split (numba's own parallel loops cost a few µs a
region but need a threading layer both fork- and thread-safe, TBB, which is not installed; benchmarks/README.md).
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_executor = None


def _helper() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(1, thread_name_prefix="dnp-kernel")
    return _executor


def _forget_after_fork():
    global _executor
    _executor = None


os.register_at_fork(after_in_child=_forget_after_fork)


def both(first, second):
    """Run first() on the helper thread and second() here; return (first's result, second's result). An exception
    of either is raised after both have ended."""
    pending = _helper().submit(first)
    try:
        here = second()
    finally:
        there = pending.result()
    return there, here
