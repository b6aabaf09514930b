"""Did the regulariser act? The vocabulary of the per-step accounting and its whole-run summary (no TensorFlow).

Each training step with weight ω > 0 has exactly one outcome for the regulariser's gradient, decided in this order:
- `skipped_small_batch`: the batch holds fewer than 2 examples (no correlation exists; R and its gradient are 0);
- `zeroed_dead_neurons`: the dead-neuron policy `dead_neurons="zero_grad"` (the paper profile) stopped the whole
  gradient because a sampled neuron is constant over the batch (Q-dead-neurons);
- `zeroed_zero_length_bars`: the zero-length-bar policy left no gradient (`zero_loss` with a death ≤ 0, the paper
  profile; or `drop` with no death > 0; Q-zero-bars);
- `zeroed_nonfinite`: `reg_nonfinite="zero_per_variable"` zeroed the regulariser's gradient of at least one
  variable as non-finite (the others were applied);
- `applied`: ω·∇R was added to the update of every variable.
Besides the outcome each step records the number of constant neurons among the sampled ones, and some steps
‖ω∇R‖ / ‖∇CE‖, the global norms over the network's trainable variables (0 when the regulariser's gradient was
zeroed or skipped; 0 when ∇CE is exactly 0). The ratio needs the two gradients apart, i.e. a second backward pass
through the network: under `reg_nonfinite="zero_per_variable"` (the paper profile) the step takes them apart anyway
and the ratio is measured on every step; otherwise on every `RATIO_EVERY`-th optimiser step (iterations divisible by
it), since a second backward pass on every step costs a noticeable share of a step (benchmarks/README.md, *Activity
accounting*). An epoch without a measured step has an empty (NaN) ratio. Every measured ratio is also kept (read back
to the host after its step and carried across checkpoints), so the run's record gives their median, range and the
fraction under `SMALL_RATIO`.

The training step (`model.runs.training.ActivityTracker`) sums these per step into a vector laid out as `SUMS`, per
epoch (`history.csv` and TensorBoard: `COLUMNS`, each outcome's fraction of the epoch's steps, the mean number of
constant sampled neurons over the steps that sampled any, the mean ratio over the steps that measured it) and per
run (carried across checkpoints; `summary` gives `DONE.json`'s `regulariser_activity`). A run whose regulariser
was applied in fewer than `ACTED_THRESHOLD` of its steps is flagged.

Two more verdicts read these records (per run or per grid cell; `negligible`, `kills_neurons`): a regulariser that
acted but whose gradient was under `SMALL_RATIO` of the CE gradient on most measured steps was in effect the
baseline ("negligible"); one under which the sampled neurons constant per batch grew to `KILLING_FACTOR` times the
baseline's is killing neurons.
"""
import statistics

OUTCOMES = ("applied", "zeroed_dead_neurons", "zeroed_zero_length_bars", "zeroed_nonfinite", "skipped_small_batch")
SUMS = (*OUTCOMES, "constant_neurons", "grad_ratio", "grad_ratio_steps")  # the per-step sums vector, in this order
RATIO_EVERY = 10
ACTED_THRESHOLD = 0.5
SMALL_RATIO = 0.01  # `grad_ratio_under_1pct`: the fraction of measured steps with ‖ω∇R‖/‖∇CE‖ below this
NEGLIGIBLE_SHARE = 0.5  # negligible: ‖ω∇R‖/‖∇CE‖ under SMALL_RATIO on more than this share of the measured steps
KILLING_FACTOR = 2.0  # killing neurons: constant neurons per batch ≥ this × the reference's (and ≥ 1 more)
COLUMNS = tuple(f"reg_{name}" for name in (*OUTCOMES, "constant_neurons", "grad_ratio"))  # per epoch


def summary(sums, ratios, uses_activations: bool) -> dict:
    """The whole run's `regulariser_activity` record from the per-step sums (laid out as `SUMS`) and the list of
    measured ratios: step counts per outcome, `applied_fraction`, the mean number of constant sampled neurons (None
    for weight regularisers), the mean ‖ω∇R‖/‖∇CE‖ and on how many steps it was measured (`grad_ratio_steps`), the
    median, minimum and maximum of the measured ratios and the fraction of them below `SMALL_RATIO`
    (`grad_ratio_median`, `grad_ratio_min`, `grad_ratio_max`, `grad_ratio_under_1pct`; None without a measured
    step; a zeroed or skipped step's ratio is 0), and `flagged` (applied in fewer than `ACTED_THRESHOLD` of the
    steps) with its warning text."""
    ratios = [float(r) for r in ratios]
    s = dict(zip(SUMS, (float(v) for v in sums)))
    steps = int(round(sum(s[o] for o in OUTCOMES)))
    applied = _ratio(s["applied"], steps)
    flagged = steps > 0 and applied < ACTED_THRESHOLD
    record = {"steps": steps, **{o: int(round(s[o])) for o in OUTCOMES}, "applied_fraction": applied,
              "mean_constant_neurons": (_ratio(s["constant_neurons"], steps - s["skipped_small_batch"])
                                        if uses_activations else None),
              "mean_grad_ratio": _ratio(s["grad_ratio"], s["grad_ratio_steps"]),
              "grad_ratio_steps": int(round(s["grad_ratio_steps"])),
              "grad_ratio_median": statistics.median(ratios) if ratios else None,
              "grad_ratio_min": min(ratios) if ratios else None,
              "grad_ratio_max": max(ratios) if ratios else None,
              "grad_ratio_under_1pct": _ratio(sum(r < SMALL_RATIO for r in ratios), len(ratios)),
              "flagged": bool(flagged), "warning": None}
    if flagged:
        reasons = ", ".join(f"{o} {record[o]}" for o in OUTCOMES[1:] if record[o])
        record["warning"] = (f"the regulariser acted in {record['applied']} of {steps} steps "
                             f"({100 * applied:.1f} % < {100 * ACTED_THRESHOLD:.0f} %): {reasons}")
    return record


def _ratio(a: float, b: float) -> float | None:
    """a / b, or None (JSON null) when b is 0: nothing to average."""
    return a / b if b > 0 else None


def negligible(under_small: float | None, mean_ratio: float | None) -> bool | None:
    """Whether a run or cell whose regulariser acted was in effect the baseline: ‖ω∇R‖/‖∇CE‖ under `SMALL_RATIO` on
    more than `NEGLIGIBLE_SHARE` of the measured steps (`grad_ratio_under_1pct`); for a record from before that key,
    the mean ratio under `SMALL_RATIO`. None when neither is known."""
    if under_small is not None:
        return under_small > NEGLIGIBLE_SHARE
    return None if mean_ratio is None else mean_ratio < SMALL_RATIO


def kills_neurons(constant: float, reference: float) -> bool:
    """Whether `constant` sampled neurons per batch (mean) is at least `KILLING_FACTOR` times the `reference`'s
    (the baseline's, or the lowest weight's) and at least one neuron more."""
    return constant >= KILLING_FACTOR * reference and constant >= reference + 1.0
