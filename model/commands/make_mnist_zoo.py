"""Write the initial weights of the three MNIST MLPs (data/mnist/zoo/model_{0,1,2}.npz) from a seed.

Network 1 is network 0 plus Dropout(0.5) and gets network 0's initial weights.
"""
import sys

from model import cli
from model.zoo import mnist

EXAMPLES = [
    '{prog} --seed 0',
]
EXIT_CODES = {0: "the zoo's initial weights written", 2: 'bad input'}


def main(argv=None) -> int:
    parser = cli.parser('make-mnist-zoo', __doc__, EXAMPLES, EXIT_CODES)
    parser.add_argument("--data-root", default="data", help="data folder (default: data)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    parser.add_argument("--force", action="store_true", help="rewrite existing files")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return cli.run(run, parser.parse_args(argv))


def run(args) -> int:
    print("\n".join(map(str, mnist.make_zoo(args.data_root, seed=args.seed, force=args.force))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
