"""Get MNIST (download or a folder of IDX .gz files), check it, and write data/mnist/mnist.npz with the split."""
import sys

from model import cli
from model.zoo import mnist

EXAMPLES = [
    '{prog}                         # download from the public mirrors',
    '{prog} --from-dir ~/mnist      # use train-/t10k- *-idx?-ubyte.gz you already have',
    '{prog} --base-url http://127.0.0.1:8000/ --expect files.json   # another IDX set',
]
EXIT_CODES = {0: "data/mnist/mnist.npz written (or already there)",
              2: "bad input, a failed download or a checksum mismatch"}


def main(argv=None) -> int:
    parser = cli.parser('prepare-mnist', __doc__, EXAMPLES, EXIT_CODES)
    parser.add_argument("--data-root", default="data", help="data folder (default: data)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--from-dir", help="folder holding the four MNIST .gz files")
    source.add_argument("--base-url", action="append", help="mirror to download from (repeatable; default: "
                        + ", ".join(mnist.MIRRORS) + ")")
    parser.add_argument("--expect", metavar="FILE",
                        help="JSON {file name: {\"md5\": ..., \"shape\": [n, 28, 28]}} for the four files, in place "
                             "of the published MNIST's (another MNIST-format set, a test mirror)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the 48k/12k train/validation split")
    parser.add_argument("--force", action="store_true", help="rewrite existing files")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return cli.run(run, parser.parse_args(argv))


def run(args) -> int:
    path = mnist.prepare(args.data_root, source_dir=args.from_dir, base_urls=args.base_url or mnist.MIRRORS,
                         seed=args.seed, force=args.force,
                         files=mnist.read_expected(args.expect) if args.expect else mnist.FILES)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
