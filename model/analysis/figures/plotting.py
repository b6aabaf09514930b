"""Matplotlib for files only: the headless backend and an atomic PNG writer shared by every figure we draw.

Must not know what any figure shows.
"""
import io
import re
from pathlib import Path

from model import atomic


def pyplot():
    """`matplotlib.pyplot` on the non-interactive Agg backend (imported lazily: matplotlib is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | Path, dpi: int = 110) -> Path:
    """Write `fig` as a PNG (tight bounding box) atomically to `path`, close it and return the path."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return atomic.write_bytes(path, buf.getvalue())


def slug(name: str) -> str:
    """A network name as a file-name part: `pgdl/task1_v4/20` -> `pgdl_task1_v4_20`."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
