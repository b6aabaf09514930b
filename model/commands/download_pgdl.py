"""Fetch what the paper needs from the PGDL 2020 public archive into data/pgdl/ (resumable, CRC-checked).

Reads the remote zip's central directory with HTTP Range requests and fetches only task1_v4 models 20-23 and
148-151, the task's dataset shards and reference_data/task1_v4/model_configs.json; if the server ignores Range
requests, downloads the whole archive (8.8 GB) once and extracts from it. Run it again to resume. Every member is
CRC-32 checked, and its SHA-256 checked against a pin (model/zoo/pgdl_sha256.json, or --pins FILE) or, with no pin,
trusted on first use: recorded in <data root>/pgdl/sha256_recorded.json and checked on every later run.
"""
import sys

from model import cli
from model.zoo import pgdl_fetch

EXAMPLES = [
    '{prog}',
    '{prog} --url https://mirror.example/public_data.zip',
    "{prog} --pins my_pins.json    # SHA-256s you trust, same format as pgdl_sha256.json",
]
EXIT_CODES = {0: 'every member fetched and checked', 2: 'bad input, a failed download or a checksum mismatch'}


def main(argv=None) -> int:
    parser = cli.parser('download-pgdl', __doc__, EXAMPLES, EXIT_CODES)
    parser.add_argument("--data-root", default="data", help="data folder (default: data); files go to <it>/pgdl/")
    parser.add_argument("--url", default=pgdl_fetch.PUBLIC_URL, help=f"archive URL (default: {pgdl_fetch.PUBLIC_URL})")
    parser.add_argument("--task", default=pgdl_fetch.TASK, help=f"task folder (default: {pgdl_fetch.TASK})")
    parser.add_argument("--models", type=int, nargs="+", default=list(pgdl_fetch.PAPER_MODELS),
                        help="model ids (default: the paper's " + " ".join(map(str, pgdl_fetch.PAPER_MODELS)) + ")")
    parser.add_argument("--pins", action="append", default=[], metavar="FILE",
                        help=f"a pin file (the format of model/zoo/{pgdl_fetch.PINS.name}) whose SHA-256s are "
                             "checked too and win over the repository's and the recorded ones; repeatable")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return cli.run(run, parser.parse_args(argv))


def run(args) -> int:
    paths = pgdl_fetch.fetch(args.data_root, args.url, args.task, tuple(args.models),
                             pins=(pgdl_fetch.PINS, *args.pins))
    print(f"{len(paths)} files under {args.data_root}/pgdl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
