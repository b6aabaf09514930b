"""Network names → model + data. The one place that knows which zoo families exist.

A network is named `family/id` (`digits/0`, `mnist/2`, `pgdl/task1_v4/20`). Each family is a module of this package
exposing `network(ident: str, data_root: Path, profile: str) -> Network`, imported lazily so that, e.g., the digits
zoo never imports h5py.
"""
import importlib
from pathlib import Path

from model.errors import SpecError
from model.zoo.network import Network

FAMILIES = {"digits": "model.zoo.digits", "mnist": "model.zoo.mnist", "pgdl": "model.zoo.pgdl"}


def get_network(name: str, data_root: str | Path = "data", profile: str = "corrected") -> Network:
    """Resolve `family/id` to a `Network`; a bad name raises `SpecError` listing the known families."""
    family, _, ident = name.partition("/")
    if family not in FAMILIES or not ident:
        raise SpecError(f"network {name!r}: expected 'family/id' with family one of {sorted(FAMILIES)}")
    module = importlib.import_module(FAMILIES[family])
    return module.network(ident, Path(data_root), profile)
