"""Model zoos: for a network name (`digits/0`, `mnist/2`, `pgdl/task1_v4/20`) a Keras model and its data splits.

Zoos know nothing about regularisers, specs or run folders. See `registry.py`.
"""
