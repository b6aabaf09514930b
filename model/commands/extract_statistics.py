"""Friedman/Nemenyi statistics, CD diagrams and tables from an accuracies CSV, per block and combined.

    python extract_statistics.py ACCURACIES.csv --out DIR [--alpha 0.05] [--blocks mnist pgdl]
        [--baseline paper|matched] [--seed 0] [--force]

Writes DIR/<block>/ and DIR/combined/: statistics.json, details.json, cd_diagram.{png,pdf,tex}, tables
(.csv/.md/.tex). Exit status 2 with one line on stderr for bad input. The work is in model/analysis/outputs.py.
"""
import argparse
import sys

from model import cli
from model.analysis import outputs


def work(args) -> int:
    folders = outputs.extract(args.accuracies, args.out, alpha=args.alpha, blocks=args.blocks,
                              capped=args.nemenyi_p == "capped", drop_paper_weights=args.drop_paper_weights,
                              force=args.force, baseline_rule=args.baseline, seed=args.seed,
                              allow_unknown_treatments=args.allow_unknown_treatments)
    for name, folder in folders.items():
        print(f"{name}: {folder / 'statistics.json'}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("accuracies", help="accuracies CSV (accuracies/collect_accuracies.py)")
    p.add_argument("--out", required=True, help="output folder (one subfolder per block, and combined)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--blocks", nargs="+", help="analyse only these blocks (default: all in the CSV)")
    p.add_argument("--nemenyi-p", choices=("uncapped", "capped"), default="uncapped",
                   help="'capped' clips p to [0.001, 0.9] like scikit-posthocs <= 0.9 did (the paper's setting)")
    p.add_argument("--drop-paper-weights", action="store_true",
                   help="leave out the weights the original dropped by hand (Q-dropped-weights in docs/quirks.md), "
                        "to compare with Table 1")
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
    p.add_argument("--allow-unknown-treatments", action="store_true",
                   help="accept regulariser names that are not ids of the registry (a table of your own methods); "
                        "by default one is an error, so a typo or an upper-cased NONE never drops the baseline")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return cli.run(work, p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
