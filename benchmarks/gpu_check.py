"""`make gpu-check`: does the GPU path work here, and how fast is it? One command, one file to send back.

    python benchmarks/gpu_check.py                  # ≤ 5 minutes on one GPU; writes benchmarks/results/gpu_check.txt
    python benchmarks/gpu_check.py --quick          # small sizes, seconds (what the test suite runs, on a CPU)

Prints and writes (`--out`): the TensorFlow, CUDA and cuDNN versions, the GPUs TensorFlow sees and their names;
then the checks, each a row marked ok / FAILED / skipped:
1. the in-graph Borůvka (`model.regularisers.persistence.boruvka_tf`, XLA-compiled) against the host Prim
   (`prim_compiled`) on a float64 Gram matrix of standardised random ReLU activations computed on the device: same
   MST edge array at N = 1010 and 6158 (batch 256);
2. one digits run (`digits/0`) under T1 with the in-graph pairing and XLA, as `model.runs.training.train` runs it on
   a GPU: finite loss, test accuracy above 0.8 after 10 epochs (quick: 0.5 after 3; chance is 0.1);
3. GPU only: training-step rows of `benchmarks/bench_training.py` (plain vs ours t1, ours/plain) for the MNIST MLP
   and the VGG-like CNN at 0.5 % and 5 % sampling (targets for users to measure: ≤ 1.3 on the MLP, ≤ 1.5 on the
   CNN at 5 %);
4. GPU only: tasks per hour at 1, 2 and 4 tasks per GPU on GPU 0, a short sweep (1 epoch, T1, 4 seeds) of
   `mnist/0` when its data is prepared under `--data-root`, else of `digits/0` (the file says which).
Without a visible GPU, checks 1 and 2 run on the CPU (XLA on CPU: the same compiled graphs) and 3, 4 are skipped.
Exit status 0 when no check FAILED, 1 otherwise. Everything temporary goes to a temporary folder, removed after.
"""
import argparse
import json
import math
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model.atomic import write_text  # noqa: E402
from model.regularisers import persistence, registry  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "gpu_check.txt"


class Report:
    """Lines printed as they come and kept for the file; `failed` is set by any FAILED row."""

    def __init__(self):
        self.lines, self.failed = [], False

    def __call__(self, text=""):
        print(text, flush=True)
        self.lines.append(text)

    def row(self, name, ok, detail):
        self.failed |= ok is False
        self(f"  [{'ok' if ok else 'skipped' if ok is None else 'FAILED'}] {name}: {detail}")


def environment(say):
    info = tf.sysconfig.get_build_info()
    gpus = tf.config.list_physical_devices("GPU")
    say(f"TensorFlow {tf.__version__}; built with CUDA {info.get('cuda_version', 'none')}, "
        f"cuDNN {info.get('cudnn_version', 'none')}; python {sys.version.split()[0]}; {os.cpu_count()} CPU cores")
    if not gpus:
        say("GPU: none visible to TensorFlow (tf.config.list_physical_devices('GPU') is empty): the GPU rows are "
            "skipped; the Borůvka and digits checks run on the CPU with XLA")
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        say(f"GPU: {gpu.name} = {details.get('device_name', '?')}, compute capability "
            f"{details.get('compute_capability', '?')}; TensorFlow sees it")
    return bool(gpus)


def device_gram(n, seed, device):
    """A (n, n) float64 Gram matrix zᵀz of standardised random ReLU activations (256, n), computed on `device`."""
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.standard_normal((256, n)), 0.0) + 0.01 * rng.standard_normal((256, n))
    with tf.device(device):
        xc = tf.constant(x) - tf.reduce_mean(tf.constant(x), axis=0)
        z = xc / tf.norm(xc, axis=0)
        return tf.matmul(z, z, transpose_a=True)


def check_boruvka(say, sizes, device):
    say(f"\n1. In-graph Borůvka (XLA) vs host Prim on {device}-computed float64 Gram matrices (batch 256)")
    with tf.device(device):
        boruvka = tf.function(lambda g: persistence.boruvka_tf(g, similarity=True), jit_compile=True)
    for n in sizes:
        try:
            gram = device_gram(n, n, device)
            t0 = time.perf_counter()
            with tf.device(device):
                edges = boruvka(gram).numpy()
            seconds = time.perf_counter() - t0
            host = persistence.prim_compiled(gram.numpy(), similarity=True)
            same = edges.shape == host.shape and np.array_equal(edges, host)
            say.row(f"N = {n}", same, f"{'same' if same else 'DIFFERENT'} MST edge array "
                    f"({len(host)} edges; Borůvka {seconds:.2f} s including compilation)")
        except Exception as err:  # report and go on: the file is what the user sends back
            say.row(f"N = {n}", False, f"{type(err).__name__}: {err}".splitlines()[0])


def check_digits(say, epochs, least_accuracy, on_gpu, tmp):
    from model.runs.spec import Spec
    from model.runs.training import train
    from model.zoo.catalogue import get_network

    say(f"\n2. digits/0 under T1 (weight 0.01), in-graph pairing, XLA, {epochs} epoch(s), on "
        f"{'the GPU' if on_gpu else 'the CPU'}")
    try:
        spec = Spec.from_dict({"network": "digits/0", "regulariser": "t1", "weight": 0.01, "batch_size": 64,
                               "max_epochs": epochs, "regulariser_options": {"pairing": "tf"},
                               "optimizer": {"learning_rate": 0.05}, "output_root": str(tmp / "digits")})
        reg = registry.make("t1", pairing="tf")
        network = get_network(spec.network)
        t0 = time.perf_counter()
        result = train(spec, network, network.load_data(), reg, spec.run_dir)
        seconds = time.perf_counter() - t0
        ok = reg.xla and math.isfinite(result.val_loss) and result.test_accuracy > least_accuracy
        say.row("training", ok, f"XLA {reg.xla}, val loss {result.val_loss:.4f}, test accuracy "
                f"{result.test_accuracy:.3f} (expected > {least_accuracy}), {result.iterations} steps, "
                f"{seconds:.1f} s")
    except Exception as err:
        say.row("training", False, f"{type(err).__name__}: {err}".splitlines()[0])


def check_steps(say, on_gpu, rounds, steps):
    say("\n3. Training steps (ms/step, median of interleaved steps; ours = T1 with the default options)")
    if not on_gpu:
        say.row("bench rows", None, "no GPU visible (the CPU table is `make bench`)")
        return
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_training as bench

    for case in (0, 2, 3):
        name, builder, p = bench.CASES[case]
        try:
            rows = bench.ratios(bench.time_case(name, builder, p, rounds, steps, 10.0, ["plain", "ours t1"]))
            for row in rows:
                say(f"  {row[0]:<30} N {row[1]:>6} p {row[2]:<6g} {row[3]:<8} {row[4]:>9.1f} ms  /plain "
                    f"{row[9]:.2f}  load {row[8]:.2f}")
        except Exception as err:
            say.row(name, False, f"{type(err).__name__}: {err}".splitlines()[0])


def check_throughput(say, on_gpu, data_root, tmp, concurrency):
    say("\n4. Tasks per hour on GPU 0 (short sweep: 1 epoch, T1 weight 0.01, 4 seeds per level)")
    if not on_gpu:
        say.row("throughput", None, "no GPU visible")
        return
    from model.sweeps import executors
    from model.sweeps import grid as sweeps
    from model.zoo.catalogue import get_network

    network = "mnist/0"
    try:
        get_network(network, data_root).load_data()
    except Exception as err:
        network = "digits/0"
        say(f"  mnist/0 not available under {data_root} ({type(err).__name__}); using digits/0")
    for k in concurrency:
        sweep = {"base": {"output_root": str(tmp / f"sweep_{k}"), "data_root": str(data_root), "max_epochs": 1,
                          "batch_size": 128},
                 "grid": [{"networks": [network], "seeds": list(range(4)),
                           "cells": [{"regulariser": "t1", "weights": [0.01]}]}]}
        path = tmp / f"sweep_{k}.json"
        path.write_text(json.dumps(sweep))
        try:
            tasks = sweeps.load(path)
            sweeps.write_specs(tasks)
            t0 = time.perf_counter()
            outcomes = executors.run(tasks, "local", gpus=["0"], tasks_per_gpu=k, max_retries=0)
            seconds = time.perf_counter() - t0
            done = sum(o.status == "done" for o in outcomes)
            say.row(f"{k} task(s) per GPU", done == len(tasks),
                    f"{done}/{len(tasks)} done in {seconds:.1f} s: {3600 * done / seconds:.0f} tasks per hour")
        except Exception as err:
            say.row(f"{k} task(s) per GPU", False, f"{type(err).__name__}: {err}".splitlines()[0])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and one epoch (seconds; for tests)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"report file (default {RESULTS})")
    parser.add_argument("--data-root", type=Path, default=Path("data"), help="where mnist/0's data is prepared")
    args = parser.parse_args(argv)
    say = Report()
    say(f"gpu_check {'(quick) ' if args.quick else ''}{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, "
        f"load average {os.getloadavg()[0]:.2f}")
    on_gpu = environment(say)
    device = "/GPU:0" if on_gpu else "/CPU:0"
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        tmp = Path(tmp)
        try:
            check_boruvka(say, (101, 619) if args.quick else (1010, 6158), device)
            check_digits(say, *((3, 0.5) if args.quick else (10, 0.8)), on_gpu, tmp)
            check_steps(say, on_gpu, 2 if args.quick else 5, 2 if args.quick else 4)
            check_throughput(say, on_gpu, args.data_root, tmp, (1, 2) if args.quick else (1, 2, 4))
        except Exception:                                   # never lose what was measured
            say.row("gpu_check", False, "crashed:\n" + traceback.format_exc())
    say(f"\n{'some check FAILED' if say.failed else 'no check failed'}; load average at end "
        f"{os.getloadavg()[0]:.2f}")
    write_text(args.out, "\n".join(say.lines) + "\n")
    print(f"written {args.out}")
    return 1 if say.failed else 0


if __name__ == "__main__":
    sys.exit(main())
