"""The commands, one module per command, each `main(argv=None) -> int`: argument parsing and printing over the
library. `scripts/*.py`, `accuracies/collect_accuracies.py` and `extract_statistics.py` are thin entry points that
call them, and the installed package has each as a console script (`pyproject.toml`, `[project.scripts]`)."""
