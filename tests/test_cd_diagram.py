"""CD diagrams: legible for 6–8 treatments (no two texts overlap), bars where groups are, a well-formed TikZ."""
import itertools

import matplotlib
import numpy as np
import pytest

from model.analysis.figures import cd_diagram

matplotlib.use("Agg")

CASES = {
    6: ({"none": 4.1, "t1": 2.0, "t2": 2.05, "l1": 4.3, "l2": 3.9, "corr": 4.65},
        [["t1", "t2", "l2"], ["l2", "none", "l1", "corr"]]),
    7: ({"none": 4.0, "t1": 1.5, "t2": 1.6, "l1": 5.9, "l2": 6.0, "corr": 4.0, "decov": 4.0},
        [["t1", "t2"], ["none", "corr", "decov", "l1", "l2"]]),
    8: ({"none": 5.1, "t1": 2.0, "t2": 2.05, "l1": 5.3, "l2": 3.9, "corr": 6.65, "decov": 4.5,
         "a_long_regulariser_name": 4.5},
        [["t1", "t2", "l2"], ["l2", "decov", "a_long_regulariser_name", "none", "l1"], ["none", "l1", "corr"]]),
}


@pytest.mark.parametrize("k", sorted(CASES))
def test_texts_do_not_overlap(k, tmp_path):
    ranks, groups = CASES[k]
    fig = cd_diagram.draw(ranks, groups, cd=1.9, title="combined")
    renderer = fig.canvas.get_renderer()
    texts = fig.axes[0].texts
    labels = [t for t in texts if (t.get_gid() or "").startswith("label:")]
    assert sorted(t.get_gid()[6:] for t in labels) == sorted(ranks)
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), f"{a!r} overlaps {b!r}"
    paths = cd_diagram.save(fig, tmp_path / f"cd{k}")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    image = matplotlib.image.imread(paths[0])
    assert image.shape[1] > image.shape[0] > 100 and np.unique(image[..., 0]).size > 2  # a drawing, not blank


def test_layout_places_the_best_on_the_right_and_stacks_without_crossings():
    ranks, groups = CASES[6]
    lay = cd_diagram.layout(ranks, groups, cd=1.5)
    assert max(lay.ticks)[1] == 1 and min(lay.ticks)[1] == 6  # rank 1 at the right end of the axis
    right = [s for s in lay.stems if s.side == "right"]
    left = [s for s in lay.stems if s.side == "left"]
    assert [s.treatment for s in right] == ["t1", "t2", "l2"] and [s.treatment for s in left] == ["corr", "l1",
                                                                                                   "none"]
    for side in (right, left):  # the stem nearer its end of the axis takes the higher row: no line crosses
        xs = [s.x for s in side]
        assert xs == sorted(xs, reverse=side is right)
        assert [s.y for s in side] == sorted(s.y for s in side)
    assert len(lay.bars) == 2 and lay.bars[0][2] != lay.bars[1][2]  # overlapping bars go in separate lanes
    assert lay.cd[3] == 1.5


def test_tikz_is_plain_and_escaped():
    ranks, groups = CASES[8]
    tex = cd_diagram.tikz(ranks, groups, cd=2.0, title="block_x")
    assert tex.count(r"\begin{tikzpicture}") == 1 and tex.rstrip().endswith(r"\end{tikzpicture}")
    assert r"a\_long\_regulariser\_name (4.50)" in tex and r"block\_x" in tex and r"$\ell_1$" in tex
    assert tex.count("line width=2pt") == 3 and "CD = 2.00" in tex
    assert "pgfplots" not in tex and tex.count("{") == tex.count("}")


def test_needs_two_treatments():
    with pytest.raises(ValueError, match="at least 2 treatments"):
        cd_diagram.layout({"t1": 1.0}, [])
