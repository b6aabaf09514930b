"""One analysis → the files of its folder: statistics.json, details.json, CD diagram (PNG, PDF, TikZ), tables.

`extract` is what `extract_statistics.py` runs: accuracies CSV → `<out>/<block>/...` and `<out>/combined/...`.
statistics.json holds exactly the contract's keys (docs/architecture.md); what else an analysis knows (groups,
dropped networks, q_α, p-value variant) goes to details.json. This module writes; it must not compute statistics.
"""
import logging
from pathlib import Path

from model import atomic
from model.analysis import accuracies, statistics, tables
from model.analysis.figures import cd_diagram
from model.analysis.paper import DROPPED_WEIGHTS
from model.errors import DataError

log = logging.getLogger(__name__)


def details(analysis: statistics.Analysis) -> dict:
    """What statistics.json does not hold: groups and how they were formed, dropped networks, q_α, p variant."""
    return {
        "groups": analysis.groups,
        "groups_rule": "Iman–Davenport p > alpha: one group; else maximal cliques of Nemenyi p >= alpha, widened to "
                       "the rank interval; nested intervals and singletons dropped",
        "q_alpha": analysis.q_alpha,
        "nemenyi_p_variant": "capped to [0.001, 0.9] (scikit-posthocs <= 0.9)" if analysis.nemenyi_capped
        else "uncapped (scipy studentized_range)",
        "dropped_networks": analysis.dropped_networks,
        "networks": list(analysis.matrix.index),
        "selection": "per network and regulariser the weight > 0 with the best mean validation accuracy (ties: "
                     "smallest weight), scored by its mean test accuracy; " + (
                         "the baseline's seed with the best validation accuracy (ties: smallest seed), scored by its "
                         "test accuracy (selection-matched baseline)" if analysis.baseline_rule == "matched" else
                         "the baseline has no weight to choose: the mean over its seeds (the paper's rule)"),
        "baseline_selection": analysis.baseline_rule,
        "intervals": "95 % Student-t interval of a selected cell's mean test accuracy over its seeds "
                     "(mean ± t_{0.975, n-1} s/sqrt(n)); none for one seed",
        "paired_tests": "per treatment, Wilcoxon signed-rank (two-sided, scipy) of its selected cells against the "
                        "baseline's, paired over networks x shared seeds (cell scores where no seed is shared); "
                        "p_holm: Holm's adjustment over the block's treatments",
    }


def write_block(analysis: statistics.Analysis, out_dir: str | Path) -> list[Path]:
    """Write every output of one analysis into out_dir; return the paths."""
    out_dir = Path(out_dir)
    paths = [atomic.write_json(out_dir / "details.json", details(analysis))]
    paths += cd_diagram.write_all(analysis.average_ranks.to_dict(), analysis.groups, analysis.critical_difference,
                                  out_dir / "cd_diagram", title=analysis.block)
    paths += tables.write_all(analysis, out_dir)
    # statistics.json last: its presence means the folder is complete (extract refuses to overwrite it)
    return paths + [atomic.write_json(out_dir / "statistics.json", analysis.to_json())]


ALTERNATIVE = "{}_baseline"  # sub-folder of an analysis holding it under the other baseline rule


def extract(accuracies_csv: str | Path, out_dir: str | Path, alpha: float = 0.05, blocks=None,
            capped: bool = False, drop_paper_weights: bool = False, force: bool = False,
            baseline_rule: str = "paper") -> dict[str, Path]:
    """Analyse every block and `combined`; write `<out_dir>/<name>/`; return {name: folder}.

    capped / drop_paper_weights: the paper's settings (Nemenyi p clipped like old scikit-posthocs; the weights its
    script dropped by hand, `model.analysis.paper.DROPPED_WEIGHTS`). baseline_rule: "paper" (the baseline's cell is
    the mean over its seeds) or "matched" (its best-validation seed; `model.analysis.statistics.select`); when the
    baseline has several seeds on a network, the analyses under the other rule are written too, to
    `<out_dir>/<name>/<other rule>_baseline/`, for the report to show side by side. An existing statistics.json is
    not overwritten unless `force`.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir}: exists and is not a folder; expected --out to name a folder (new or existing)")
    frame = accuracies.read(accuracies_csv)
    if drop_paper_weights:
        frame = statistics.drop_weights(frame, DROPPED_WEIGHTS)
    names = list(blocks or frame["block"].unique()) + ["combined"]
    existing = [out_dir / name / "statistics.json" for name in names if (out_dir / name / "statistics.json").exists()]
    if existing and not force:
        raise DataError(f"{existing[0]}: already exists; pass --force to overwrite it")
    analyses = statistics.analyse_blocks(frame, alpha=alpha, blocks=blocks, capped=capped, baseline_rule=baseline_rule)
    other = [r for r in statistics.BASELINE_RULES if r != baseline_rule][0]
    alternatives = (statistics.analyse_blocks(frame, alpha=alpha, blocks=blocks, capped=capped, baseline_rule=other)
                    if statistics.baseline_seeds(frame) > 1 else {})
    folders = {}
    for name, analysis in analyses.items():
        if name in alternatives:
            write_block(alternatives[name], out_dir / name / ALTERNATIVE.format(other))
        write_block(analysis, out_dir / name)
        folders[name] = out_dir / name
        log.info("%s: %d networks × %d treatments → %s", name, *analysis.matrix.shape, out_dir / name)
    return folders
