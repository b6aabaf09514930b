"""One run, one entry point: `python -m model.runs.execute SPEC.json [--set KEY=VALUE] [--force] [--debug]`.

Validates the spec and everything it names (network, data, regulariser) before writing anything; says "already
done" when the run folder's `DONE.json` parses (unless --force); otherwise claims the run (`RUNNING.json`; as soon as
the process starts when its folder exists, e.g. written by a sweep driver, so that it shows as running while
TensorFlow loads and the data are read; removed again if the spec turns out bad), trains,
resuming from the last checkpoint, and writes `DONE.json` last (results, provenance: `model.runs.provenance`), or
`FAILED.json` with a one-line reason. While it holds the claim it logs to the run folder's `train.log`
(`model.runs.task_log`: epochs, warnings, a failure's reason then its trace). SIGTERM or SIGINT stops it politely
(`model.runs.stop_request`): at the next safe point, with a checkpoint, the claim released. Exit codes:
0 trained or already done, 1 the run failed, 2 bad input (nothing written), 3 another live process holds the claim,
4 stopped by a signal (resumes from its checkpoint).
Must not schedule anything (executors do) or know about sweeps.
"""
import contextlib
import json
import logging
import platform
import shutil
import sys
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from model import atomic, cli
from model.errors import SpecError
from model.runs import claims, overrides, provenance, run_folder, task_log
from model.runs.spec import Spec
from model.runs.stop_request import EXIT_STOPPED, Interrupted, StopRequest
from model.zoo.catalogue import get_network

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """A validated spec with what it names, loaded: zoo `Network`, its `Splits`, the regulariser callable."""

    spec: Spec
    network: object
    splits: object
    regulariser: object


def prepare(spec: Spec) -> Prepared:
    """Resolve the network, load its data and build the regulariser; raises `PipelineError`, writes nothing."""
    from model.regularisers import registry  # TensorFlow: here, so "already done" and a bad spec need none of it

    network = get_network(spec.network, data_root=spec.data_root, profile=spec.profile)
    splits = network.load_data()
    regulariser = registry.make(spec.regulariser, sampling=spec.sampling, **spec.regulariser_options)  # checked by Spec
    return Prepared(spec, network, splits, regulariser)


def versions() -> dict:
    import keras
    import numpy
    import tensorflow

    return {"python": platform.python_version(), "tensorflow": tensorflow.__version__,
            "keras": keras.__version__, "numpy": numpy.__version__}


def resolved_pairing(regulariser) -> str | None:
    """The MST pairing T1/T2 run with (`numpy` or `tf`, `auto` resolved on this process's devices); None for
    the regularisers that find no MST."""
    return regulariser.pairing if regulariser.id in ("t1", "t2") else None


def clear_outputs(run_dir: Path) -> None:
    """--force: drop everything a previous attempt wrote (DONE.json first, so a crash now is never 'finished')."""
    (run_dir / run_folder.DONE).unlink(missing_ok=True)
    for name in (run_folder.FAILED, run_folder.HISTORY, run_folder.WEIGHTS, run_folder.SPEC):
        (run_dir / name).unlink(missing_ok=True)
    for name in (run_folder.CHECKPOINTS, run_folder.TENSORBOARD):
        shutil.rmtree(run_dir / name, ignore_errors=True)


def check_same_spec(spec: Spec, run_dir: Path) -> None:
    """A run folder holds one spec: resuming or skipping under another would mix runs."""
    stored = run_folder.read_json(run_dir / run_folder.SPEC)
    if stored is None or stored == spec.to_dict():
        return
    differ = sorted(k for k in set(stored) | set(spec.to_dict()) if stored.get(k) != spec.to_dict().get(k))
    raise SpecError(f"{run_dir / run_folder.SPEC}: the run folder holds a different spec (fields {', '.join(differ)} "
                    "differ); rerun with --force to replace it or choose another output_root")


def check_run_folder(spec: Spec) -> None:
    """Before anything is written: the run folder lies inside the spec's output root, every symlink resolved
    (`SpecError`; the rule sweeps apply too), and its run-state files are regular files (`DataError`)."""
    run_folder.check_inside_root(spec.run_dir, spec.output_root)
    run_folder.check_state_files(spec.run_dir)


def run(prepared: Prepared, force: bool = False, claim: claims.Claim | None = None,
        stop: StopRequest | None = None) -> tuple[dict, bool]:
    """Train the run unless it is finished (and not `force`); return its `DONE.json` record and whether this call
    trained it (False when another process finished it first). `claim`: the run's claim when the caller already
    holds it (else it is taken here).

    Raises `SpecError` / `DataError` (nothing written) for a run folder outside its output root or holding a
    run-state file that is not a regular file (`check_run_folder`); `claims.ClaimHeld` when another live process
    trains it (`claims.ClaimLost` when one took the claim over mid-training), and `Interrupted` when `stop` (the
    process's `StopRequest`) stopped it, checkpointed, with the claim released; other errors, up to writing
    `DONE.json`, write `FAILED.json` and propagate.
    """
    check_run_folder(prepared.spec)
    if not force:
        check_same_spec(prepared.spec, prepared.spec.run_dir)
    return _train_unless_done(prepared, force, claim, stop)


def _train_unless_done(prepared: Prepared, force: bool, claim: claims.Claim | None = None,
                       stop: StopRequest | None = None) -> tuple[dict, bool]:
    """`run` once the run folder's spec is known to be this one (or `force`)."""
    run_dir, stop = prepared.spec.run_dir, stop or StopRequest()
    if not force:
        done = run_folder.read_done(run_dir)
        if done is not None:
            return done, False
    held = claims.Claim(run_dir) if claim is None else contextlib.nullcontext(claim)
    with stop.deferred(), held as claim:  # a signal from here on stops at a safe point
        if force:
            clear_outputs(run_dir)
        elif run_folder.is_done(run_dir):  # finished by another process while we were checking
            return run_folder.read_done(run_dir), False
        with task_log.attached(run_dir, forced=force):
            if claim.took_over is not None:
                log.warning("%s: took over a stale claim (%s)", run_dir, claims.describe(claim.took_over))
            try:
                return _train(prepared, run_dir, claim, stop), True
            except Interrupted as err:
                log.warning("%s: %s", run_dir, err)
                raise


def _train(prepared: Prepared, run_dir: Path, claim: claims.Claim, stop: StopRequest) -> dict:
    """Train under a held claim, logging to train.log; DONE.json on success, FAILED.json (and the trace in the log)
    on an error."""
    from model.runs import training  # TensorFlow: imported only when a run trains (see prepare)

    spec = prepared.spec
    log.info("%s: %s", spec.task_id, json.dumps(spec.to_dict(), sort_keys=True))
    atomic.write_json(run_dir / run_folder.SPEC, spec.to_dict())
    try:
        origin = provenance.at_start(run_folder.now())
        log.info("%s: training on %s", run_dir, provenance.describe(origin["device"]))
        outcome = training.train(spec, prepared.network, prepared.splits, prepared.regulariser, run_dir,
                                 heartbeat=claim.heartbeat, stop=stop)
        activity = outcome.regulariser_activity
        if activity is not None and activity["flagged"]:
            log.warning("%s: %s", run_dir, activity["warning"])
        record = {"task_id": spec.task_id, "network": spec.network, "block": prepared.network.block,
                  "regulariser": spec.regulariser, "weight": spec.weight, "seed": spec.seed,
                  "profile": spec.profile, **asdict(outcome), **origin,
                  "pairing": resolved_pairing(prepared.regulariser), "finished": run_folder.now(),
                  "versions": versions(),
                  "warnings": [activity["warning"]] if activity is not None and activity["flagged"] else [],
                  "spec": spec.to_dict()}
        run_folder.write_done(run_dir, record)
    except claims.ClaimLost as err:
        log.warning("%s", err)
        raise  # another process trains the run now: its folder is not ours to mark failed
    except Exception as err:
        task_log.failed(err)
        try:
            run_folder.write_failed(run_dir, err)
        except OSError as write_err:  # a full disk: the reason still reaches the driver through our output
            log.warning("%s: could not record %s (%s)", run_dir, run_folder.FAILED, write_err.strerror or write_err)
        raise
    log.info("done: test accuracy %.4f, val accuracy %.4f, %d epochs (%s)", record["test_accuracy"],
             record["val_accuracy"], record["epochs"], record["stop_reason"])
    return record


DESCRIPTION = ("Train one run from its spec file: train it, say it is already done, or resume it from its last "
               "checkpoint. DONE.json (results, provenance) is written last; a failure writes FAILED.json with its "
               "one-line reason.")
EXAMPLES = ["{prog} configs/digits/t1.json             # trains digits/0 under T1 (ω = 0.01)",
            "{prog} configs/digits/t1.json --set weight=0.1 --set max_epochs=5   # the same spec, two fields changed",
            "{prog} configs/digits/t1.json --force     # retrain from scratch",
            "{prog} experiments/digits/0/t1/0.01/seed_0/spec.json   # rerun any run from its folder"]
EXIT_CODES = {0: "trained, or already done", 1: "training failed (FAILED.json and train.log say why)",
              2: "bad input (nothing written)", 3: "another live process holds the run's claim (RUNNING.json)",
              4: "stopped by SIGTERM/SIGINT (EXIT_STOPPED): checkpointed, claim released, resumes on the next run"}


def main(argv=None) -> int:
    parser = cli.parser("run-experiment", DESCRIPTION, EXAMPLES, EXIT_CODES)
    parser.add_argument("spec", help="spec file (JSON); a run folder's spec.json is one")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="set a spec field over the file's (JSON value; dotted keys reach into objects), the same "
                             "syntax as run-sweep's --set, e.g. --set max_epochs=2 --set optimizer.learning_rate=0.1; "
                             "repeatable")
    parser.add_argument("--force", action="store_true", help="retrain from scratch even if finished")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    try:
        with StopRequest().installed() as stop:
            return cli.run(lambda parsed: _execute(parsed, stop), args)
    except Interrupted as err:
        print(f"{err}", file=sys.stderr)
        return EXIT_STOPPED


def _execute(args, stop: StopRequest) -> int:
    spec = Spec.from_file(args.spec, overrides.parse(args.overrides))
    check_run_folder(spec)  # before the early claim writes RUNNING.json there
    if not args.force:
        check_same_spec(spec, spec.run_dir)  # once, before anything is loaded
        if run_folder.is_done(spec.run_dir):
            print(f"{spec.run_dir}: already done (DONE.json); use --force to retrain")
            return 0
    try:
        # claimed now when the folder exists (a driver wrote it): the run is `running` while TensorFlow loads
        with claims.Claim(spec.run_dir) if spec.run_dir.is_dir() else contextlib.nullcontext() as claim:
            prepared = prepare(spec)  # bad input: one line, exit 2 (the early claim is released)
            record, trained = _train_or_fail(prepared, args, claim, stop)
    except claims.ClaimHeld as err:
        raise cli.CommandFailed(str(err), 3) from None
    if not trained:
        print(f"{spec.run_dir}: already done (finished by another process meanwhile)")
        return 0
    print(f"{spec.run_dir}: done: test accuracy {record['test_accuracy']:.4f}, val accuracy "
          f"{record['val_accuracy']:.4f}, {record['epochs']} epochs ({record['stop_reason']})")
    return 0


def _train_or_fail(prepared: Prepared, args, claim, stop: StopRequest) -> tuple[dict, bool]:
    """`_train_unless_done`, a failed training turned into exit 1 (FAILED.json says why); a held claim propagates."""
    try:
        return _train_unless_done(prepared, args.force, claim, stop)  # the spec was checked above
    except claims.ClaimHeld:
        raise
    except Exception as err:
        if args.debug:
            traceback.print_exc()
        cli.log_traceback(err)
        reason = run_folder.failure_reason(err)
        raise cli.CommandFailed(f"{prepared.spec.run_dir}: training failed: {type(err).__name__}: {reason} "
                                f"(trace in {prepared.spec.run_dir / run_folder.LOG})", 1) from None


if __name__ == "__main__":
    code = main()
    if code == EXIT_STOPPED:  # stopped on a signal, everything on disk: no slow teardown
        cli.exit_at_once(code)
    sys.exit(code)
