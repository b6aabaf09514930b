"""Fetch what the paper needs from the PGDL 2020 public archive into data/pgdl/ (resumable, CRC-checked).

Reads the remote zip's central directory with HTTP Range requests and fetches only task1_v4 models 20-23 and
148-151, the task's dataset shards and reference_data/task1_v4/model_configs.json; if the server ignores Range
requests, downloads the whole archive (8.8 GB) once and extracts from it. Run it again to resume. Every member is
checked against the SHA-256 pinned in model/zoo/pgdl_sha256.json; --record-hashes (once, on a trusted network)
records them there instead, to be committed.

    python scripts/download_pgdl.py
    python scripts/download_pgdl.py --url https://mirror.example/public_data.zip
    python scripts/download_pgdl.py --record-hashes    # first trusted fetch: pin the members' SHA-256s
"""
import argparse
import sys

from model import cli
from model.zoo import pgdl_fetch


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default="data", help="data folder (default: data); files go to <it>/pgdl/")
    parser.add_argument("--url", default=pgdl_fetch.PUBLIC_URL, help=f"archive URL (default: {pgdl_fetch.PUBLIC_URL})")
    parser.add_argument("--task", default=pgdl_fetch.TASK, help=f"task folder (default: {pgdl_fetch.TASK})")
    parser.add_argument("--models", type=int, nargs="+", default=list(pgdl_fetch.PAPER_MODELS),
                        help="model ids (default: the paper's " + " ".join(map(str, pgdl_fetch.PAPER_MODELS)) + ")")
    parser.add_argument("--record-hashes", action="store_true",
                        help=f"write the members' SHA-256s to {pgdl_fetch.PINS.name} instead of checking them "
                             "(once, on a trusted network; then commit the file)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return cli.run(run, parser.parse_args(argv))


def run(args) -> int:
    paths = pgdl_fetch.fetch(args.data_root, args.url, args.task, tuple(args.models),
                             record_hashes=args.record_hashes)
    print(f"{len(paths)} files under {args.data_root}/pgdl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
