"""The report page from synthetic run folders: every section, every linked image, Table 1 beside our numbers."""
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_done

from model.analysis import accuracies, outputs, report
from model.errors import DataError
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
                    run = write_done(root / "runs", net, treatment, weight, seed, acc, acc - 0.01)
                    pd.DataFrame({"epoch": [1, 2, 3], "loss": [1.0, 0.7, 0.6], "accuracy": [0.5, 0.7, 0.8],
                                  "val_accuracy": [0.5, 0.6, acc], "reg": [0.1, 0.05, 0.02]}).to_csv(
                        run / run_folder.HISTORY, index=False)
    failed = root / "runs/mnist/2/t1/1.0/seed_0"
    failed.mkdir(parents=True)
    run_folder.write_failed(failed, RuntimeError("out of memory"))
    accuracies.write(accuracies.collect(root / "runs"), root / "accuracies.csv")
    outputs.extract(root / "accuracies.csv", root / "statistics")
    return root


def test_report_has_every_section_and_image(sweep):
    path = report.build(sweep / "accuracies.csv", sweep / "statistics", sweep / "report", title="synthetic sweep")
    text = path.read_text()
    for heading in ("# synthetic sweep", "## combined", "### Average ranks",
                    "### Test accuracy at the selected weight", "### Nemenyi p-values",
                    "### Reproduced beside the paper's Table 1", "### Selected weights", "## Accuracy against weight",
                    "## Training curves"):
        assert heading in text, heading
    assert "1 runs not finished" in text and "out of memory" in text
    assert "Iman–Davenport F =" in text and "**" in text  # numbers and the bold best per network
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert "## mnist" not in text  # a single block: its analysis is the combined one, shown once
    assert len(images) == 1 + 3 + 3  # CD diagram, accuracy-vs-weight and curves per network
    for image in images:
        assert (sweep / "report" / image).stat().st_size > 1000
    # Table 1 beside ours: the paper's MNIST 1 baseline 0.501 is quoted next to the reproduced value
    assert re.search(r"\| ∅ \| 0\.\d{3} \(0\.929\) \| 0\.\d{3} \(0\.501\) \| 0\.\d{3} \(0\.636\) \|", text)
    with pytest.raises(DataError, match="--force"):
        report.build(sweep / "accuracies.csv", sweep / "statistics", sweep / "report")


def test_measures_section_is_included_when_a_measures_csv_exists(sweep, tmp_path, monkeypatch):
    calls = []

    def measures_section(measures_csv, accuracies_csv, out_dir):
        calls.append((Path(measures_csv).name, Path(accuracies_csv).name, Path(out_dir)))
        return "## Neural persistence\n\nfrom the measures engineer"

    monkeypatch.setitem(sys.modules, "model.measures.analysis",
                        types.SimpleNamespace(measures_section=measures_section))
    (tmp_path / "measures.csv").write_text("x\n1\n")
    text = report.build(sweep / "accuracies.csv", sweep / "statistics", tmp_path / "r",
                        measures_csv=tmp_path / "measures.csv").read_text()
    assert "## Neural persistence" in text
    assert calls == [("measures.csv", "accuracies.csv", tmp_path / "r")]
    with pytest.raises(DataError, match="no such measures CSV"):
        report.build(sweep / "accuracies.csv", sweep / "statistics", tmp_path / "r2",
                     measures_csv=tmp_path / "missing.csv")


def test_without_run_folders_there_are_no_curves(sweep, tmp_path):
    frame = pd.read_csv(sweep / "accuracies.csv").drop(columns="run_dir")
    frame.to_csv(tmp_path / "accuracies.csv", index=False)
    text = report.build(tmp_path / "accuracies.csv", sweep / "statistics", tmp_path / "r").read_text()
    assert "## Training curves" not in text and "## Accuracy against weight" in text


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
