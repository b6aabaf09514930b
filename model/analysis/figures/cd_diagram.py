"""Critical-difference diagrams (Demšar 2006): a rank axis, one labelled stem per treatment, bars joining groups.

One layout (`layout`) feeds two writers: matplotlib (`draw`, `save` → PNG and PDF; stems and labels in the
treatment's colour, `model.analysis.style`) and TikZ (`tikz`, plain TikZ, no pgfplots, written by us). Rank 1
(best) is on the right, as in the paper's figure. Labels sit in two stacks, one row per treatment, so they cannot
overlap whatever k is. This module draws; it must not compute statistics.
"""
from dataclasses import dataclass
from pathlib import Path

from model import atomic
from model.analysis.figures.plotting import pyplot
from model.analysis.treatments import LABELS, LABELS_LATEX, colour, treatment_gid

ROW = 0.32      # vertical distance between label rows, inches (TikZ: the same in cm × 2.54)
WIDTH = 4.2     # length of the rank axis, inches
FONT = 9        # label font size, points


@dataclass(frozen=True)
class Stem:
    """A treatment's line from the axis (x, 0) down to its label row y, then out to the side; x in axis inches."""

    treatment: str
    rank: float
    x: float
    y: float
    side: str  # "left" or "right"


@dataclass(frozen=True)
class Layout:
    """Everything a writer needs, in inches: axis from x = 0 to WIDTH at y = 0, y growing downwards."""

    k: int
    ticks: list          # (x, rank) for ranks 1..k
    stems: list          # Stem, in label-row order per side
    bars: list           # (x0, x1, y): groups not significantly different
    cd: tuple | None     # (x0, x1, y, value): the critical-difference bar above the axis
    height: float        # y of the lowest label row


def _x(rank: float, k: int) -> float:
    return (k - rank) / (k - 1) * WIDTH  # rank k on the left, rank 1 on the right


def layout(average_ranks: dict, groups: list, cd: float | None = None) -> Layout:
    """Place axis, stems, group bars and CD bar. average_ranks: treatment -> mean rank in [1, k]."""
    ranks = dict(sorted(average_ranks.items(), key=lambda kv: (kv[1], kv[0])))
    k = len(ranks)
    if k < 2:
        raise ValueError(f"a CD diagram needs at least 2 treatments, got {list(ranks)}")
    lanes = []  # each lane: list of (x0, x1); a bar goes into the first lane where it overlaps nothing
    bars = []
    for group in groups:
        x0 = _x(max(ranks[t] for t in group), k) - 0.06
        x1 = _x(min(ranks[t] for t in group), k) + 0.06
        lane = next((i for i, used in enumerate(lanes) if all(x1 < a - 0.05 or x0 > b + 0.05 for a, b in used)),
                    len(lanes))
        if lane == len(lanes):
            lanes.append([])
        lanes[lane].append((x0, x1))
        bars.append((x0, x1, 0.35 + 0.18 * lane))
    first_row = 0.35 + 0.18 * len(lanes) + 0.25
    names = list(ranks)
    n_right = (k + 1) // 2                    # the better half hangs to the right, nearest the rank-1 end on top
    right, left = names[:n_right], names[n_right:][::-1]
    stems = [Stem(t, ranks[t], _x(ranks[t], k), first_row + i * ROW, "right") for i, t in enumerate(right)]
    stems += [Stem(t, ranks[t], _x(ranks[t], k), first_row + i * ROW, "left") for i, t in enumerate(left)]
    cd_bar = None
    if cd is not None and 0 < cd <= k - 1:
        cd_bar = (0.0, cd / (k - 1) * WIDTH, -0.45, cd)
    return Layout(k=k, ticks=[(_x(r, k), r) for r in range(1, k + 1)], stems=stems, bars=bars, cd=cd_bar,
                  height=first_row + (max(len(right), len(left)) - 1) * ROW)


def label(treatment: str, rank: float, latex: bool = False) -> str:
    """Display text of a stem: the paper's name for known ids (`T1`, `∅`, ...) and the mean rank."""
    names = LABELS_LATEX if latex else LABELS
    name = names.get(treatment, _latex_escape(treatment) if latex else treatment)
    return f"{name} ({rank:.2f})"


def draw(average_ranks: dict, groups: list, cd: float | None = None, title: str | None = None):
    """Return a matplotlib Figure of the diagram (stems' labels are the axes' `texts` with gid `label:<t>`)."""
    plt = pyplot()
    lay = layout(average_ranks, groups, cd)
    top = -0.8 if lay.cd else -0.45
    if title:
        top -= 0.3
    bottom = lay.height + 0.2
    fig = plt.figure(figsize=(WIDTH + 0.4, bottom - top))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-0.2, WIDTH + 0.2)
    ax.set_ylim(bottom, top)
    ax.axis("off")
    line = dict(color="black", lw=1.0, solid_capstyle="butt")
    ax.plot([0, WIDTH], [0, 0], **line)
    for x, r in lay.ticks:
        ax.plot([x, x], [0, -0.08], **line)
        ax.text(x, -0.12, str(r), ha="center", va="bottom", fontsize=FONT)
    for x in (lay.ticks[i][0] + (lay.ticks[i + 1][0] - lay.ticks[i][0]) / 2 for i in range(lay.k - 1)):
        ax.plot([x, x], [0, -0.04], **line)
    for s in lay.stems:
        end = WIDTH + 0.1 if s.side == "right" else -0.1
        ax.plot([s.x, s.x, end], [0, s.y, s.y], **{**line, "color": colour(s.treatment)},
                gid=treatment_gid(s.treatment))
        ax.text(end + (0.05 if s.side == "right" else -0.05), s.y, label(s.treatment, s.rank),
                ha="left" if s.side == "right" else "right", va="center", fontsize=FONT, gid=f"label:{s.treatment}",
                color=colour(s.treatment))
    for x0, x1, y in lay.bars:
        ax.plot([x0, x1], [y, y], color="black", lw=3.0, solid_capstyle="butt")
    if lay.cd:
        x0, x1, y, value = lay.cd
        ax.plot([x0, x1], [y, y], **line)
        ax.plot([x0, x0], [y - 0.05, y + 0.05], **line)
        ax.plot([x1, x1], [y - 0.05, y + 0.05], **line)
        ax.text((x0 + x1) / 2, y - 0.06, f"CD = {value:.2f}", ha="center", va="bottom", fontsize=FONT)
    if title:
        ax.text(WIDTH / 2, top + 0.05, title, ha="center", va="top", fontsize=FONT + 1, weight="bold")
    return fig


def save(fig, stem: str | Path) -> list[Path]:
    """Write `<stem>.png` (150 dpi) and `<stem>.pdf` atomically; return both paths; close the figure."""
    import io

    paths = []
    for ext, kwargs in (("png", {"dpi": 150}), ("pdf", {})):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, bbox_inches="tight", pad_inches=0.05, **kwargs)
        paths.append(atomic.write_bytes(Path(f"{stem}.{ext}"), buf.getvalue()))
    pyplot().close(fig)
    return paths


def _latex_escape(text: str) -> str:
    special = {"\\": r"\textbackslash{}", "_": r"\_", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(special.get(c, c) for c in text)


def tikz(average_ranks: dict, groups: list, cd: float | None = None, title: str | None = None) -> str:
    """The diagram as a bare `tikzpicture` (plain TikZ; `\\input` it inside a figure). Units: cm."""
    lay = layout(average_ranks, groups, cd)
    cm = 2.54

    def p(x, y):
        return f"({x * cm:.3f},{-y * cm:.3f})"

    out = ["% Critical-difference diagram (Demšar 2006): rank 1 = best, on the right; thick bars join treatments",
           "% whose mean ranks are not significantly different (Nemenyi). Needs \\usepackage{tikz}.",
           r"\begin{tikzpicture}[font=\small, line cap=butt]"]
    out.append(rf"\draw {p(0, 0)} -- {p(WIDTH, 0)};")
    for x, r in lay.ticks:
        out.append(rf"\draw {p(x, 0)} -- {p(x, -0.08)} node[above] {{{r}}};")
    for s in lay.stems:
        end = WIDTH + 0.1 if s.side == "right" else -0.1
        anchor = "west" if s.side == "right" else "east"
        out.append(rf"\draw {p(s.x, 0)} |- {p(end, s.y)} node[anchor={anchor}] {{{label(s.treatment, s.rank, True)}}};")
    for x0, x1, y in lay.bars:
        out.append(rf"\draw[line width=2pt] {p(x0, y)} -- {p(x1, y)};")
    if lay.cd:
        x0, x1, y, value = lay.cd
        out.append(rf"\draw[|-|] {p(x0, y)} -- node[above] {{CD = {value:.2f}}} {p(x1, y)};")
    if title:
        out.append(rf"\node[anchor=south, font=\small\bfseries] at {p(WIDTH / 2, -0.85 if lay.cd else -0.45)} "
                   rf"{{{_latex_escape(title)}}};")
    out.append(r"\end{tikzpicture}")
    return "\n".join(out) + "\n"


def write_all(average_ranks: dict, groups: list, cd: float | None, stem: str | Path,
              title: str | None = None) -> list[Path]:
    """Write `<stem>.png`, `<stem>.pdf` and `<stem>.tex`; return the paths."""
    paths = save(draw(average_ranks, groups, cd, title), stem)
    paths.append(atomic.write_text(Path(f"{stem}.tex"), tikz(average_ranks, groups, cd, title)))
    return paths
