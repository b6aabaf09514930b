"""The process's BLAS thread count, decided once: what makes the host Gram matrix's bits independent of thread timing
and of the machine's core count.

OpenBLAS splits a product across its threads, and the split changes how float32 sums are rounded: the same zᵀz came
out differently with 1 and 2 threads (max |Δ| 5e-5 at 256 × 1010), enough to change an MST where two edge weights
are that close. So the fused T1/T2 kernel's Gram (`model.regularisers.persistence.gram_host`) runs on exactly
`THREADS` BLAS threads on every machine, set for the whole process the first time it is asked for (`fix_threads`,
thread-safe, never undone), instead of a per-call limit that concurrent callers would race on (two overlapping
limits restore each other's saved setting and leave the process on the wrong count). One thread: on the shared
2-core machine one BLAS thread was the faster under load, and a sweep runs several task processes per machine
(benchmarks/README.md). Every NumPy/SciPy BLAS call of the process uses that count afterwards; TensorFlow's own
ops use their own thread pools and are unaffected. Free of TensorFlow (provenance reads it).
"""
import threading

THREADS = 1
_lock = threading.Lock()
_fixed = None


def fix_threads() -> dict:
    """Set every BLAS library loaded in the process to `THREADS` threads, once; return what was set:
    {"threads": THREADS, "libraries": ["openblas 0.3.27 SkylakeX", ...]} (the libraries threadpoolctl found; the
    kernels OpenBLAS chose for this CPU are named, since they too decide the bits)."""
    global _fixed
    if _fixed is None:
        with _lock:
            if _fixed is None:
                from threadpoolctl import ThreadpoolController

                controller = ThreadpoolController().select(user_api="blas")
                controller.limit(limits=THREADS)
                libraries = [" ".join(str(p) for p in (info.get("internal_api"), info.get("version"),
                                                      info.get("architecture")) if p)
                             for info in controller.info()]
                _fixed = {"threads": THREADS, "libraries": libraries}
    return _fixed
