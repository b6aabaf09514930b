"""Reading the pipeline's own CSV tables (accuracies, measures) with one clear error per problem.

Only the shared checks live here (missing file, empty file, missing columns); each table's module validates its
values. Must not write anything.
"""
from pathlib import Path

import pandas as pd

from model.errors import DataError


def read_csv(path: str | Path, columns, kind: str, **read_options) -> pd.DataFrame:
    """Read the CSV at `path`, which must have `columns` (more may follow); `kind` names the table in errors
    ("accuracies CSV"); `read_options` go to `pandas.read_csv`."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, **read_options)
    except FileNotFoundError:
        raise DataError(f"{path}: no such {kind}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file; expected a header with columns {','.join(columns)}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise DataError(f"{path}: cannot read the {kind} ({' '.join(str(err).split())}); expected a CSV file with "
                        f"columns {','.join(columns)}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected columns {','.join(columns)} first")
    return frame
