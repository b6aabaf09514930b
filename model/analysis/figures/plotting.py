"""Matplotlib for files only: the headless backend, an atomic PNG writer and the sizes shared by every figure we draw.

Sizes are chosen for the report page (`model.analysis.html`): at a 1280 px window its content column is `PAGE_PX`
wide, so a figure `PAGE_INCHES` wide at `DPI` is shown at its own size, and text of `TEXT_PT` points is then 16.8 px,
at least the page's 16 px body text. `save_png` records the smallest tick label of the figure, in the PNG's pixels,
as the PNG text field `tick_label_px` (what the report's browser test checks against the rendered body text).
Must not know what any figure shows.
"""
import io
import re
from pathlib import Path

from model import atomic

DPI = 110
PAGE_PX = 1036  # the report's content width at a 1280 px window: main's max-width 1100 px minus 2 × 2 em padding
PAGE_INCHES = PAGE_PX / DPI
TEXT_PT = 11  # ticks, axis labels, legends and notes: 16.8 px at DPI, as large as the page's 16 px body text
TITLE_PT = 12.5
PANELS_PER_ROW = 3  # panels of one figure wrap into rows of at most this many


def grid(n: int) -> tuple[int, int]:
    """(rows, columns) for `n` panels in rows of at most `PANELS_PER_ROW`."""
    columns = max(1, min(n, PANELS_PER_ROW))
    return -(-max(1, n) // columns), columns


def style(plt) -> None:
    """The shared font sizes as matplotlib defaults (a figure may still set a larger size)."""
    plt.rcParams.update({"font.size": TEXT_PT, "axes.titlesize": TITLE_PT, "axes.labelsize": TEXT_PT,
                         "xtick.labelsize": TEXT_PT, "ytick.labelsize": TEXT_PT, "legend.fontsize": TEXT_PT,
                         "legend.title_fontsize": TEXT_PT, "figure.titlesize": TITLE_PT + 1})


def pyplot():
    """`matplotlib.pyplot` on the non-interactive Agg backend (imported lazily: matplotlib is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style(plt)
    return plt


def tick_label_px(fig, dpi: float = DPI) -> float | None:
    """The smallest font size, in pixels at `dpi`, of the figure's visible tick labels (None when it has none)."""
    fig.canvas.draw()
    sizes = [label.get_fontsize() for ax in fig.axes if ax.get_visible()
             for axis in (ax.xaxis, ax.yaxis) for label in axis.get_ticklabels() if label.get_visible()
             and label.get_text()]
    return min(sizes) * dpi / 72 if sizes else None


def save_png(fig, path: str | Path, dpi: int = DPI) -> Path:
    """Write `fig` as a PNG (tight bounding box) atomically to `path`, with its smallest tick label size in pixels
    as the text field `tick_label_px`; close it and return the path."""
    buf = io.BytesIO()
    smallest = tick_label_px(fig, dpi)
    metadata = {} if smallest is None else {"tick_label_px": f"{smallest:.2f}"}
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata=metadata)
    pyplot().close(fig)
    return atomic.write_bytes(path, buf.getvalue())


def slug(name: str) -> str:
    """A network name as a file-name part: `pgdl/task1_v4/20` -> `pgdl_task1_v4_20`."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
