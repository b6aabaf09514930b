"""Write a tiny synthetic PGDL tree in the real formats (random data, not CIFAR-10), and optionally zip it.

For tests and offline trials of the loader and the downloader, never for results:

    python scripts/make_pgdl_replica.py --out /tmp/replica/pgdl --zip /tmp/replica.zip
    python scripts/download_pgdl.py --data-root /tmp/d --url http://127.0.0.1:8000/replica.zip
"""
import argparse
import sys

from model import cli
from model.zoo import pgdl_replica


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder to write (plays public_data/)")
    parser.add_argument("--zip", help="also write this zip of the tree")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="write into an existing, non-empty folder")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return cli.run(run, parser.parse_args(argv))


def run(args) -> int:
    out = pgdl_replica.write_replica(args.out, seed=args.seed, force=args.force)
    if args.zip:
        pgdl_replica.write_zip(out, args.zip)
    print(args.zip or out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
