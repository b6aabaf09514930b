#!/usr/bin/env python
"""Get MNIST (download or a folder of IDX .gz files), check it, and write data/mnist/mnist.npz with the split.

Entry point only: the command is `model/commands/prepare_mnist.py` (`--help` says how to use it)."""
import sys

from model.commands.prepare_mnist import main

if __name__ == "__main__":
    sys.exit(main())
