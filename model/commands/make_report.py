"""Build a sweep's report page (Markdown + PNG, and one self-contained HTML page) from its accuracies and statistics.

Writes REPORT_DIR/report.md, its PNGs and REPORT_DIR/report.html (figures embedded; opens offline). Prints the
report's path. The work is in model/analysis/report.py (and model/measures/report_section.py for the NP/DGP section).
"""
import sys

from model import cli
from model.analysis import accuracies, report
from model.measures import report_section

EXAMPLES = ["{prog} --accuracies experiments/demo/accuracies.csv --statistics experiments/demo/statistics "
            "--out experiments/demo/report",
            "{prog} --accuracies ACC.csv --statistics DIR --out REPORT --measures measures.csv --title 'My sweep' "
            "--force"]
EXIT_CODES = {0: "report written", 2: "bad input (one line naming the file, column and value)"}


def work(args) -> int:
    path = report.build(args.accuracies, args.statistics, args.out, measures_csv=args.measures,
                        title=args.title, force=args.force, extra_sections=(report_section.section,),
                        allow_unknown_treatments=args.allow_unknown_treatments)
    print(f"report: {path}")
    return 0


def main(argv=None) -> int:
    p = cli.parser("make-report", __doc__, EXAMPLES, EXIT_CODES, notes=accuracies.COLUMNS_HELP)
    p.add_argument("--accuracies", required=True, metavar="ACC.csv",
                   help="the accuracies CSV (collect-accuracies writes one; columns below)")
    p.add_argument("--statistics", required=True, help="folder written by extract-statistics")
    p.add_argument("--out", required=True, help="report folder (report.md, PNGs, report.html)")
    p.add_argument("--measures", help="NP/DGP measures CSV (default: measures.csv beside the accuracies, if any)")
    p.add_argument("--title", default="Report", help="page title")
    p.add_argument("--force", action="store_true", help="overwrite an existing report")
    accuracies.add_treatment_names_option(p)
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return cli.run(work, p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
