"""Reading one statistics folder's `statistics.json` and `details.json` (written by `model.analysis.outputs`), checked.

Another process writes these files, and a user may edit, truncate or empty them: whatever they hold, `read` returns
what the report's sections rely on, or raises one `DataError` naming the file, the field and what was expected
(never a `KeyError` or `JSONDecodeError` from deep inside a section). The checks follow the contract in
docs/architecture.md ("Statistics folder"). Must not write.
"""
import json
import math
from pathlib import Path

from model.errors import DataError
from model.runs.run_folder import read_regular

STATISTICS, DETAILS = "statistics.json", "details.json"
FRIEDMAN_KEYS = ("chi2", "chi2_p", "iman_davenport_f", "iman_davenport_p")
REQUIRED = ("chi2", "chi2_p")  # the F approximation and its p are null when every network ranks alike
CELL_NUMBERS = ("weight", "val_accuracy", "test_accuracy")


def _object(path: Path, required: bool) -> dict:
    data = read_regular(path)
    if data is None:
        if required or path.exists() or path.is_symlink():
            raise DataError(f"{path}: missing or not a regular file; rerun extract_statistics.py")
        return {}
    try:
        value = json.loads(data)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; expected the JSON extract_statistics.py writes") from None
    except ValueError as err:
        raise DataError(f"{path}: does not parse as JSON ({err.msg} at line {err.lineno} column {err.colno}; "
                        "half written?); rerun extract_statistics.py") from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: holds a JSON {type(value).__name__}; expected an object")
    return value


def _is_number(value, nullable: bool = False) -> bool:
    if value is None:
        return nullable
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _fail(path: Path, field: str, value, expected: str):
    raise DataError(f"{path}: field {field} = {json.dumps(value)[:80]}: expected {expected}")


def check_statistics(st: dict, path: Path) -> dict:
    """`st` (statistics.json's object) when it holds the contract's keys with the right types; else `DataError`.
    With one network (no ranks) `friedman`, `average_ranks`, `nemenyi_p` and `critical_difference` are null."""
    missing = [k for k in ("n_networks", "treatments", "average_ranks", "friedman", "nemenyi_p", "critical_difference",
                           "alpha", "selected") if k not in st]
    if missing:
        raise DataError(f"{path}: lacks key(s) {', '.join(missing)}; expected the statistics.json "
                        "extract_statistics.py writes (rerun it)")
    if not _is_count(st["n_networks"]):
        _fail(path, "n_networks", st["n_networks"], "a whole number")
    treatments = st["treatments"]
    if not isinstance(treatments, list) or not treatments or not all(isinstance(t, str) for t in treatments):
        _fail(path, "treatments", treatments, "a non-empty list of names")
    if not _is_number(st["alpha"]):
        _fail(path, "alpha", st["alpha"], "a number")
    if st["friedman"] is not None:
        _check_ranked(st, treatments, path)
    _check_selected(st["selected"], path)
    paired = st.get("paired_tests", {})
    if not isinstance(paired, dict) or not all(isinstance(t, dict) and all(
            _is_number(v, True) or (isinstance(v, list) and all(_is_number(x, True) for x in v)) for v in t.values())
            for t in paired.values()):
        _fail(path, "paired_tests", paired, "treatment → {n_pairs, p_holm, ...: numbers or null}")
    for key, value in paired.items():
        ci = value.get("p_improvement_ci95", [None, None])
        if not _is_count(value.get("n_pairs", 0)) or not isinstance(ci, list) or len(ci) != 2:
            _fail(path, f"paired_tests.{key}", value, "n_pairs a whole number, p_improvement_ci95 [low, high]")
    if st.get("baseline_selection", "paper") not in ("paper", "matched"):
        _fail(path, "baseline_selection", st["baseline_selection"], "'paper' or 'matched'")
    return st


def _check_ranked(st: dict, treatments: list, path: Path) -> None:
    """The ranks, the Friedman record, the Nemenyi p-values and the CD of an analysis of 2 or more networks."""
    friedman = st["friedman"]
    if not isinstance(friedman, dict) or any(k not in friedman or not _is_number(friedman[k], k not in REQUIRED)
                                             for k in FRIEDMAN_KEYS):
        _fail(path, "friedman", friedman, "an object of chi2, chi2_p (numbers), iman_davenport_f, iman_davenport_p "
              "(numbers, or null when undefined)")
    if "exact_p" in friedman and not (
            _is_number(friedman["exact_p"], True) and _is_number(friedman.get("exact_min_p"), True)
            and isinstance(friedman.get("exact_method"), str) and _is_count(friedman.get("exact_draws"))
            and (friedman.get("exact_seed") is None or _is_count(friedman.get("exact_seed")))):
        _fail(path, "friedman", friedman, "exact_p, exact_min_p (numbers or null), exact_method (text), "
              "exact_draws (a whole number), exact_seed (a whole number or null)")
    ranks = st["average_ranks"]
    if not isinstance(ranks, dict) or any(not _is_number(ranks.get(t)) for t in treatments):
        _fail(path, "average_ranks", ranks, "a number per treatment")
    p = st["nemenyi_p"]
    if not isinstance(p, dict) or any(not isinstance(p.get(a), dict) or any(
            b not in p[a] or not _is_number(p[a][b], True) for b in treatments) for a in treatments):
        _fail(path, "nemenyi_p", p, "treatment → treatment → p-value (or null)")
    if not _is_number(st["critical_difference"]):
        _fail(path, "critical_difference", st["critical_difference"], "a number")


def _check_selected(selected, path: Path) -> None:
    if not isinstance(selected, dict):
        _fail(path, "selected", selected, "network → treatment → selected cell")
    for network, cells in selected.items():
        if not isinstance(cells, dict):
            _fail(path, f"selected.{network}", cells, "treatment → selected cell")
        for treatment, cell in cells.items():
            where = f"selected.{network}.{treatment}"
            if not isinstance(cell, dict):
                _fail(path, where, cell, "an object with weight, val_accuracy, test_accuracy, n_seeds")
            for key in CELL_NUMBERS:
                if not _is_number(cell.get(key)):
                    _fail(path, f"{where}.{key}", cell.get(key), "a number")
            if not _is_count(cell.get("n_seeds")) or cell["n_seeds"] < 1:
                _fail(path, f"{where}.n_seeds", cell.get("n_seeds"), "a whole number >= 1")
            for key in ("val_std", "test_std"):
                if not _is_number(cell.get(key), nullable=True):
                    _fail(path, f"{where}.{key}", cell.get(key), "a number or null")
            ci = cell.get("test_ci95", [None, None])
            if not isinstance(ci, list) or len(ci) != 2 or not all(_is_number(v, True) for v in ci):
                _fail(path, f"{where}.test_ci95", ci, "[low, high]")
            for key in ("seed", "budget"):
                if key in cell and not _is_count(cell[key]):
                    _fail(path, f"{where}.{key}", cell[key], "a whole number")


def check_details(det: dict, path: Path) -> dict:
    """`det` (details.json's object; every key optional) when the keys the report reads have the right types."""
    groups = det.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, list) and all(isinstance(t, str) for t in g)
                                               for g in groups):
        _fail(path, "groups", groups, "a list of lists of treatment names")
    dropped = det.get("dropped_networks") or {}
    if not isinstance(dropped, dict) or not all(isinstance(ts, list) and all(isinstance(t, str) for t in ts)
                                                for ts in dropped.values()):
        _fail(path, "dropped_networks", dropped, "network → list of treatment names")
    q = det.get("q_alpha")
    if q is not None and (isinstance(q, bool) or not isinstance(q, (int, float))):  # NaN with one network
        _fail(path, "q_alpha", det.get("q_alpha"), "a number")
    if not isinstance(det.get("nemenyi_p_variant", ""), str):
        _fail(path, "nemenyi_p_variant", det.get("nemenyi_p_variant"), "text")
    return det


def read(folder: str | Path) -> tuple[dict, dict]:
    """(statistics.json, details.json) of the statistics folder `folder`, checked; details.json may be absent
    ({}). `DataError` naming the file for anything else."""
    folder = Path(folder)
    st = check_statistics(_object(folder / STATISTICS, required=True), folder / STATISTICS)
    det = check_details(_object(folder / DETAILS, required=False), folder / DETAILS)
    return st, det
