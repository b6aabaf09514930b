"""Library of the reproduction pipeline for "Decorrelating neurons using persistence".

Everything importable and tested lives here; `scripts/`, `accuracies/` and `extract_statistics.py` are thin
command-line entry points over it. Nothing in `model/` imports from them.
"""
