"""One analysis → the files of its folder: statistics.json, details.json, CD diagram (PNG, PDF, TikZ), tables, the
expected-best curves (expected_best.csv and .png).

`extract` is what `extract_statistics.py` runs: accuracies CSV → `<out>/<block>/...` and `<out>/combined/...`.
statistics.json holds exactly the contract's keys (docs/architecture.md); what else an analysis knows (groups,
dropped networks, q_α, p-value variant) goes to details.json. This module writes; it must not compute statistics.
"""
import logging
from pathlib import Path

from model import atomic
from model.analysis import accuracies, friedman_exact, improvement, statistics, tables
from model.analysis.figures import cd_diagram, expected_best
from model.analysis.paper import DROPPED_WEIGHTS
from model.errors import DataError

log = logging.getLogger(__name__)


def details(analysis: statistics.Analysis) -> dict:
    """What statistics.json does not hold: groups and how they were formed, dropped networks, q_α, p variant, and
    in words the selection, the Friedman p used for the verdict, the intervals and the paired tests."""
    return {
        "groups": analysis.groups,
        "groups_rule": "Friedman exact p > alpha: one group; else maximal cliques of Nemenyi p >= alpha, widened to "
                       "the rank interval; nested intervals and singletons dropped",
        "friedman_exact": "permutation p of Friedman's statistic (rows of average ranks permuted within networks): "
                          "'enumeration' is exact (all (k!)^n orderings counted by convolution over networks) while "
                          f"one step stays within {friedman_exact.MAX_WORK} states x orderings, else 'monte carlo' "
                          f"with {friedman_exact.DRAWS} seeded draws, p = (1 + hits)/(1 + draws); the verdict, "
                          "groups and summary follow it; chi2 and Iman-Davenport F are the approximations beside it",
        "q_alpha": analysis.q_alpha,
        "nemenyi_p_variant": "capped to [0.001, 0.9] (scikit-posthocs <= 0.9)" if analysis.nemenyi_capped
        else "uncapped (scipy studentized_range)",
        "dropped_networks": analysis.dropped_networks,
        "networks": list(analysis.matrix.index),
        "selection": (
            "matched budget (Dodge et al. 2019): on each network every treatment, the baseline included, scored by "
            "the expected test accuracy of the validation-best of n draws with replacement (a regulariser's weights, "
            "each the mean over its seeds; the baseline's seeds), n = the fewest draws any treatment has there; "
            "validation ties: the tied draws' test accuracies averaged; the weight shown is the one the paper's rule "
            "picks" if analysis.baseline_rule == "matched" else
            "the paper's rule: per network and regulariser the weight > 0 with the best mean validation accuracy "
            "(ties: smallest weight), scored by its mean test accuracy; the baseline's cell is the mean over its "
            "seeds (best of W weights against best of 1: expected_best.csv compares at equal n)"),
        "baseline_selection": analysis.baseline_rule,
        "intervals": "95 % Student-t interval of a selected cell's mean test accuracy over its seeds "
                     "(mean ± t_{0.975, n-1} s/sqrt(n)); none for one seed",
        "paired_tests": "per treatment, Wilcoxon signed-rank (two-sided, scipy) of its selected cells against the "
                        "baseline's, paired over networks x shared seeds (cell scores where no seed is shared or a "
                        "cell is an expected best); p_holm: Holm's adjustment over the block's treatments; "
                        "min_attainable_p = 2/2^m for m non-zero differences: above alpha the test cannot reject; "
                        "p_improvement: mean over networks of P(X > Y) + P(X = Y)/2 over the treatment's and the "
                        f"baseline's runs, 95 % stratified bootstrap ({improvement.DRAWS} draws, seeds resampled "
                        "within networks)",
        "expected_best": "expected_best.csv: per network, treatment and n = 1..N, the expected validation and test "
                         "accuracy of the validation-best of n draws (Dodge et al. 2019, allentune samplemax)",
    }


def write_block(analysis: statistics.Analysis, out_dir: str | Path) -> list[Path]:
    """Write every output of one analysis into out_dir; return the paths."""
    out_dir = Path(out_dir)
    paths = [atomic.write_json(out_dir / "details.json", details(analysis))]
    if analysis.average_ranks is not None:  # one network: no ranks, so no CD diagram
        paths += cd_diagram.write_all(analysis.average_ranks.to_dict(), analysis.groups,
                                      analysis.critical_difference, out_dir / "cd_diagram", title=analysis.block)
    paths += tables.write_all(analysis, out_dir)
    if analysis.budget_curves is not None and not analysis.budget_curves.empty:
        paths.append(atomic.write_text(out_dir / "expected_best.csv", analysis.budget_curves.to_csv(index=False)))
        png = expected_best.plot(analysis.budget_curves, analysis.block, out_dir / "expected_best.png")
        paths += [png] if png else []
    # statistics.json last: its presence means the folder is complete (extract refuses to overwrite it)
    return paths + [atomic.write_json(out_dir / "statistics.json", analysis.to_json())]


ALTERNATIVE = "{}_baseline"  # sub-folder of an analysis holding it under the other baseline rule


def paper_settings(frame) -> bool:
    """Whether the runs ask for the original's analysis: every run of the `paper` profile (the accuracies CSV's
    `profile` column, from each DONE.json). Then the Nemenyi p is capped and the hand-dropped weights are left out
    by default (Q-nemenyi-capped, Q-dropped-weights); a CSV without the column, or mixing profiles (warned), is
    analysed as `corrected`."""
    if "profile" not in frame:
        return False
    profiles = sorted(set(frame["profile"].dropna().astype(str)))
    if len(profiles) > 1:
        log.warning("the accuracies mix profiles %s: analysed with the corrected profile's settings (uncapped "
                    "Nemenyi p, every weight); --nemenyi-p and --drop-paper-weights choose otherwise",
                    ", ".join(profiles))
    return profiles == ["paper"]


def extract(accuracies_csv: str | Path, out_dir: str | Path, alpha: float = 0.05, blocks=None,
            capped: bool | None = None, drop_paper_weights: bool | None = None, force: bool = False,
            baseline_rule: str = "paper", seed: int = 0, allow_unknown_treatments: bool = False) -> dict[str, Path]:
    """Analyse every block and `combined`; write `<out_dir>/<name>/`; return {name: folder}.

    A regulariser that is not a registry id is an error (`model.analysis.accuracies.check_treatments`) unless
    `allow_unknown_treatments` (a table of treatments of the user's own).
    capped / drop_paper_weights: the paper's settings (Nemenyi p clipped like old scikit-posthocs; the weights its
    script dropped by hand, `model.analysis.paper.DROPPED_WEIGHTS`); None (the default) takes them from the runs'
    profile (`paper_settings`), True or False overrides it. baseline_rule: "paper" (regularisers' best
    weight, the baseline's mean over its seeds) or "matched" (every treatment's expected best of the same number of
    draws; `model.analysis.statistics.select`); seed: every random draw of the analyses (permutation test,
    bootstrap). When the baseline has several seeds on a network, the analyses under the other rule are written to
    `<out_dir>/<name>/<other rule>_baseline/`, for the report to show side by side. An existing statistics.json is
    not overwritten unless `force`.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir}: exists and is not a folder; expected --out to name a folder (new or existing)")
    frame = accuracies.read(accuracies_csv, allow_unknown_treatments)
    paper = paper_settings(frame)
    capped = paper if capped is None else capped
    drop_paper_weights = paper if drop_paper_weights is None else drop_paper_weights
    if paper:
        log.info("paper profile: Nemenyi p %s, the hand-dropped weights %s", "capped" if capped else "uncapped",
                 "left out" if drop_paper_weights else "kept")
    if drop_paper_weights:
        frame = statistics.drop_weights(frame, DROPPED_WEIGHTS)
    names = list(blocks or frame["block"].unique()) + ["combined"]
    existing = [out_dir / name / "statistics.json" for name in names if (out_dir / name / "statistics.json").exists()]
    if existing and not force:
        raise DataError(f"{existing[0]}: already exists; pass --force to overwrite it")
    analyses = statistics.analyse_blocks(frame, alpha=alpha, blocks=blocks, capped=capped, baseline_rule=baseline_rule,
                                         seed=seed)
    other = [r for r in statistics.BASELINE_RULES if r != baseline_rule][0]
    alternatives = (statistics.analyse_blocks(frame, alpha=alpha, blocks=blocks, capped=capped, baseline_rule=other,
                                              seed=seed)
                    if statistics.baseline_seeds(frame) > 1 else {})
    folders = {}
    for name, analysis in analyses.items():
        if name in alternatives:
            write_block(alternatives[name], out_dir / name / ALTERNATIVE.format(other))
        write_block(analysis, out_dir / name)
        folders[name] = out_dir / name
        log.info("%s: %d networks × %d treatments → %s", name, *analysis.matrix.shape, out_dir / name)
    return folders
