"""Library of the reproduction pipeline for "Decorrelating neurons using persistence".

Everything importable and tested lives here; `scripts/`, `accuracies/` and `extract_statistics.py` are thin
command-line entry points over it (and `model.commands` the installed console scripts). Nothing in `model/` imports
from them. The public API for one's own models: `model.regularisers` (`make`, `IDS`, `NeuronPenalty`) and
`model.measures` (neural persistence, deep graph persistence); README, "Use T1/T2 in your own model".
"""
