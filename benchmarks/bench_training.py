"""Benchmark of whole training steps (`make bench`): ms per step of the plain step, the original approach and ours.

Variants, all on the same Keras network, batch 256, SGD (lr 0.01, momentum 0.9, Nesterov), weight ω = 0.01:
- `plain`: CE only — `model.runs.training.RegularisedModel` with `none`, compiled as `model.runs.training.train`
  compiles it (XLA only where the pairing is in-graph, i.e. on a GPU); `plain XLA` is the same step under XLA;
- `original t1`: the original approach written from the paper's description of the original code: the CE
  gradient, then a second forward pass layer by layer in inference mode, importance sampling, a full differentiable
  N×N Pearson correlation (NaN → 0, diagonal 1), D = 1 − |corr|, giotto-ph `ripser_parallel` pairing through
  `tf.numpy_function`, `gather_nd`, R = −Σ deaths, ω·∇R zeroed per variable where non-finite, summed with the CE
  gradient. As the original: the CE gradient in a `tf.function`, the regulariser step eagerly; `original t1 graph`
  runs the regulariser step and the update as `tf.function`s too (a lower bound for the original's cost);
- `ours <id>`: `RegularisedModel` with `model.regularisers.registry.make(id, sampling=p)` as `train` builds and
  compiles it (on a CPU t1/t2 run the fused host kernel, `model.regularisers.fused`), with the activity accounting
  (`model.runs.activity_accounting`); `ours t1 no acct` is `ours t1` without it, so the accounting's cost is their
  ratio.
The plain and our steps run Keras' own train function on a tf.data iterator, as `fit()` does (batch size unknown
at trace time); the original's steps take the batch tensors directly.

Networks: the MNIST MLP 784-450-350-200-10 (N = 1010), a wide MLP 784-2000-2000-990-10 (N = 5000), and a VGG-like
PGDL-sized CNN on 32×32×3 ([Conv-ReLU, Conv-ReLU, MaxPool] × 3 with 32, 32 | 64, 64 | 128, 256 filters, Dense 128,
Dense 10) at sampling 0.5 %, 5 % and 100 %. Inputs are random (MNIST-shaped uniform, CIFAR-shaped normal), labels
random; a few distinct batches are cycled. Variants are interleaved round by round (so machine load hits them alike)
after warm-up steps (`warm_up_steps`) and one untimed round, the garbage collector off while timing; a round gives each
variant `RATIO_EVERY` steps, so our variants' measured steps (one in ten) are among the timed ones, also reported
apart (`: measured`, `: other`). The figure is the median over the timed steps; the accounting's cost is
(9 · median of the other steps + median of the measured ones) / (10 · median without the accounting). Variants whose
N×N matrices cannot fit in memory are listed as not run, with the reason. The two MLP cases (those with acceptance
targets) then run `--acceptance-rounds` (30) more rounds of plain, ours t1 and ours t1 no acct alone, reported as
their own rows (`[acceptance]`): three variants a round and 300 steps each make those ratios steadier than the
main rounds' (whose ours/plain at N = 1010 moved by ±5 % between runs of the same code). Prints the table, then
the acceptance ratios of each phase side by side with its load average (ours t1 / plain against 1.8 at N = 1010
and 2.5 at N ≈ 5000, the accounting's cost against 3 %, original / ours against 5 and 10), the fused T1 kernel's
parts timed alone at the MLPs' N (standardisation, Gram, Prim, loss and gradient), and writes
benchmarks/results/bench_training.csv.
A benchmark, not a test: nothing here asserts a time.
"""
import argparse
import gc
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model.atomic import write_text  # noqa: E402
from model.regularisers import blas, fused, persistence, registry  # noqa: E402
from model.runs import activity_record  # noqa: E402
from model.runs.training import RegularisedModel, neuron_layers, uses_train_pass  # noqa: E402

BATCH = 256
WEIGHT = 0.01
OURS = ("t1", "t2", "corr", "decov")
NO_ACCOUNTING = "ours t1 no acct"  # the same T1 step without the activity accounting (model.runs.activity_record)
TARGETS = {1010: (1.8, 5.0), 5000: (2.5, 10.0)}  # N → (ours t1 / plain at most, original / ours at least)
ACCOUNTING_TARGET = 1.03
ACCEPTANCE = " [acceptance]"  # the acceptance rounds' rows: plain, ours t1 and ours t1 no acct timed alone
MEASURED, UNMEASURED = ": measured", ": other"  # an accounting variant's steps that measured ‖ω∇R‖/‖∇CE‖; the rest
MEMORY_BYTES = 0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")  # budget for one N×N job
RESULTS = Path(__file__).parent / "results" / "bench_training.csv"


# ----------------------------------------------------------------------------------------------------------------
# Networks

def mlp(widths):
    layers = [keras.Input((784,))] + [keras.layers.Dense(w, activation="relu") for w in widths[:-1]]
    return keras.Sequential(layers + [keras.layers.Dense(widths[-1])])


def vgg():
    layers = [keras.Input((32, 32, 3))]
    for filters in ((32, 32), (64, 64), (128, 256)):
        layers += [keras.layers.Conv2D(f, 3, padding="same", activation="relu") for f in filters]
        layers.append(keras.layers.MaxPooling2D())
    layers += [keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)]
    return keras.Sequential(layers)


CASES = (  # name, builder, sampling
    ("MNIST MLP 784-450-350-200-10", lambda: mlp((450, 350, 200, 10)), 1.0),
    ("wide MLP 784-2000-2000-990-10", lambda: mlp((2000, 2000, 990, 10)), 1.0),
    ("VGG-like CNN 32x32x3", vgg, 0.005),
    ("VGG-like CNN 32x32x3", vgg, 0.05),
    ("VGG-like CNN 32x32x3", vgg, 1.0),
)


def sampled_neurons(net, p):
    """N: the size of the sampled point cloud (⌊p·n⌋ per hidden neuron layer, the logits whole)."""
    sizes = [math.prod(layer.output.shape[1:]) for layer in neuron_layers(net)]
    return sum(math.floor(p * n) for n in sizes[:-1]) + sizes[-1]


def batches(net, count=4, seed=0):
    rng = np.random.default_rng(seed)
    shape = (BATCH, *net.inputs[0].shape[1:])
    make = rng.random if shape[1:] == (784,) else rng.standard_normal
    return [(tf.constant(make(shape), tf.float32), tf.constant(rng.integers(0, 10, BATCH), tf.int32))
            for _ in range(count)]


def optimizer():
    return keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, nesterov=True)


# ----------------------------------------------------------------------------------------------------------------
# Our steps: RegularisedModel exactly as model.runs.training.train builds and compiles it

def ours_step(builder, reg_id, p, xla=None, accounting=True, **options):
    keras.utils.set_random_seed(0)
    net = builder()
    reg = registry.make(reg_id, sampling=p, **options)
    model = RegularisedModel(net, reg, 0.0 if reg_id == "none" else WEIGHT, train_pass=uses_train_pass(net, "auto"),
                        zero_nonfinite=False, val_batch_mean=False, accounting=accounting)
    model.compile(optimizer=optimizer(), jit_compile=reg.xla if xla is None else xla)
    model.optimizer.build(net.trainable_variables)
    model.make_train_function()
    iterators = {}

    def step(batch):  # as fit() runs it: the train function pulls a (None, ...)-shaped batch from a tf.data iterator
        if id(batch) not in iterators:
            iterators[id(batch)] = iter(tf.data.Dataset.from_tensors(batch).unbatch().batch(BATCH).repeat())
        return float(model.train_function(iterators[id(batch)])["loss"])

    step.measures = lambda: model.accounting and model.activity.due(model.optimizer.iterations)  # the next step?
    return step


# ----------------------------------------------------------------------------------------------------------------
# The original approach (the paper's description), our own code

def giotto_pairing(d):
    """Flattened MST edge indices (2k,) int64 of D as giotto-ph gives them; 2k zeros when some bar has zero length."""
    from gph import ripser_parallel

    k = d.shape[0] - 1
    out = ripser_parallel(d.astype(np.float32), maxdim=0, metric="precomputed", n_threads=4, return_generators=True)
    finite = out["dgms"][0][np.isfinite(out["dgms"][0][:, 1])]
    if len(finite) != k:
        return np.zeros(2 * k, np.int64)
    return out["gens"][0][:, 1:3].reshape(-1).astype(np.int64)


def original_step(builder, p, eager=True):
    keras.utils.set_random_seed(0)
    net = builder()
    opt = optimizer()
    variables = net.trainable_variables
    opt.build(variables)
    hidden_layers = len([layer for layer in net.layers if layer.trainable_weights]) - 1

    def regulariser(x):
        h, outputs = x, []
        for layer in net.layers:                                         # second pass, inference mode
            h = layer(h)
            if layer.trainable_weights:
                outputs.append(tf.reshape(h, (tf.shape(h)[0], -1)))
        kept = []
        for i, a in enumerate(outputs):                                  # importance sampling
            if i < hidden_layers:
                k = math.floor(p * a.shape[1])
                order = tf.argsort(tf.reduce_mean(tf.abs(a), axis=0), direction="DESCENDING")
                kept.append(tf.gather(a, tf.stop_gradient(order[:k]), axis=1))
            else:
                kept.append(a)
        cloud = tf.transpose(tf.concat(kept, axis=1))                    # (N, b): a neuron is a point
        n = cloud.shape[0]
        xc = cloud - tf.reduce_mean(cloud, axis=1, keepdims=True)        # Pearson correlation over the batch
        xn = xc / tf.sqrt(tf.reduce_mean(tf.square(xc), axis=1, keepdims=True))
        corr = tf.matmul(xn, xn, transpose_b=True) / tf.cast(tf.shape(xn)[1], xn.dtype)
        corr = tf.linalg.set_diag(tf.where(tf.math.is_nan(corr), tf.zeros_like(corr), corr), tf.ones(n))
        d = 1.0 - tf.abs(corr)
        idx = tf.stop_gradient(tf.numpy_function(giotto_pairing, [d], tf.int64, stateful=False))
        idx = tf.reshape(idx, (n - 1, 2))
        deaths = tf.cond(tf.reduce_sum(idx) == 0, lambda: tf.zeros(n - 1), lambda: tf.gather_nd(d, idx))
        return -tf.reduce_sum(deaths)                                    # t1

    @tf.function(reduce_retracing=True)
    def ce_gradient(x, y):
        with tf.GradientTape() as tape:
            logits = net(x, training=True)
            ce = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
        return ce, tape.gradient(ce, variables)

    def regulariser_gradient(x):
        with tf.GradientTape() as tape:
            reg = regulariser(x)
        g_t = [tf.zeros_like(v) if g is None else WEIGHT * g for g, v in zip(tape.gradient(reg, variables), variables)]
        return reg, [tf.where(tf.reduce_all(tf.math.is_finite(g)), g, tf.zeros_like(g)) for g in g_t]

    def apply(g_c, g_t):
        opt.apply([a + b for a, b in zip(g_c, g_t)], variables)

    if not eager:                                                        # everything in one graph: a lower bound
        regulariser_gradient, apply = tf.function(regulariser_gradient), tf.function(apply)

    def step(x, y):                                                      # CE step, regulariser step, combine
        ce, g_c = ce_gradient(x, y)
        reg, g_t = regulariser_gradient(x)
        apply(g_c, g_t)
        return ce + WEIGHT * reg

    return lambda batch: float(step(*batch))


# ----------------------------------------------------------------------------------------------------------------
# Timing

def too_big(variant, n):
    """Why a variant cannot run at N sampled neurons (None if it can): N×N float matrices that do not fit."""
    if variant in ("plain", "plain XLA", "ours decov"):
        return None
    matrices = 6 if variant.startswith("original") else 3 if variant == "ours corr" else 1  # float32 N×N each
    need = matrices * 4 * n * n
    if need > MEMORY_BYTES:
        return f"N×N matrices need ≈{need / 2**30:.0f} GiB (budget {MEMORY_BYTES / 2**30:.0f} GiB)"
    return None


def warm_up_steps(variant):
    """Untimed steps before a variant is timed: 3 (trace, compile, a first run); ours 2·RATIO_EVERY + 3, so that the
    accounting's separately compiled measuring step has also run its slow first executions (3 of them) and the timed
    measured steps are in steady state, as in a run of thousands of steps."""
    return 2 * activity_record.RATIO_EVERY + 3 if variant.startswith("ours") else 3


def time_case(name, builder, p, rounds, steps, slow_s, variants, acceptance_rounds):
    """Rows of one case: each variant's timed steps over `rounds` interleaved rounds; then, for a case with an
    acceptance target (`TARGETS`), `acceptance_rounds` more rounds of plain, ours t1 and ours t1 without the
    accounting alone, reported as their own rows (variant names ending in `ACCEPTANCE`)."""
    net = builder()
    n = sampled_neurons(net, p)
    data = batches(net)
    makers = {"plain": lambda: ours_step(builder, "none", p), "plain XLA": lambda: ours_step(builder, "none", p, True),
              "original t1": lambda: original_step(builder, p),
              "original t1 graph": lambda: original_step(builder, p, eager=False),
              **{f"ours {r}": (lambda r=r: ours_step(builder, r, p)) for r in OURS},
              NO_ACCOUNTING: lambda: ours_step(builder, "t1", p, accounting=False)}
    notes, steps_of = {}, {}
    load_before = os.getloadavg()[0]
    for variant in variants:
        reason = too_big(variant, n)
        if reason:
            notes[variant] = f"not run: {reason}"
            continue
        step = makers[variant]()
        for i in range(warm_up_steps(variant)):                         # trace, compile, first runs of each graph
            t0 = time.perf_counter()
            step(data[i % len(data)])
        warm = 2 * (time.perf_counter() - t0)
        steps_of[variant] = step
        if warm > slow_s:                                                # very slow: one timed step per round
            notes[variant] = "slow"
    timed = interleave(steps_of, data, rounds, steps, notes)
    load = (load_before + os.getloadavg()[0]) / 2
    out = rows_of(name, n, p, variants, timed, notes, load, "")
    acceptance = {v: steps_of[v] for v in ("plain", "ours t1", NO_ACCOUNTING) if v in steps_of}
    if n in TARGETS and acceptance_rounds and len(acceptance) == 3:
        load_before = os.getloadavg()[0]
        timed = interleave(acceptance, data, acceptance_rounds, steps, {})
        load = (load_before + os.getloadavg()[0]) / 2
        out += rows_of(name, n, p, list(acceptance), timed, {}, load, ACCEPTANCE)
    return out


def interleave(steps_of, data, rounds, steps, notes):
    """Time the variants' steps (variant → step function) round by round, one untimed round first, the garbage
    collector off; a variant noted "slow" runs once per round. Returns variant → (ms list, CPU ms list, measured
    flags), one entry per timed step."""
    timed = {variant: ([], [], []) for variant in steps_of}
    k = 0
    gc.collect()                                                         # no collector pause inside a timed step,
    gc.disable()                                                         # as timeit does
    try:
        for r in range(-1, rounds):                                      # round −1: untimed, every variant once more
            order = list(steps_of)
            order = order[r % len(order):] + order[:r % len(order)]      # rotate: nobody always goes first
            for variant in order:
                for _ in range(1 if notes.get(variant) == "slow" else steps):
                    measures = getattr(steps_of[variant], "measures", lambda: False)()
                    t0, c0 = time.perf_counter(), time.process_time()
                    steps_of[variant](data[k % len(data)])
                    if r >= 0:
                        ms, cpu, measured = timed[variant]
                        ms.append(1e3 * (time.perf_counter() - t0))
                        cpu.append(1e3 * (time.process_time() - c0))
                        measured.append(measures)
                    k += 1
    finally:
        gc.enable()
    return timed


def rows_of(name, n, p, variants, timed, notes, load, suffix):
    """One row per variant (median and mean ms and CPU ms of its timed steps), and for a variant with measured
    steps its measured and other steps apart; a variant not timed gets its note. `suffix` ends every variant name."""
    out = []
    for variant in variants:
        if variant not in timed:
            out.append((name, n, p, variant + suffix, math.nan, math.nan, 0, notes[variant], load, math.nan,
                        math.nan))
            continue
        times, cpu, measured = timed[variant]
        out.append((name, n, p, variant + suffix, statistics.median(times), statistics.median(cpu), len(times), "",
                    load, statistics.fmean(times), statistics.fmean(cpu)))
        for label, kept in ((MEASURED, True), (UNMEASURED, False)):      # the accounting's two kinds of step
            ms = [t for t, m in zip(times, measured) if m == kept]
            cpu_ms = [t for t, m in zip(cpu, measured) if m == kept]
            if ms and any(measured):
                out.append((name, n, p, f"{variant}{label}{suffix}", statistics.median(ms),
                            statistics.median(cpu_ms), len(ms), "", load, statistics.fmean(ms),
                            statistics.fmean(cpu_ms)))
    return out


def breakdown(n, repeats=20):
    """The fused T1 kernel's parts at N neurons (`model.regularisers.fused.host_kernel` on ReLU-like float32
    activations, batch 256): median ms of each part over `repeats` calls, and of the whole call."""
    x = np.maximum(np.random.default_rng(0).standard_normal((BATCH, n)), 0.0).astype(np.float32)
    fused.host_kernel(x, 1, 0, 0)
    parts = {}
    for _ in range(repeats):
        times = {}
        t0 = time.perf_counter()
        fused.host_kernel(x, 1, 0, 0, times)
        times["whole call"] = time.perf_counter() - t0
        for part, seconds in times.items():
            parts.setdefault(part, []).append(1e3 * seconds)
    return {part: statistics.median(ms) for part, ms in parts.items()}


# ----------------------------------------------------------------------------------------------------------------

def ratios(rows):
    """ours/plain for every row (against the plain row of the same phase: main rounds or `ACCEPTANCE`),
    original/ours for our rows (original t1 of the same case)."""
    by_case = {}
    for row in rows:
        by_case.setdefault((row[0], row[2]), {})[row[3]] = row[4]
    out = []
    for row in rows:
        case = by_case[(row[0], row[2])]
        plain = "plain" + (ACCEPTANCE if row[3].endswith(ACCEPTANCE) else "")
        over_plain = row[4] / case.get(plain, math.nan)                  # ms/step is row[4]
        original_over = case.get("original t1", math.nan) / row[4] if row[3].startswith("ours") else math.nan
        out.append((*row, over_plain, original_over))
    return out


def print_acceptance(rows):
    """The issue's acceptance ratios per case and phase (the main rounds; the acceptance rounds of plain, ours t1
    and ours t1 without the accounting alone), side by side with the load average of that phase."""
    by_case = {}
    for name, n, p, variant, ms, *_, load, mean_ms, _mean_cpu, over_plain, orig_over in rows:
        by_case.setdefault((name, n, p), {})[variant] = (ms, over_plain, orig_over, mean_ms, load)
    print("\nAcceptance (interleaved runs; target in brackets):")
    for (name, n, _p), case in by_case.items():
        ours_ratio, original_target = TARGETS.get(n, (math.nan, math.nan))
        for suffix, phase in (("", "main rounds"), (ACCEPTANCE, "acceptance rounds")):
            v = {variant[:len(variant) - len(suffix)]: row for variant, row in case.items()
                 if variant.endswith(suffix) and (suffix or not variant.endswith(ACCEPTANCE))}
            if "ours t1" not in v:
                continue
            ours_ms = v["ours t1"][0]
            parts = [f"{name} N = {n}, {phase} (load {v['ours t1'][4]:.2f})",
                     f"ours t1 / plain {v['ours t1'][1]:.2f} (<= {ours_ratio})"]
            if all(k in v for k in ("ours t1" + MEASURED, "ours t1" + UNMEASURED, NO_ACCOUNTING)):
                # a run's steps are 1 measured in RATIO_EVERY: medians of each kind, so one slow step weighs nothing
                every, base = activity_record.RATIO_EVERY, v[NO_ACCOUNTING][0]
                other, measuring = v["ours t1" + UNMEASURED][0], v["ours t1" + MEASURED][0]
                cost = ((every - 1) * other + measuring) / (every * base)
                parts.append(f"accounting {cost:.3f} of the step ({100 * (cost - 1):+.1f} %, <= {ACCOUNTING_TARGET}: "
                             f"other steps {100 * (other / base - 1):+.1f} %, a measured step {measuring - base:+.1f} "
                             f"ms once in {every}; ratio of means {v['ours t1'][3] / v[NO_ACCOUNTING][3]:.3f})")
                parts.append(f"no-acct / plain {v[NO_ACCOUNTING][1]:.2f}")
            if not math.isnan(v["ours t1"][2]):
                parts.append(f"original / ours {v['ours t1'][2]:.2f} (>= {original_target})")
            print("  " + "; ".join(parts) + f"; ours t1 {ours_ms:.1f} ms")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds (default 8)")
    parser.add_argument("--steps", type=int, default=activity_record.RATIO_EVERY,
                        help="timed steps per variant and round (default %(default)s: the accounting's measuring "
                             "period, so each round of ours holds one measured step)")
    parser.add_argument("--slow", type=float, default=2.0,
                        help="a variant whose two warm-up steps take longer than this many seconds is timed once "
                             "per round (default 2)")
    parser.add_argument("--acceptance-rounds", type=int, default=30,
                        help="for the cases with an acceptance target, this many more interleaved rounds of plain, "
                             "ours t1 and ours t1 without the accounting alone, reported apart (default 30; 0: none)")
    parser.add_argument("--cases", type=int, nargs="*", default=range(len(CASES)),
                        help=f"which cases, 0..{len(CASES) - 1} (default all)")
    parser.add_argument("--variants", nargs="*", default=["plain", "plain XLA", "original t1", "original t1 graph",
                                                          *(f"ours {r}" for r in OURS), NO_ACCOUNTING])
    args = parser.parse_args(argv)
    print(f"TF {tf.__version__}, devices {[d.device_type for d in tf.config.list_physical_devices()]}, "
          f"{os.cpu_count()} CPU cores, numba {persistence._numba_prim() is not None}, BLAS {blas.fix_threads()}, "
          f"batch {BATCH}, ω {WEIGHT}; "
          f"load average at start {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    for i in args.cases:
        name, builder, p = CASES[i]
        rows += time_case(name, builder, p, args.rounds, args.steps, args.slow, args.variants, args.acceptance_rounds)
        print(f"  done: {name} at sampling {p:g} (load {rows[-1][8]:.2f})", flush=True)
    rows = ratios(rows)
    print(f"\n{'network':<30} {'N':>7} {'p':>6}  {'variant':<32} {'ms/step':>9} {'mean':>9} {'/plain':>7} "
          f"{'orig/this':>9} {'CPU ms':>8} {'steps':>5} {'load':>5}  note")
    for name, n, p, variant, ms, cpu_ms, count, note, load, mean_ms, _, over_plain, orig_over in rows:
        orig = "" if math.isnan(orig_over) else f"{orig_over:.2f}"
        print(f"{name:<30} {n:>7} {p:>6.3f}  {variant:<32} {ms:>9.1f} {mean_ms:>9.1f} {over_plain:>7.2f} "
              f"{orig:>9} {cpu_ms:>8.1f} {count:>5} {load:>5.2f}"
              f"  {note}")
    print_acceptance(rows)
    sizes = sorted({row[1] for row in rows if "MLP" in row[0]})
    if sizes:
        print("\nThe fused T1 kernel's parts, timed alone (median ms, float32, batch 256):")
    for n in sizes:
        print(f"  N = {n}: " + ", ".join(f"{k} {v:.1f}" for k, v in breakdown(n).items()))
    csv = ("network,n,sampling,variant,ms_per_step,cpu_ms_per_step,steps,note,load_average,mean_ms_per_step,"
           "mean_cpu_ms_per_step,ratio_to_plain,original_over_this\n") + "".join(
        f"{name},{n},{p},{variant},{ms:.3f},{cpu_ms:.3f},{count},{note},{load:.2f},{mean_ms:.3f},{mean_cpu:.3f},"
        f"{over_plain:.3f},{orig_over:.3f}\n"
        for name, n, p, variant, ms, cpu_ms, count, note, load, mean_ms, mean_cpu, over_plain, orig_over in rows)
    write_text(RESULTS, csv)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}; written {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
