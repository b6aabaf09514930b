"""The report's provenance block: which code, devices and library versions produced the runs of each analysis.

`provenance_section(frame) -> Markdown`, from an accuracies frame (`model.analysis.accuracies`; its provenance
columns `commit`, `dirty`, `host`, `device`, `versions` may be missing or empty for runs recorded before them).
An analysis is one block, or `combined` (every run): the unit whose runs are ranked against each other, so one
whose runs come from more than one commit (a dirty tree counts as its own), device or set of versions is flagged.
"""
import pandas as pd

from model.analysis.statistics import natural_key
from model.analysis.tables import to_markdown

ASPECTS = ("commit", "device", "versions")  # what must agree within an analysis
UNKNOWN = "unknown"
FLAG = "**differs**"


def _is_true(value) -> bool:
    return value is True or str(value).strip().lower() == "true"


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """The column as strings, `unknown` where missing or empty; commits shortened to 12 hex, `+dirty` marked."""
    if name not in frame:
        return pd.Series(UNKNOWN, index=frame.index)
    values = frame[name].map(lambda v: UNKNOWN if pd.isna(v) or str(v).strip() == "" else str(v))
    if name == "commit":
        dirty = frame["dirty"].map(_is_true) if "dirty" in frame else pd.Series(False, index=frame.index)
        values = values.where(values == UNKNOWN, values.str[:12]) + dirty.map({True: "+dirty", False: ""})
    return values


def _seen(values: pd.Series) -> str:
    """`a (3 runs); b (1 run)`, most frequent first, prefixed by the flag when more than one value is seen."""
    counts = values.value_counts(sort=True)
    text = "; ".join(f"{value} ({n} run{'s' if n != 1 else ''})" for value, n in counts.items())
    return f"{FLAG}: {text}" if len(counts) > 1 else text


def provenance_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per analysis (each block, then `combined`; only `combined` for one block): runs, known hosts, and per
    aspect (`ASPECTS`) the values seen with their run counts."""
    columns = {name: _column(frame, name) for name in (*ASPECTS, "host")}
    blocks = sorted(frame["block"].astype(str).unique(), key=natural_key)
    groups = [(f"block {b}", frame["block"].astype(str) == b) for b in blocks] if len(blocks) > 1 else []
    groups.append(("combined", pd.Series(True, index=frame.index)))
    rows = {}
    for name, mask in groups:
        hosts = columns["host"][mask]
        rows[name] = {"runs": int(mask.sum()), "hosts": hosts[hosts != UNKNOWN].nunique(),
                      **{aspect: _seen(columns[aspect][mask]) for aspect in ASPECTS}}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "analysis"
    return table


def provenance_section(frame: pd.DataFrame) -> str:
    """Markdown: a `## Provenance` heading, a line naming the analyses whose runs disagree (if any), the table."""
    table = provenance_table(frame)
    differ = [name for name, row in table.iterrows() if any(str(row[a]).startswith(FLAG) for a in ASPECTS)]
    lines = ["## Provenance", "",
             "What produced the runs, from each run's DONE.json: the git commit (`+dirty`: uncommitted changes to "
             "tracked files), the device and the library versions; `unknown` for runs that did not record it.", ""]
    if differ:
        lines += [f"{FLAG} within {', '.join(differ)}: the runs ranked against each other there come from more "
                  "than one commit, device or set of versions, so their differences may not be the regularisers' "
                  "alone.", ""]
    lines.append(to_markdown(table))
    unknown = [name for name, row in table.iterrows() if any(UNKNOWN in str(row[a]) for a in ASPECTS)]
    if unknown:
        lines.append(f"`unknown` in {', '.join(unknown)}: runs finished before provenance was recorded, or outside "
                     "a git checkout.\n")
    return "\n".join(lines)
