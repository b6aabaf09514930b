"""Friedman/Nemenyi statistics, CD diagrams and tables from an accuracies CSV, per block and combined.

Writes DIR/<block>/ and DIR/combined/: statistics.json, details.json, cd_diagram.{png,pdf,tex}, tables
(.csv/.md/.tex), expected_best.{csv,png}. The Nemenyi p variant and the hand-dropped weights follow the runs' profile
(the CSV's `profile` column: `paper` caps and drops, as the original did) unless --nemenyi-p /
--[no-]drop-paper-weights say otherwise. The work is in model/analysis/outputs.py.
"""
import argparse
import sys
import warnings

from model import cli
from model.analysis import accuracies, outputs
from model.errors import PipelineError

EXAMPLES = ["{prog} --accuracies experiments/demo/accuracies.csv --out experiments/demo/statistics",
            "{prog} --accuracies ACC.csv --out DIR --baseline matched --force   # best-validation baseline seed",
            "{prog} --accuracies ACC.csv --out DIR --nemenyi-p capped --drop-paper-weights   # as the paper"]
EXIT_CODES = {0: "statistics written", 2: "bad input (one line naming the file, column and value)"}


def work(args) -> int:
    if args.accuracies_positional is not None:
        if args.accuracies is not None:
            raise PipelineError("give the accuracies CSV once: --accuracies ACC.csv")
        warnings.warn("the positional accuracies CSV is deprecated; write --accuracies ACC.csv", stacklevel=1)
        args.accuracies = args.accuracies_positional
    if args.accuracies is None:
        raise PipelineError("give the accuracies CSV: --accuracies ACC.csv")
    folders = outputs.extract(args.accuracies, args.out, alpha=args.alpha, blocks=args.blocks,
                              capped=None if args.nemenyi_p is None else args.nemenyi_p == "capped",
                              drop_paper_weights=args.drop_paper_weights, force=args.force, baseline_rule=args.baseline,
                              seed=args.seed, allow_unknown_treatments=args.allow_unknown_treatments)
    for name, folder in folders.items():
        print(f"{name}: {folder / 'statistics.json'}")
    return 0


def main(argv=None) -> int:
    p = cli.parser("extract-statistics", __doc__, EXAMPLES, EXIT_CODES, notes=accuracies.COLUMNS_HELP)
    p.add_argument("--accuracies", metavar="ACC.csv", help="the accuracies CSV (collect-accuracies writes one; "
                   "columns below)")
    p.add_argument("accuracies_positional", nargs="?", metavar="ACC.csv", help="deprecated: the same as --accuracies")
    p.add_argument("--out", required=True, help="output folder (one subfolder per block, and combined)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--blocks", nargs="+", help="analyse only these blocks (default: all in the CSV)")
    p.add_argument("--nemenyi-p", choices=("uncapped", "capped"), default=None,
                   help="'capped' clips p to [0.001, 0.9] like scikit-posthocs <= 0.9 did (the paper's setting); "
                        "default: capped when every run is of the paper profile (the CSV's profile column), else "
                        "uncapped")
    p.add_argument("--drop-paper-weights", action=argparse.BooleanOptionalAction, default=None,
                   help="leave out the weights the original dropped by hand (Q-dropped-weights in docs/quirks.md), "
                        "to compare with Table 1; default: yes when every run is of the paper profile, else no")
    p.add_argument("--baseline", choices=("paper", "matched"), default="paper",
                   help="'paper' (default): a regulariser's best weight by validation against the baseline's mean "
                        "over its seeds (best of W against best of 1); 'matched': every treatment, baseline "
                        "included, scored by the expected test accuracy of the validation-best of n draws (weights "
                        "for a regulariser, seeds for the baseline; Dodge et al. 2019), one n per network (when the "
                        "baseline has several seeds, the other rule's analysis is written too, in "
                        "<block>/<rule>_baseline/)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of every random draw: the Monte-Carlo permutation test (when Friedman's exact p is "
                        "too large to enumerate) and the bootstrap of the probability of improvement (default 0)")
    p.add_argument("--force", action="store_true", help="overwrite existing statistics")
    accuracies.add_treatment_names_option(p)
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return cli.run(work, p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
