#!/usr/bin/env python
"""Write the initial weights of the three MNIST MLPs (data/mnist/zoo/model_{0,1,2}.npz) from a seed.

Entry point only: the command is `model/commands/make_mnist_zoo.py` (`--help` says how to use it)."""
import sys

from model.commands.make_mnist_zoo import main

if __name__ == "__main__":
    sys.exit(main())
