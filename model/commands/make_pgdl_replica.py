"""Write a tiny synthetic PGDL tree in the real formats (random data, not CIFAR-10), and optionally zip it.

For tests and offline trials of the loader and the downloader (serve the zip over HTTP and point download-pgdl's
--url at it), never for results.
"""
import sys

from model import cli
from model.zoo import pgdl_replica

EXAMPLES = [
    '{prog} --out /tmp/replica/pgdl --zip /tmp/replica.zip',
    "{prog} --out /tmp/replica/pgdl --seed 1 --force   # another replica over the first",
]
EXIT_CODES = {0: 'replica written', 2: 'bad input (e.g. --out exists and is not empty without --force)'}


def main(argv=None) -> int:
    parser = cli.parser('make-pgdl-replica', __doc__, EXAMPLES, EXIT_CODES)
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
