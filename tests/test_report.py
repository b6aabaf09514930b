"""The report page from synthetic run folders: every section, every linked image, Table 1 beside our numbers."""
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_done

from model.analysis import accuracies, outputs, report, treatments
from model.analysis.figures import accuracy_vs_weight
from model.errors import DataError
from model.measures import report_section as measures_analysis
from model.runs import run_folder

ROOT = Path(__file__).resolve().parents[1]
TREATMENTS = ("none", "t1", "t2", "corr")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Run folders for mnist/0..2 × 4 treatments × weights {1e-4, 0.1} × 2 seeds, with history.csv; one failure."""
    root = tmp_path_factory.mktemp("sweep")
    rng = np.random.default_rng(0)
    for net in ("mnist/0", "mnist/1", "mnist/2"):
        for i, treatment in enumerate(TREATMENTS):
            for weight in ((0.0,) if treatment == "none" else (1e-4, 0.1)):
                for seed in (0, 1):
                    acc = 0.8 + 0.02 * i + 0.05 * weight + 0.01 * rng.random()
                    applied = 0.0 if (net, treatment) == ("mnist/0", "t2") else 1.0  # T2 never acted on mnist/0
                    activity = None if treatment == "none" else {"applied_fraction": applied}
                    run = write_done(root / "runs", net, treatment, weight, seed, acc, acc - 0.01,
                                     regulariser_activity=activity)
                    pd.DataFrame({"epoch": [1, 2, 3], "loss": [1.0, 0.7, 0.6], "accuracy": [0.5, 0.7, 0.8],
                                  "val_accuracy": [0.5, 0.6, acc], "reg": [0.1, 0.05, 0.02]}).to_csv(
                        run / run_folder.HISTORY, index=False)
    failed = root / "runs/mnist/2/t1/1.0/seed_0"
    failed.mkdir(parents=True)
    run_folder.write_failed(failed, RuntimeError("out of memory"))
    accuracies.write(accuracies.collect(root / "runs"), root / "accuracies.csv")
    outputs.extract(root / "accuracies.csv", root / "statistics")
    return root


@pytest.fixture(scope="module")
def built(sweep):
    """The synthetic sweep's report with a measures CSV, built once; the figures it saved, recorded."""
    with pytest.MonkeyPatch.context() as mp:
        figures = _figures(mp)
        path = report.build(sweep / "accuracies.csv", sweep / "statistics", sweep / "report", title="synthetic sweep",
                            measures_csv=_measures_csv(sweep, sweep / "measures.csv"),
                            extra_sections=(measures_analysis.section,))
    return types.SimpleNamespace(path=path, dir=path.parent, text=path.read_text(), figures=figures)


def test_report_has_every_section_and_image(sweep, built):
    text = built.text
    for heading in ("# synthetic sweep", "## Summary", "## Runs", "## combined", "### Average ranks",
                    "### Test accuracy at the selected weight", "### Nemenyi p-values",
                    "### Reproduced beside the paper's Table 1", "### Selected weights", "## Accuracy against weight",
                    "## Training curves", "## Neural persistence and deep graph persistence", "## Provenance"):
        assert heading in text, heading
    assert "**1 run not finished** (left out)" in text and "out of memory" in text
    assert text.index("## Summary") < text.index("## Runs") < text.index("## combined")
    # the synthetic accuracies rank C > T2 > T1 > ∅ on every network
    assert "**[combined](#combined).** The treatments do not all rank alike" in text
    assert "Nemenyi separates 1 pair: C over ∅ (p = 0.02)" in text and "cells hold 2 seeds" in text
    assert "**1 run did not finish** and is left out ([runs](#runs))." in text
    # spread: 2 seeds per cell, said in the table heading and in each cell
    assert "### Test accuracy at the selected weight (mean ± standard deviation over 2 seeds;" in text
    assert re.search(r"\| T1 \| (\*\*)?0\.\d{3} ± 0\.\d{3}", text)
    assert "| treatment | ∅ | T1 | T2 | C |" in text  # Nemenyi table: paper labels on both axes
    assert "mean over 2 seeds (bars: standard deviation over seeds)" in text
    assert "Mean ± standard deviation over the n runs of each row (its networks × seeds" in text
    assert "NP variant: biases left out" in text
    # the regulariser's activity: a line at the top, and the cells × activity table with the flagged cells
    assert text.splitlines()[2].startswith("**Warning: in 1 selected cell(s) the regulariser acted in fewer than 50 %")
    assert "mnist/0 T2 (ω = 0.1: 0 %)" in text.splitlines()[2]
    assert "### Did the regulariser act? (combined)" in text
    assert "| T2 ω = 0.1 | **0 %!*** | 100 %* | 100 %* |" in text
    assert "Selected cells under 50 %: mnist/0 T2 (ω = 0.1, 0 %)." in text
    assert "Iman–Davenport F =" in text and "**" in text  # numbers and the bold best per network
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert "## mnist" not in text  # a single block: its analysis is the combined one, shown once
    # CD diagram, expected best of n, accuracy-vs-weight and curves per network, 2 measures figures
    assert len(images) == 1 + 1 + 3 + 3 + 2
    for image in images:
        assert (built.dir / image).stat().st_size > 1000
    # Table 1 beside ours: the paper's MNIST 1 baseline 0.501 is quoted next to the reproduced value
    assert re.search(r"\| ∅ \| 0\.\d{3} \(0\.929\) \| 0\.\d{3} \(0\.501\) \| 0\.\d{3} \(0\.636\) \|", text)
    with pytest.raises(DataError, match="--force"):
        report.build(sweep / "accuracies.csv", sweep / "statistics", built.dir)


def test_measures_section_is_included_when_a_measures_csv_exists(sweep, tmp_path, monkeypatch):
    calls = []

    def measures_section(measures_csv, accuracies_csv, out_dir):
        calls.append((Path(measures_csv).name, Path(accuracies_csv).name, Path(out_dir)))
        return "## Neural persistence\n\nfrom the measures engineer"

    monkeypatch.setattr(measures_analysis, "measures_section", measures_section)
    (tmp_path / "measures.csv").write_text("x\n1\n")
    inp = report.read_inputs(sweep / "accuracies.csv", sweep / "statistics", tmp_path / "r",
                             measures_csv=tmp_path / "measures.csv")
    assert "## Neural persistence" in "\n".join(measures_analysis.section(inp))
    assert calls == [("measures.csv", "accuracies.csv", tmp_path / "r")]
    with pytest.raises(DataError, match="no such measures CSV"):
        report.build(sweep / "accuracies.csv", sweep / "statistics", tmp_path / "r2",
                     measures_csv=tmp_path / "missing.csv")


def test_without_run_folders_there_are_no_curves(sweep, tmp_path):
    frame = pd.read_csv(sweep / "accuracies.csv").drop(columns="run_dir")
    frame.to_csv(tmp_path / "accuracies.csv", index=False)
    inp = report.read_inputs(tmp_path / "accuracies.csv", sweep / "statistics", tmp_path / "r")
    assert report.training_curves_section(inp) == []


def test_report_cli(sweep, tmp_path):
    cmd = [sys.executable, str(ROOT / "scripts/make_report.py"), "--accuracies", str(sweep / "accuracies.csv"),
           "--statistics", str(sweep / "statistics"), "--out", str(tmp_path / "r")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"report: {tmp_path / 'r' / 'report.md'}"
    empty = subprocess.run(cmd[:5] + [str(tmp_path), "--out", str(tmp_path / "r3")], capture_output=True, text=True)
    assert empty.returncode == 2 and "run extract_statistics.py first" in empty.stderr


def test_tables_bold_best_per_network_with_ties_and_escape_latex():
    from model.analysis import statistics, tables

    matrix = pd.DataFrame({"none": [0.9291, 0.5], "t1": [0.9289, 0.547], "my_reg": [0.91, 0.547]},
                          index=["mnist/0", "net_b"])
    frame = pd.DataFrame([{"block": "b", "network": n, "regulariser": t, "weight": 0.0 if t == "none" else 0.1,
                           "seed": 0, "val_accuracy": matrix.loc[n, t], "test_accuracy": matrix.loc[n, t]}
                          for n in matrix.index for t in matrix.columns])
    table, bold = tables.accuracy_table(statistics.analyse(frame, "b"))
    # 0.9291 and 0.9289 both print as 0.929: both bold, as in the paper's rounded Table 1
    assert bold.to_dict() == {"mnist/0": {"none": True, "t1": True, "my_reg": False},
                              "net_b": {"none": False, "t1": True, "my_reg": True}}
    tex = tables.to_latex(table, bold, row_labels={"none": r"$\emptyset$"})
    assert r"$\emptyset$ & \textbf{0.929} & 0.500 \\" in tex and r"my\_reg & 0.910 & \textbf{0.547} \\" in tex
    assert r"net\_b" in tex and tex.startswith(r"\begin{tabular}{lrr}")
    md = tables.to_markdown(tables.labelled(table), bold)
    assert "| ∅ | **0.929** | 0.500 |" in md


def _figures(monkeypatch):
    """Record every figure the report and the measures section save (before they are closed)."""
    from model.analysis.figures import plotting

    figures = []
    save_png = plotting.save_png

    def recording(fig, path, *args, **kwargs):
        figures.append((Path(path).name, fig))
        return save_png(fig, path, *args, **kwargs)

    monkeypatch.setattr(plotting, "save_png", recording)
    return figures


def _artist_colours(fig) -> list[tuple[str, str]]:
    """(treatment, hex colour) of every artist tagged with a treatment gid (or a CD diagram label)."""
    from matplotlib import colors
    from matplotlib.collections import Collection

    out = []
    for artist in fig.findobj(lambda a: str(a.get_gid() or "").startswith(("treatment:", "label:"))):
        treatment = str(artist.get_gid()).split(":", 1)[1]
        if isinstance(artist, Collection):  # scatter points (their face, or the edge of unfilled markers)
            face, edge = artist.get_facecolor(), artist.get_edgecolor()
            rgba = face[0] if len(face) and face[0][3] > 0 else edge[0] if len(edge) else None
        else:  # lines and texts
            rgba = artist.get_color()
        if rgba is not None:
            out.append((treatment, colors.to_hex(rgba)))
    return out


def _measures_csv(sweep, path):
    """A measures CSV for the synthetic sweep's runs (made-up NP/DGP values), read back by the measures section."""
    from model.measures import measures_table

    acc = pd.read_csv(sweep / "accuracies.csv")
    rows = []
    for i, r in enumerate(acc.itertuples()):
        for m, v in (("np_mean_normalised", 0.3 + 0.01 * i), ("np_total", 1.0 + i), ("dgp_normalised", 0.5 - 0.01 * i),
                     ("dgp", 2.0)):
            rows.append(dict(run_id=r.task_id, measure=m, value=v, layer="", source="run", block=r.block,
                             network=r.network, regulariser=r.regulariser, weight=r.weight, seed=r.seed,
                             train_accuracy=r.val_accuracy, test_accuracy=r.test_accuracy))
    measures_table.write(pd.DataFrame(rows)[measures_table.COLUMNS], path)
    return path


def test_one_colour_and_one_label_per_treatment_in_every_figure(sweep, built):
    import json

    from model.analysis.figures import cd_diagram

    figures = list(built.figures)
    st = json.loads((sweep / "statistics/combined/statistics.json").read_text())
    figures.append(("cd", cd_diagram.draw(st["average_ranks"], [], st["critical_difference"])))
    names = {name for name, _ in figures}
    assert {"acc_vs_weight_mnist_0.png", "curves_mnist_0.png", "measures_by_weight.png", "measures_vs_gap.png",
            "cd"} <= names
    seen = {}
    for name, fig in figures:
        tagged = _artist_colours(fig)
        assert tagged, f"{name}: no artist is tagged with its treatment"
        for treatment, hex_colour in tagged:
            seen.setdefault(treatment, set()).add(hex_colour)
        # every legend and title a person reads uses the paper's labels, never a raw id
        texts = {t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))}
        assert not texts & {"corr", "t1", "t2", "none", "l1", "l2", "decov"}, (name, texts & {"corr", "t1"})
    assert set(seen) == set(TREATMENTS)
    assert seen == {t: {treatments.colour(t).lower()} for t in TREATMENTS}
    assert len({treatments.colour(t) for t in treatments.COLOURS}) == len(treatments.COLOURS)


def test_accuracy_panels_have_their_own_axis_mark_collapsed_points_and_say_1_seed(sweep, tmp_path, monkeypatch):
    frame = accuracies.read(sweep / "accuracies.csv")
    one_seed = frame[frame["seed"] == 0].copy()
    collapsed = (one_seed["network"] == "mnist/0") & (one_seed["regulariser"] == "t2") & (one_seed["weight"] == 0.1)
    one_seed.loc[collapsed, ["val_accuracy", "test_accuracy"]] = 0.12
    figures = _figures(monkeypatch)
    accuracy_vs_weight.plot(one_seed, "mnist/0", tmp_path)
    accuracy_vs_weight.plot(frame, "mnist/1", tmp_path)
    (_, fig1), (_, fig2) = figures
    texts1 = [t.get_text() for ax in fig1.axes for t in ax.texts]
    assert texts1.count("1 seed: no spread") == 3 and "val 0.12\ntest 0.12" in texts1
    panel = {ax.get_title(): ax for ax in fig1.axes}
    assert panel["T2"].get_ylim()[0] > 0.5  # zoomed on the points that did not collapse
    # the baseline's spread over its seeds is drawn (a grey band per accuracy) and said
    assert [t.get_text() for ax in fig2.axes for t in ax.texts].count("± std, 2 seeds; grey: ∅ ± std, 2 seeds") == 3
    bands = [p for ax in fig2.axes for p in ax.patches if str(p.get_gid()).startswith("baseline_band:")]
    assert len(bands) == 2 * 3  # validation and test, in each of the 3 panels
    assert not [p for ax in fig1.axes for p in ax.patches if str(p.get_gid()).startswith("baseline_band:")]


def test_report_html_is_self_contained_with_a_table_of_contents(built):
    page = (built.dir / "report.html").read_text()
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(sources) == 10 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(?:src|href)="(?!#|data:)', page)  # nothing to fetch: only in-page links and data URIs
    toc = page[page.index('<nav class="toc">'):page.index("</nav>")]
    for anchor in ("summary", "runs", "combined", "accuracy-against-weight", "training-curves"):
        assert f'href="#{anchor}"' in toc and f'id="{anchor}"' in page
    for target in re.findall(r'href="#([^"]+)"', page):
        assert f'id="{target}"' in page, target


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


# added to a copy of the page by the test only: each image's shown width / its own width, and the body text's size
MEASURE = """<script>window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  document.body.setAttribute("data-image-scales",
    imgs.map(function (i) { return (i.clientWidth / i.naturalWidth).toFixed(4); }).join(" "));
  document.body.setAttribute("data-body-font-px", parseFloat(getComputedStyle(document.body).fontSize));
});</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed and could not be (.ci/run installs Debian's "
                                            "`chromium` with apt-get when it is missing)")
def test_report_html_in_headless_chromium(built, tmp_path, record_property):
    """Open report.html in a real browser at 1280 px: every image decodes, the expected sections exist, every
    figure's tick labels are shown at least as large as the body text, a screenshot is taken."""
    import base64
    import io

    from PIL import Image

    page = (built.dir / "report.html").resolve()
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--window-size=1280,2000"]
    measured = tmp_path / "measured.html"
    measured.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    dom = subprocess.run(flags + ["--dump-dom", measured.as_uri()], capture_output=True, text=True, timeout=300)
    assert dom.returncode == 0, dom.stderr[-2000:]
    n_images = len(re.findall(r"<img ", page.read_text()))
    assert n_images == 10  # CD diagram, expected best of n, 3 accuracy-vs-weight, 3 training curves, 2 measures
    assert f'data-images-loaded="{n_images}/{n_images}"' in dom.stdout, re.findall(r"data-images-\w+=\"[^\"]*\"",
                                                                                 dom.stdout)
    for section in ("summary", "runs", "combined", "accuracy-against-weight", "training-curves",
                    "neural-persistence-and-deep-graph-persistence"):
        assert f'id="{section}"' in dom.stdout, section
    scales = [float(s) for s in re.search(r'data-image-scales="([^"]*)"', dom.stdout).group(1).split()]
    body_px = float(re.search(r'data-body-font-px="([^"]*)"', dom.stdout).group(1))
    sources = re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', page.read_text())
    assert len(scales) == len(sources) == n_images and body_px >= 12
    shown = []
    for scale, data in zip(scales, sources):
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            if "tick_label_px" in image.info:  # every figure but the CD diagram (its own writer, 150 dpi)
                shown.append(float(image.info["tick_label_px"]) * scale)
    assert len(shown) == n_images - 1 and min(shown) >= body_px, (shown, body_px)
    shot = tmp_path / "report.png"
    done = subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri()],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        assert len(image.convert("L").getcolors(1 << 16)) > 50  # text and figures drawn, not a blank page
    record_property("screenshot", str(shot))
    print(f"screenshot: {shot}")
