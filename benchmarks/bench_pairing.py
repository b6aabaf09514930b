"""Benchmark of the persistence regulariser core (`make bench`): pairing and full regulariser steps, ms per call.

Pairing: the MST of D = 1 − |corr| of N neurons over a 256-sample batch, float64, for our kernels (compiled Prim =
the default, NumPy Prim, in-graph TF Borůvka) against gudhi (Rips complex + persistence) and giotto-ph
(`ripser_parallel`, as the original calls it). Regulariser: forward + backward w.r.t. the activations inside
`tf.function`, float32, ours against the original approach (full differentiable N×N correlation, giotto-ph pairing
through `tf.numpy_function`, gather). Prints a table and writes it to benchmarks/results/bench_pairing.csv.
A benchmark, not a test: nothing here asserts a time.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model.atomic import write_text  # noqa: E402
from model.regularisers import (
    persistence,  # noqa: E402
    registry,
)

BATCH = 256
PAIRING_SIZES = (1010, 3000, 6000)
REGULARISER_SIZES = {1010: (450, 350, 200, 10), 3000: (1500, 1000, 490, 10)}  # MNIST MLP; a wider MLP
RESULTS = Path(__file__).parent / "results" / "bench_pairing.csv"


def activations(widths, seed=0):
    """Low-rank + noise ReLU-like activations of a batch, one (BATCH, w) array per layer (logits last)."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((BATCH, 32))
    layers = [np.maximum(basis @ rng.standard_normal((32, w)) + rng.standard_normal((BATCH, w)), 0) for w in widths]
    layers[-1] = basis @ rng.standard_normal((32, widths[-1]))
    return [tf.constant(a, tf.float32) for a in layers]


def dissimilarity(n, seed=0):
    x = np.concatenate([a.numpy() for a in activations((n,), seed)], axis=1).astype(np.float64)
    return np.clip(1 - np.abs(np.corrcoef(x, rowvar=False)), 0, 1)


def timed(f, budget_s=3.0, max_repeats=20):
    """Median ms per call after one warm-up call; a call slower than the budget is timed once, without warm-up."""
    t0 = time.perf_counter()
    f()
    first = time.perf_counter() - t0
    if first > budget_s:
        return 1e3 * first
    repeats = max(1, min(max_repeats, int(budget_s / max(first, 1e-4))))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def giotto_edges(d):
    """The original's pairing: giotto-ph on a float32 copy, generators' death edges."""
    from gph import ripser_parallel
    gens = ripser_parallel(d.astype(np.float32), maxdim=0, metric="precomputed", n_threads=4,
                           return_generators=True)["gens"][0]
    return gens[:, 1:3].astype(np.int32)


def gudhi_deaths(d):
    import gudhi
    st = gudhi.RipsComplex(distance_matrix=d).create_simplex_tree(max_dimension=1)
    return [p for p in st.persistence(min_persistence=-1.0) if p[0] == 0]


def bench_pairing(sizes):
    rows = []
    for n in sizes:
        d = dissimilarity(n)
        d_tf = tf.constant(d)
        boruvka = tf.function(persistence.boruvka_tf)
        methods = {
            "ours (compiled Prim, default)": lambda d=d: persistence.prim_compiled(d),
            "NumPy Prim": lambda d=d: persistence.prim_numpy(d),
            "TF Borůvka (in-graph, CPU)": lambda f=boruvka, d=d_tf: f(d).numpy(),
            "gudhi": lambda d=d: gudhi_deaths(d),
            "giotto-ph (4 threads)": lambda d=d: giotto_edges(d),
        }
        ref = np.sort(d[tuple(persistence.prim_compiled(d).T)])
        check = np.sort(d.astype(np.float32)[tuple(giotto_edges(d).T)])
        assert np.allclose(ref[-len(check):], check, atol=1e-6), "giotto-ph and ours disagree"
        times = {name: timed(f) for name, f in methods.items()}
        ours = times["ours (compiled Prim, default)"]
        rows += [("pairing", n, name, ms, ms / ours) for name, ms in times.items()]
    return rows


def original_step(reg_id):
    """Forward + backward of the original approach for t1/t2: full N×N differentiable correlation, giotto-ph."""

    def loss(x):
        xc = x - tf.reduce_mean(x, 0)
        cov = tf.matmul(xc, xc, transpose_a=True)
        std = tf.sqrt(tf.linalg.diag_part(cov))
        corr = tf.where(tf.math.is_nan(cov / (std[:, None] * std[None, :])), 0.0, cov / (std[:, None] * std[None, :]))
        d = 1 - tf.abs(tf.linalg.set_diag(corr, tf.ones_like(std)))
        idx = tf.stop_gradient(tf.numpy_function(giotto_edges, [d], tf.int32))
        deaths = tf.gather_nd(d, idx)
        if reg_id == "t1":
            return -tf.reduce_sum(deaths)
        return 0.5 * tf.math.reduce_std(deaths) - 0.5 * tf.reduce_mean(deaths)

    return loss


def value_and_grad(f, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        v = f(x)
    return v, tape.gradient(v, x)


def bench_regularisers(sizes):
    rows = []
    for n in sizes:
        acts = activations(REGULARISER_SIZES[n], seed=1)
        x = tf.concat(acts, axis=1)
        for reg_id in ("t1", "t2", "corr", "decov"):
            reg = registry.make(reg_id)

            ours = tf.function(lambda a, reg=reg: value_and_grad(lambda a: reg(a, []), a))

            times = {"ours": timed(lambda f=ours, a=acts: [t.numpy() for t in tf.nest.flatten(f(a))])}
            if reg_id in ("t1", "t2"):
                original = tf.function(lambda x, f=original_step(reg_id): value_and_grad(f, x))

                v_ours, v_orig = float(ours(acts)[0]), float(original(x)[0])
                assert abs(v_ours - v_orig) <= 1e-3 * max(1.0, abs(v_ours)), (reg_id, v_ours, v_orig)
                times["original (full corr + giotto-ph)"] = timed(lambda f=original, x=x: [t.numpy() for t in f(x)])
            rows += [(f"{reg_id} fwd+bwd", n, name, ms, ms / times["ours"]) for name, ms in times.items()]
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairing-sizes", type=int, nargs="*", default=PAIRING_SIZES)
    parser.add_argument("--regulariser-sizes", type=int, nargs="*", default=tuple(REGULARISER_SIZES),
                        choices=tuple(REGULARISER_SIZES))
    args = parser.parse_args(argv)
    print(f"numba available: {persistence._numba_prim() is not None}; TF devices: "
          f"{[d.device_type for d in tf.config.list_physical_devices()]}; CPU cores: {os.cpu_count()}")
    rows = bench_pairing(args.pairing_sizes) + bench_regularisers(args.regulariser_sizes)
    print(f"\n{'what':<14} {'N':>5}  {'method':<34} {'ms/call':>10} {'× ours':>8}")
    for what, n, name, ms, ratio in rows:
        print(f"{what:<14} {n:>5}  {name:<34} {ms:>10.2f} {ratio:>8.2f}")
    csv = "what,n,method,ms_per_call,ratio_to_ours\n" + "".join(
        f"{what},{n},{name},{ms:.3f},{ratio:.3f}\n" for what, n, name, ms, ratio in rows)
    write_text(RESULTS, csv)
    print(f"\nwritten {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
