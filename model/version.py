"""This package's version, written in one place: `pyproject.toml`'s `[project] version`.

An installed package (`pip install .`, editable or not) reads it from its distribution metadata; a checkout that was
never installed (`PYTHONPATH=.`) reads it from the `pyproject.toml` beside `model/`. Every command prints it with
`--version`, and every run records it in `DONE.json` (`model.runs.provenance`).
"""
import importlib.metadata
import tomllib
from pathlib import Path

DISTRIBUTION = "decorrelating-neurons"  # pyproject.toml's [project] name
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"  # a checkout's; absent from an installed wheel


def version() -> str:
    """The version string, e.g. `0.1.0`; `unknown` when neither the metadata nor a checkout's pyproject.toml says."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"
